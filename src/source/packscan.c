/*
 * packscan.c — the pack as it arrives, against the pack limits of git.h (see packscan.h for
 * why): the pkt-line framing and side-band of the upload-pack response followed to the pack,
 * each entry's declared size checked before it is inflated, and a small resumable DEFLATE
 * decoder (after zlib's puff.c) that counts the bytes an entry inflates to without producing
 * them. Pure C: gitfetch.c feeds it the bytes before libgit2 sees them.
 */
#include "packscan.h"
#include "tagmoor/source/git.h"
#include "tagmoor/core/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_PENDING_MAX 4096

static int ps_malformed(struct packscan *p, const char *what)
{
	return tm_error_set(TM_ESOURCE, "%s: malformed pack from the server (object %u of %u: %s)",
			    p->url, p->done + 1, p->nobjects, what);
}

/* 0 with n bits in *out, 1 when the input ran out. */
static int ps_bits(struct packscan *p, int n, unsigned *out)
{
	while (p->bitcnt < n) {
		if (p->pos == p->len)
			return 1;
		p->bitbuf |= (uint64_t)p->in[p->pos++] << p->bitcnt;
		p->bitcnt += 8;
	}
	*out = (unsigned)(p->bitbuf & ((1ull << n) - 1));
	p->bitbuf >>= n;
	p->bitcnt -= n;
	return 0;
}

#define NEED(e)                       \
	do {                          \
		int need_ = (e);      \
		if (need_)            \
			return need_; \
	} while (0)

static int ps_bytes(struct packscan *p, unsigned char *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned b;

		NEED(ps_bits(p, 8, &b));
		if (out)
			out[i] = (unsigned char)b;
	}
	return 0;
}

static int huff_build(struct huff *h, const short *length, int n)
{
	short offs[16];
	int left = 1;

	memset(h->count, 0, sizeof(h->count));
	memset(h->fast, 0, sizeof(h->fast));
	for (int s = 0; s < n; s++)
		h->count[length[s]]++;
	if (h->count[0] == n)
		return 0;
	for (int l = 1; l < 16; l++) {
		left <<= 1;
		left -= h->count[l];
		if (left < 0)
			return -1;
	}
	offs[1] = 0;
	for (int l = 1; l < 15; l++)
		offs[l + 1] = (short)(offs[l] + h->count[l]);
	for (int s = 0; s < n; s++)
		if (length[s])
			h->symbol[offs[length[s]]++] = (short)s;
	/* the lookup table: canonical codes, bit-reversed (deflate sends them
	 * most significant bit first into a least-significant-first stream) */
	{
		unsigned code = 0;
		int index = 0;

		for (int l = 1; l <= FAST_BITS; l++) {
			for (int i = 0; i < h->count[l]; i++, code++) {
				unsigned rev = 0;

				for (int b = 0; b < l; b++)
					rev |= ((code >> b) & 1u) << (l - 1 - b);
				for (unsigned fill = 0; fill < (1u << (FAST_BITS - l)); fill++) {
					h->fast[rev | (fill << l)].sym =
						(unsigned short)h->symbol[index + i];
					h->fast[rev | (fill << l)].len = (unsigned char)l;
				}
			}
			index += h->count[l];
			code <<= 1;
		}
	}
	return left;
}

/* 0 and *sym, 1 for more input, TM_ESOURCE on an invalid code. */
static int huff_decode(struct packscan *p, const struct huff *h, int *sym)
{
	int code = 0, first = 0, index = 0;

	while (p->bitcnt < FAST_BITS && p->pos < p->len) {
		p->bitbuf |= (uint64_t)p->in[p->pos++] << p->bitcnt;
		p->bitcnt += 8;
	}
	if (p->bitcnt >= FAST_BITS) {
		unsigned look = (unsigned)(p->bitbuf & ((1u << FAST_BITS) - 1));

		if (h->fast[look].len) {
			*sym = h->fast[look].sym;
			p->bitbuf >>= h->fast[look].len;
			p->bitcnt -= h->fast[look].len;
			return 0;
		}
	}

	for (int l = 1; l < 16; l++) {
		unsigned b;
		int count = h->count[l];

		NEED(ps_bits(p, 1, &b));
		code |= (int)b;
		if (code - count < first) {
			*sym = h->symbol[index + (code - first)];
			return 0;
		}
		index += count;
		first += count;
		first <<= 1;
		code <<= 1;
	}
	return ps_malformed(p, "invalid deflate code");
}

