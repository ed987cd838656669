/*
 * gitobj.h — parsing raw Git tag and commit objects for verification.
 *
 * libgit2 has no API for a tag's signature, so the raw object is split as git
 * does: the signature is the last armored block. These parsers see hostile
 * bytes straight from the network and have a fuzz target.
 */
#ifndef TAGMOOR_GITOBJ_H
#define TAGMOOR_GITOBJ_H

#include <stddef.h>
#include <stdint.h>

/* A parsed annotated tag object. Pointers point into the raw object. */
struct tm_gitobj_tag {
	char object[41];
	const char *type;
	size_t type_len;
	const char *name;
	size_t name_len;
	const char *tagger;
	size_t tagger_len;   /* "Name <mail> 1700000000 +0000" */
	int64_t tagger_time; /* -1 when absent */
	const char *message;
	size_t message_len; /* body before the signature */
	const char *payload;
	size_t payload_len; /* what was signed */
	const char *signature;
	size_t signature_len; /* armored block, or NULL */
	int sig_kind;         /* 0 none, 1 ssh, 2 openpgp */
};

/* Splits a raw tag object as git does: the signature is the last armored
 * block and must be the last thing in the object. TM_EPARSE on anything
 * malformed (headers out of order, duplicate headers, NUL bytes...). */
int tm_gitobj_parse_tag(struct tm_gitobj_tag *out, const char *raw, size_t len);

/* A commit's signature (the gpgsig header) and the payload it signs (the
 * commit without that header), plus the committer time. */
struct tm_gitobj_commit {
	char *payload;
	size_t payload_len; /* malloc'd */
	char *signature;
	size_t signature_len; /* malloc'd, unfolded; NULL when unsigned */
	int sig_kind;
	int64_t committer_time;
	char tree[41];
};
int tm_gitobj_parse_commit(struct tm_gitobj_commit *out, const char *raw, size_t len);
void tm_gitobj_commit_free(struct tm_gitobj_commit *c);

#endif
