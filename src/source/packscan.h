/*
 * packscan.h — the pack scan of the fetch (packscan.c; not a public header): its state and the
 * one entry point gitfetch.c feeds the upload-pack response into. No library.
 */
#ifndef TAGMOOR_SOURCE_PACKSCAN_H
#define TAGMOOR_SOURCE_PACKSCAN_H

#include <stddef.h>
#include <stdint.h>

/* --- pack limits: what the indexer would inflate --------------------------- *
 *
 * max_fetch bounds the bytes on the wire, not what libgit2's indexer inflates
 * from them: one blob of 2 GiB of zeros deflates to 2 MiB, and a delta of a
 * few bytes can declare (and make the indexer build in memory) an object of
 * any size. So the pack is read as it arrives, before libgit2 sees a byte of
 * it: the pkt-line framing and side-band of the upload-pack response are
 * followed to the pack, each entry's header gives the object's inflated size
 * (for a delta: the size of the delta data, and the first bytes of that data
 * give the size of the object it builds). The limits of git.h
 * (TM_GIT_MAX_PACK_OBJECTS, one object <= max_fetch, all of them <=
 * TM_GIT_INFLATE_FACTOR x max_fetch and <= TM_GIT_MAX_INFLATED) are checked
 * against the declared sizes before the entry is inflated, so a bomb is
 * refused at its header.
 *
 * To find where one entry ends and the next begins the deflate streams must be
 * decoded, so this holds a small DEFLATE decoder (after zlib's puff.c) that
 * decodes symbols and counts output bytes without producing the output (only
 * the first 32 bytes of a delta are kept). An entry may not inflate to more
 * than its header declared. The decoder is resumable: every step (a header,
 * one symbol, a run of stored bytes) either completes or is rolled back to
 * its start and retried when more bytes arrive; at most a dynamic block header
 * (a few hundred bytes) is ever held back. */

#define SCAN_HEAD 32 /* first bytes of a delta kept: two size varints */

#define FAST_BITS 10 /* codes up to this long are decoded by one table lookup */

struct huff {
	short count[16];
	short symbol[320];
	struct {
		unsigned short sym;
		unsigned char len;
	} fast[1u << FAST_BITS];
};

enum {
	PS_HDR,
	PS_ENTRY,
	PS_OFS,
	PS_REF,
	PS_ZHDR,
	PS_BLOCK,
	PS_STORED,
	PS_HUFF,
	PS_ADLER,
	PS_TRAILER,
	PS_DONE
};

struct packscan {
	const char *url;
	uint64_t obj_max, total_max, total;
	int state;
	unsigned char *in; /* pending bytes from the last checkpoint, then new ones */
	size_t len, cap, pos;
	uint64_t bitbuf;
	int bitcnt;
	uint32_t nobjects, done;
	/* the current entry */
	int type, final;
	uint64_t size, zout, stored_left, result;
	int result_known;
	unsigned char head[SCAN_HEAD];
	struct huff lencode, distcode;
};

/* The upload-pack response around the pack: pkt-lines (ACK/NAK, side-band
 * channels 1 = pack data, 2 = progress, 3 = error) or, without side-band, the
 * raw pack after the last pkt-line. One per response stream. */
struct pktscan {
	unsigned char lenbuf[4];
	int lenhave, raw, first;
	size_t remain;
	int band;
};

int tmg_pkt_feed(struct pktscan *k, struct packscan *p, const unsigned char *d, size_t n);

#endif