/* The size limits, against what the entry declared. */
static int ps_account(struct packscan *p, uint64_t n, int object, const char *what)
{
	if (object && n > p->obj_max)
		return tm_error_set(TM_ELIMIT,
				    "%s: object %u of the pack %s %llu bytes, more than max_fetch "
				    "(%llu bytes) allows for one object; fetch refused",
				    p->url, p->done + 1, what, (unsigned long long)n,
				    (unsigned long long)p->obj_max);
	if (n > p->total_max - p->total)
		return tm_error_set(
			TM_ELIMIT,
			"%s: the pack inflates to more than %llu bytes (%d x max_fetch, "
			"at most %llu; object %u of %u %s %llu bytes); fetch refused",
			p->url, (unsigned long long)p->total_max, TM_GIT_INFLATE_FACTOR,
			(unsigned long long)TM_GIT_MAX_INFLATED, p->done + 1, p->nobjects, what,
			(unsigned long long)n);
	p->total += n;
	return 0;
}

/* n bytes of output (byte b when literal, else a copy from dist back). */
static int ps_out(struct packscan *p, uint64_t n, int literal, unsigned dist,
		  const unsigned char *raw)
{
	if (n > p->size - p->zout)
		return ps_malformed(p, "inflates to more than its header declares");
	for (uint64_t i = 0; i < n && p->zout + i < SCAN_HEAD; i++) {
		uint64_t at = p->zout + i;

		p->head[at] = raw            ? raw[i]
			      : literal >= 0 ? (unsigned char)literal
					     : p->head[at - dist];
	}
	p->zout += n;
	if ((p->type == 6 || p->type == 7) && !p->result_known) {
		/* a delta starts with two varints: base size, result size */
		uint64_t v[2] = { 0, 0 };
		size_t i = 0;

		for (int k = 0; k < 2; k++) {
			int shift = 0;

			for (;;) {
				if (i >= p->zout || i >= SCAN_HEAD) {
					if (p->zout >= SCAN_HEAD)
						return ps_malformed(p, "delta sizes too long");
					return 0; /* not all there yet */
				}
				if (shift > 56)
					return ps_malformed(p, "delta sizes too long");
				v[k] |= (uint64_t)(p->head[i] & 0x7f) << shift;
				shift += 7;
				if (!(p->head[i++] & 0x80))
					break;
			}
		}
		p->result_known = 1;
		p->result = v[1];
		return ps_account(p, v[1], 1, "is a delta that builds an object of");
	}
	return 0;
}

static const short lbase[29] = { 3,  4,  5,  6,  7,  8,  9,  10, 11,  13,  15,  17,  19,  23, 27,
				 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258 };
static const short lext[29] = { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
				2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0 };
static const short dbase[30] = { 1,    2,    3,    4,    5,    7,    9,    13,    17,    25,
				 33,   49,   65,   97,   129,  193,  257,  385,   513,   769,
				 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577 };
static const short dext[30] = { 0, 0, 0, 0, 1, 1, 2, 2,  3,  3,  4,  4,  5,  5,  6,
				6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13 };

