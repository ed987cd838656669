/*
 * message.h — the one message the fetcher child sends to the privileged
 * parent (docs/security.md): the poll's object id, the verdict, and the
 * plan inputs (the bytes of the files under the configured paths of one or
 * more commits), with the raw tag, commit and tree objects they came from,
 * so that the parent checks the verdict and every file against the signed
 * objects itself (pipeline/source.c). The parent parses nothing else the
 * network produced.
 *
 * The encoding is binary, little-endian, every field in a fixed order:
 *   "TMFETCH2"  u32 total length (the whole message, header included)
 *   i32 status, str error, str oid, u32 flags, u8 have_verdict, verdict,
 *   u32 nobjects, each object: u8 type (1 commit, 2 tree, 4 tag), blob body;
 *   u32 nsets, each set: str commit, u32 ndirs, each dir: u32 applier,
 *   str path, i32 status, str error, u32 nfiles, each file: str path,
 *   u32 mode, u64 size, u8 has_data, [blob data]
 * A str or blob is a u32 length, the bytes and one NUL byte (checked), so a
 * decoded string or file body points into the message and is terminated.
 * tm_msg_decode is strict: every length against what remains and against the
 * field's own cap, object ids exactly 40 lowercase hex digits (or empty),
 * a blob's length equal to the file's size, no NUL inside a string, no byte
 * after the last field; anything else is TM_EPARSE naming the field.
 */
#ifndef TAGMOOR_PRIVSEP_MESSAGE_H
#define TAGMOOR_PRIVSEP_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#include "tagmoor/core/buf.h"
#include "tagmoor/verify/verify.h"

#define TM_MSG_MAGIC "TMFETCH2"
#define TM_MSG_MAX_SETS 3             /* new revision, applied (drift), last good (rollback) */
#define TM_MSG_MAX_DIRS 256           /* (applier, paths entry) pairs of one set */
#define TM_MSG_MAX_FILES 10001        /* files of one dir: TM_PLAN_MAX_FILES plus the refused one */
#define TM_MSG_MAX_PATH 4096          /* a paths entry or a file path */
#define TM_MSG_MAX_ERROR 1024         /* an error message */
#define TM_MSG_MAX_FILE (1u << 30)    /* one file body */
#define TM_MSG_MAX_OBJECTS 200000     /* tag, commits and trees of all sets */
#define TM_MSG_MAX_OBJECT (16u << 20) /* one of them */

/* flags */
#define TM_MSG_FETCHED 1u      /* the child fetched (a prune follows the pass) */
#define TM_MSG_VERIFY_ERROR 2u /* the error came from verification (not a verdict) */
#define TM_MSG_STOPPED 4u      /* the child stopped at the safe point before the fetch */
#define TM_MSG_FLAGS 7u

/* One file of a tree walk below a paths entry, as the walk saw it. data is
 * set only when the child read the body (a wanted regular file within the
 * limits); the parent's checks decide the same way. */
struct tm_msg_file {
	const char *path;
	uint32_t mode;
	uint64_t size;
	/* size bytes, NUL-terminated when decoded (a capture's are git's objects,
	 * tm_git_read_blob_kept: read by size only); NULL: not read */
	const char *data;
};

/* The walk of one paths entry for one applier: its files in walk order and
 * how the walk ended (0; TM_ENOTFOUND: the directory is absent; another
 * negative code with the message: the plan fails with it). */
struct tm_msg_dir {
	uint32_t applier; /* slot index */
	const char *path;
	int32_t status;
	const char *error;
	struct tm_msg_file *files;
	size_t nfiles;
};

/* A raw tag, commit or tree object (TM_OBJ_*, verify/rawobj.h), its body
 * without git's header. */
struct tm_msg_obj {
	uint32_t type;
	const char *data;
	size_t len;
};

/* The plan inputs of one commit. */
struct tm_msg_set {
	const char *commit;
	struct tm_msg_dir *dirs;
	size_t ndirs;
};

struct tm_msg {
	int32_t status;    /* 0, or the negative TM_E* code of the source stage */
	const char *error; /* its message */
	const char *oid;   /* what the ref advertised, "" when the poll failed */
	uint32_t flags;
	int have_verdict;
	struct tm_verify_result verdict;
	struct tm_msg_obj *objs; /* what the verdict and the plan inputs were read from */
	size_t nobjs, capobjs;
	struct tm_msg_set sets[TM_MSG_MAX_SETS];
	size_t nsets;
};

/* Appends the encoding of m to out (out's max bounds it: TM_ELIMIT). */
int tm_msg_encode(struct tm_buf *out, const struct tm_msg *m);

/* The encoding of a message with the file bodies left where they are (the fetcher child
 * writes megabytes of them to the pipe without copying them into one buffer first): head
 * is the encoding without them, each body goes at its part's offset of head. */
struct tm_msg_part {
	size_t at; /* offset in head */
	const char *data;
	size_t len;
};
struct tm_msg_parts {
	struct tm_buf head;
	struct tm_msg_part *bodies;
	size_t nbodies, capbodies;
	uint64_t total; /* the bodies' bytes */
};
/* Encodes m into out (the whole message bounded by max: TM_ELIMIT); tm_msg_parts_free. */
int tm_msg_encode_parts(struct tm_msg_parts *out, const struct tm_msg *m, size_t max);
/* Writes the message to fd, as tm_msg_encode would have encoded it. */
int tm_msg_write_parts(int fd, const struct tm_msg_parts *p);
/* Copies bytes [from, from + n) of the message, as tm_msg_encode would have encoded it
 * (head.len + total bytes in all), to dst. */
void tm_msg_copy_parts(void *dst, const struct tm_msg_parts *p, uint64_t from, uint64_t n);

void tm_msg_parts_free(struct tm_msg_parts *p);

/* The child's message in the memfd the parent gave it (privsep/fetcher.c): what the pipe
 * carries instead, TM_MSG_MEMFD_MAGIC and the message's size (8 bytes, little-endian). */
#define TM_MSG_MEMFD_MAGIC "TMMEMFD1"
#define TM_MSG_MEMFD_MARK 16

/* Adds a raw object to m (the child; the data is not copied). */
int tm_msg_add_object(struct tm_msg *m, uint32_t type, const char *data, size_t len);

/* Decodes buf[0..len) into m. Strings and file bodies point into buf, which
 * must stay alive (and unchanged) while m is used; the arrays are malloc'd
 * (tm_msg_free). TM_EPARSE with the field's name on anything malformed. */
int tm_msg_decode(struct tm_msg *m, const char *buf, size_t len);
/* Frees the arrays of a decoded message (not the strings). */
void tm_msg_free(struct tm_msg *m);

/* The set of the plan inputs of commit, or NULL. */
const struct tm_msg_set *tm_msg_find_set(const struct tm_msg *m, const char *commit);
/* The dir of (applier, path) in set, or NULL. */
const struct tm_msg_dir *tm_msg_find_dir(const struct tm_msg_set *s, uint32_t applier,
					 const char *path);

#endif