static int ps_dynamic(struct packscan *p)
{
	static const short order[19] = { 16, 17, 18, 0, 8,  7, 9,  6, 10, 5,
					 11, 4,  12, 3, 13, 2, 14, 1, 15 };
	short lengths[320];
	unsigned nlen, ndist, ncode, v;
	int index = 0, err;

	NEED(ps_bits(p, 5, &nlen));
	NEED(ps_bits(p, 5, &ndist));
	NEED(ps_bits(p, 4, &ncode));
	nlen += 257;
	ndist += 1;
	ncode += 4;
	if (nlen > 286 || ndist > 30)
		return ps_malformed(p, "bad deflate block header");
	for (int i = 0; i < 19; i++) {
		v = 0;
		if ((unsigned)i < ncode)
			NEED(ps_bits(p, 3, &v));
		lengths[order[i]] = (short)v;
	}
	if (huff_build(&p->lencode, lengths, 19) != 0)
		return ps_malformed(p, "bad deflate code lengths");
	while ((unsigned)index < nlen + ndist) {
		int sym, len = 0;
		unsigned rep;

		NEED(huff_decode(p, &p->lencode, &sym));
		if (sym < 16) {
			lengths[index++] = (short)sym;
			continue;
		}
		if (sym == 16) {
			if (index == 0)
				return ps_malformed(p, "bad deflate code lengths");
			len = lengths[index - 1];
			NEED(ps_bits(p, 2, &rep));
			rep += 3;
		} else if (sym == 17) {
			NEED(ps_bits(p, 3, &rep));
			rep += 3;
		} else {
			NEED(ps_bits(p, 7, &rep));
			rep += 11;
		}
		if (index + rep > nlen + ndist)
			return ps_malformed(p, "bad deflate code lengths");
		while (rep--)
			lengths[index++] = (short)len;
	}
	if (lengths[256] == 0)
		return ps_malformed(p, "deflate block without an end code");
	err = huff_build(&p->lencode, lengths, (int)nlen);
	if (err < 0 || (err > 0 && (int)nlen - p->lencode.count[0] != 1))
		return ps_malformed(p, "bad deflate literal/length code");
	err = huff_build(&p->distcode, lengths + nlen, (int)ndist);
	if (err < 0 || (err > 0 && (int)ndist - p->distcode.count[0] != 1))
		return ps_malformed(p, "bad deflate distance code");
	return 0;
}

static void ps_fixed(struct packscan *p)
{
	short l[320];
	int s;

	for (s = 0; s < 144; s++)
		l[s] = 8;
	for (; s < 256; s++)
		l[s] = 9;
	for (; s < 280; s++)
		l[s] = 7;
	for (; s < 288; s++)
		l[s] = 8;
	huff_build(&p->lencode, l, 288);
	for (s = 0; s < 30; s++)
		l[s] = 5;
	huff_build(&p->distcode, l, 30);
}

/* One symbol of a Huffman block: 0 done, 1 more input needed, negative:
 * refused. */
static int ps_symbol(struct packscan *p)
{
	int sym, ds;
	unsigned e, len, dist;

	NEED(huff_decode(p, &p->lencode, &sym));
	if (sym < 256) {
		if (p->zout >= SCAN_HEAD && p->zout < p->size) { /* the common case, inline */
			p->zout++;
			return 0;
		}
		return ps_out(p, 1, sym, 0, NULL);
	}
	if (sym == 256) {
		p->state = p->final ? PS_ADLER : PS_BLOCK;
		return 0;
	}
	sym -= 257;
	if (sym >= 29)
		return ps_malformed(p, "bad deflate length code");
	NEED(ps_bits(p, lext[sym], &e));
	len = (unsigned)lbase[sym] + e;
	NEED(huff_decode(p, &p->distcode, &ds));
	if (ds >= 30)
		return ps_malformed(p, "bad deflate distance code");
	NEED(ps_bits(p, dext[ds], &e));
	dist = (unsigned)dbase[ds] + e;
	if (dist > p->zout)
		return ps_malformed(p, "deflate distance too far back");
	return ps_out(p, len, -1, dist, NULL);
}

/* One step inside a DEFLATE stream: a block header, stored bytes, or Huffman symbols. */
static int ps_step_deflate(struct packscan *p)
{
	switch (p->state) {
	case PS_BLOCK: {
		unsigned fin, type;

		NEED(ps_bits(p, 1, &fin));
		NEED(ps_bits(p, 2, &type));
		p->final = (int)fin;
		if (type == 0) {
			unsigned char l[4];

			p->bitbuf >>= p->bitcnt & 7;
			p->bitcnt -= p->bitcnt & 7;
			NEED(ps_bytes(p, l, 4));
			if ((l[0] ^ l[2]) != 0xff || (l[1] ^ l[3]) != 0xff)
				return ps_malformed(p, "bad stored block");
			p->stored_left = (uint64_t)l[0] | (uint64_t)l[1] << 8;
			p->state = PS_STORED;
			return 0;
		}
		if (type == 3)
			return ps_malformed(p, "bad deflate block type");
		if (type == 1)
			ps_fixed(p);
		else
			NEED(ps_dynamic(p));
		p->state = PS_HUFF;
		return 0;
	}
	case PS_STORED: {
		size_t n;
		int r;

		if (p->stored_left == 0) {
			p->state = p->final ? PS_ADLER : PS_BLOCK;
			return 0;
		}
		/* byte aligned; whole bytes looked ahead sit in the bit buffer */
		if (p->bitcnt >= 8) {
			unsigned char c = (unsigned char)p->bitbuf;

			if ((r = ps_out(p, 1, -1, 0, &c)) < 0)
				return r;
			p->bitbuf >>= 8;
			p->bitcnt -= 8;
			p->stored_left--;
			return 0;
		}
		n = p->len - p->pos;
		if (n == 0)
			return 1;
		if (n > p->stored_left)
			n = (size_t)p->stored_left;
		if ((r = ps_out(p, n, -1, 0, p->in + p->pos)) < 0)
			return r;
		p->pos += n;
		p->stored_left -= n;
		return 0;
	}
	case PS_HUFF:
		/* symbols until the block ends or the input runs out; each one is
		 * complete or rolled back by itself */
		for (int done = 0;; done = 1) {
			size_t cp_pos = p->pos;
			uint64_t cp_bitbuf = p->bitbuf;
			int cp_bitcnt = p->bitcnt, r = ps_symbol(p);

			if (r == 1) {
				p->pos = cp_pos;
				p->bitbuf = cp_bitbuf;
				p->bitcnt = cp_bitcnt;
				return done ? 0 : 1;
			}
			if (r < 0)
				return r;
			if (p->state != PS_HUFF)
				return 0;
		}
	default:
		break;
	}
	return 0;
}

/* One step: 0 done (state advanced), 1 more input needed (nothing
 * consumed), negative: refused. */
static int ps_step(struct packscan *p)
{
	unsigned char b[20];
	unsigned v;

	switch (p->state) {
	case PS_HDR:
		NEED(ps_bytes(p, b, 12));
		if (memcmp(b, "PACK", 4) != 0 || b[4] || b[5] || b[6] || (b[7] != 2 && b[7] != 3))
			return tm_error_set(TM_ESOURCE,
					    "%s: malformed pack from the server (bad header)",
					    p->url);
		p->nobjects = (uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 |
			      b[11];
		if (p->nobjects > TM_GIT_MAX_PACK_OBJECTS)
			return tm_error_set(
				TM_ELIMIT,
				"%s: the pack holds %u objects, more than %u; fetch refused",
				p->url, p->nobjects, TM_GIT_MAX_PACK_OBJECTS);
		p->state = p->nobjects ? PS_ENTRY : PS_TRAILER;
		return 0;
	case PS_ENTRY: {
		uint64_t size;
		int shift = 4;

		NEED(ps_bits(p, 8, &v));
		p->type = (int)(v >> 4) & 7;
		size = v & 15;
		while (v & 0x80) {
			NEED(ps_bits(p, 8, &v));
			if (shift > 57)
				return ps_malformed(p, "size too long");
			size |= (uint64_t)(v & 0x7f) << shift;
			shift += 7;
		}
		if (p->type == 0 || p->type == 5)
			return ps_malformed(p, "invalid object type");
		p->size = size;
		p->zout = 0;
		p->result_known = 0;
		p->state = p->type == 6 ? PS_OFS : p->type == 7 ? PS_REF : PS_ZHDR;
		if (p->type == 6 || p->type == 7)
			return ps_account(p, size, 1, "has delta data of");
		return ps_account(p, size, 1, "inflates to");
	}
	case PS_OFS:
		for (int i = 0;; i++) {
			NEED(ps_bits(p, 8, &v));
			if (i > 9)
				return ps_malformed(p, "delta offset too long");
			if (!(v & 0x80))
				break;
		}
		p->state = PS_ZHDR;
		return 0;
	case PS_REF:
		NEED(ps_bytes(p, NULL, 20));
		p->state = PS_ZHDR;
		return 0;
	case PS_ZHDR:
		NEED(ps_bytes(p, b, 2));
		if ((b[0] & 0x0f) != 8 || (b[0] >> 4) > 7 ||
		    ((unsigned)b[0] << 8 | b[1]) % 31 != 0 || (b[1] & 0x20))
			return ps_malformed(p, "bad zlib header");
		p->state = PS_BLOCK;
		return 0;
	case PS_BLOCK:
	case PS_STORED:
	case PS_HUFF:
		return ps_step_deflate(p);
	case PS_ADLER:
		p->bitbuf >>= p->bitcnt & 7;
		p->bitcnt -= p->bitcnt & 7;
		NEED(ps_bytes(p, NULL, 4));
		if (p->zout != p->size)
			return ps_malformed(p, "inflates to less than its header declares");
		if ((p->type == 6 || p->type == 7) && !p->result_known)
			return ps_malformed(p, "delta without sizes");
		p->state = ++p->done == p->nobjects ? PS_TRAILER : PS_ENTRY;
		return 0;
	case PS_TRAILER:
		NEED(ps_bytes(p, NULL, 20));
		p->state = PS_DONE;
		return 0;
	default:
		if (p->pos < p->len || p->bitcnt)
			return tm_error_set(
				TM_ESOURCE,
				"%s: malformed pack from the server (data after its end)", p->url);
		return 1;
	}
}

#undef NEED

/* Feeds n bytes of pack data. */
static int ps_feed(struct packscan *p, const void *data, size_t n)
{
	if (n > SIZE_MAX - p->len - 1)
		return tm_error_nomem();
	if (p->len + n > p->cap) {
		size_t ncap = p->len + n + 1024;
		unsigned char *nb = realloc(p->in, ncap);

		if (!nb)
			return tm_error_nomem();
		p->in = nb;
		p->cap = ncap;
	}
	memcpy(p->in + p->len, data, n);
	p->len += n;
	for (;;) {
		size_t cp_pos = p->pos;
		uint64_t cp_bitbuf = p->bitbuf;
		int cp_bitcnt = p->bitcnt, r = ps_step(p);

		if (r < 0)
			return r;
		if (r == 1) {
			/* roll back to the step's start and keep its bytes */
			p->pos = cp_pos;
			p->bitbuf = cp_bitbuf;
			p->bitcnt = cp_bitcnt;
			break;
		}
	}
	memmove(p->in, p->in + p->pos, p->len - p->pos);
	p->len -= p->pos;
	p->pos = 0;
	if (p->len > SCAN_PENDING_MAX)
		return tm_error_set(TM_ESOURCE,
				    "%s: malformed pack from the server (undecodable data)",
				    p->url);
	if (p->cap > 2 * SCAN_PENDING_MAX + 256 * 1024) { /* do not keep a large buffer around */
		unsigned char *nb = realloc(p->in, SCAN_PENDING_MAX);

		if (nb) {
			p->in = nb;
			p->cap = SCAN_PENDING_MAX;
		}
	}
	return 0;
}

int tmg_pkt_feed(struct pktscan *k, struct packscan *p, const unsigned char *d, size_t n)
{
	int r;

	while (n > 0) {
		if (k->raw)
			return ps_feed(p, d, n);
		if (k->remain == 0) {
			unsigned len = 0;

			k->lenbuf[k->lenhave++] = *d++;
			n--;
			if (k->lenhave < 4)
				continue;
			k->lenhave = 0;
			if (memcmp(k->lenbuf, "PACK", 4) == 0) {
				k->raw = 1;
				if ((r = ps_feed(p, "PACK", 4)) < 0)
					return r;
				continue;
			}
			for (int i = 0; i < 4; i++) {
				unsigned c = k->lenbuf[i];

				len <<= 4;
				if (c >= '0' && c <= '9')
					len |= c - '0';
				else if (c >= 'a' && c <= 'f')
					len |= c - 'a' + 10;
				else if (c >= 'A' && c <= 'F')
					len |= c - 'A' + 10;
				else
					return tm_error_set(
						TM_ESOURCE,
						"%s: malformed response from the server (bad "
						"pkt-line)",
						p->url);
			}
			if (len < 4)
				continue; /* flush, delimiter, response end */
			k->remain = len - 4;
			k->first = 1;
			continue;
		}
		if (k->first) {
			k->band = *d;
			k->first = 0;
			d++;
			n--;
			k->remain--;
			continue;
		}
		{
			size_t m = n < k->remain ? n : k->remain;

			if (k->band == 1 && (r = ps_feed(p, d, m)) < 0)
				return r;
			d += m;
			n -= m;
			k->remain -= m;
		}
	}
	return 0;
}
