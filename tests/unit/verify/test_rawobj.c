/*
 * test_rawobj.c — raw Git objects (verify/rawobj.c): ids as git computes
 * them, the parent's table (an object is found only under the id of its own
 * bytes), and the tree walk over hand-made trees — order, modes, a paths
 * entry absent or not a directory, and a missing or malformed tree never read
 * as "absent".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tagmoor/core/error.h"
#include "tagmoor/verify/rawobj.h"

static void test_ids_as_git(void **state)
{
	char id[41];

	/* git hash-object: printf 'hello\n' | git hash-object --stdin */
	assert_int_equal(tm_obj_id(id, TM_OBJ_BLOB, "hello\n", 6), 0);
	assert_string_equal(id, "ce013625030ba8dba906f756967f9e9ca394464a");
	/* the empty tree */
	assert_int_equal(tm_obj_id(id, TM_OBJ_TREE, "", 0), 0);
	assert_string_equal(id, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
}

/* A tree entry "MODE NAME\0" + the 20 bytes of hex id. */
static size_t entry(char *out, const char *mode, const char *name, const char *hex)
{
	size_t n = (size_t)sprintf(out, "%s %s", mode, name) + 1;

	for (size_t i = 0; i < 20; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		out[n + i] = (char)v;
	}
	return n + 20;
}

struct repo {
	struct tm_objtab tab;
	char bufs[8][512];
	size_t lens[8];
	int n;
	char commit[41], sub[41], root[41];
};

static const char *add(struct repo *r, int type, size_t len, char *id)
{
	assert_int_equal(tm_objtab_add(&r->tab, type, r->bufs[r->n], len), 0);
	tm_obj_id(id, type, r->bufs[r->n], len);
	r->lens[r->n++] = len;
	return id;
}

/* root: k8s/ (a.yaml, link -> x, sub/ (b.yaml)), units (a file), z.yaml */
static void make(struct repo *r)
{
	char blob[41], deep[41];
	size_t n;

	memset(r, 0, sizeof(*r));
	tm_obj_id(blob, TM_OBJ_BLOB, "x", 1);
	n = entry(r->bufs[0], "100644", "b.yaml", blob);
	add(r, TM_OBJ_TREE, n, deep);
	n = entry(r->bufs[1], "100644", "a.yaml", blob);
	n += entry(r->bufs[1] + n, "120000", "link", blob);
	n += entry(r->bufs[1] + n, "40000", "sub", deep);
	add(r, TM_OBJ_TREE, n, r->sub);
	n = entry(r->bufs[2], "40000", "k8s", r->sub);
	n += entry(r->bufs[2] + n, "100644", "units", blob);
	n += entry(r->bufs[2] + n, "100755", "z.yaml", blob);
	add(r, TM_OBJ_TREE, n, r->root);
	n = (size_t)sprintf(r->bufs[3], "tree %s\nauthor t <t@x> 1 +0000\n\nm\n", r->root);
	add(r, TM_OBJ_COMMIT, n, r->commit);
}

struct seen {
	char paths[16][64];
	int modes[16];
	int n;
};

static int collect(void *ctx, const char *path, int mode, const char *oid)
{
	struct seen *s = ctx;

	assert_int_equal(strlen(oid), 40);
	snprintf(s->paths[s->n], sizeof(s->paths[0]), "%s", path);
	s->modes[s->n++] = mode;
	return 0;
}

static int walk(struct repo *r, const char *dir, struct seen *s)
{
	struct tm_objsrc src;

	memset(s, 0, sizeof(*s));
	tm_objtab_source(&src, &r->tab);
	return tm_obj_tree_walk(&src, r->commit, dir, collect, s);
}

static void test_walk(void **state)
{
	struct repo r;
	struct seen s;

	make(&r);
	assert_int_equal(walk(&r, NULL, &s), 0);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.paths[0], "k8s/a.yaml");
	assert_string_equal(s.paths[1], "k8s/link");
	assert_int_equal(s.modes[1], 0120000);
	assert_string_equal(s.paths[2], "k8s/sub/b.yaml");
	assert_string_equal(s.paths[3], "units");
	assert_string_equal(s.paths[4], "z.yaml");
	assert_int_equal(s.modes[4], 0100755);
	assert_int_equal(walk(&r, "/k8s/", &s), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(walk(&r, "k8s/sub", &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(walk(&r, "nope", &s), TM_ENOTFOUND);
	assert_int_equal(walk(&r, "k8s/nope/deeper", &s), TM_ENOTFOUND);
	assert_int_equal(walk(&r, "units", &s), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "units is a regular file, not a directory"));
	assert_int_equal(walk(&r, "k8s/link/x", &s), TM_EPARSE);
	assert_non_null(strstr(tm_error_last(), "k8s/link is a symlink, not a directory (in the"));
	tm_objtab_free(&r.tab);
}

static void test_missing_or_bad_tree(void **state)
{
	struct repo r;
	struct seen s;

	make(&r);
	/* the table files an object under the id of its bytes: changed bytes are
	 * another object, and the tree the root names (k8s) is missing */
	r.bufs[1][1] = '2'; /* "100644 a.yaml" becomes "120644 a.yaml" */
	tm_objtab_free(&r.tab);
	for (int i = 0; i < 4; i++)
		assert_int_equal(tm_objtab_add(&r.tab, i == 3 ? TM_OBJ_COMMIT : TM_OBJ_TREE,
					       r.bufs[i], r.lens[i]),
				 0);
	assert_int_equal(walk(&r, "k8s", &s), TM_EPARSE); /* never TM_ENOTFOUND */
	assert_int_equal(walk(&r, "k8s/sub", &s), TM_EPARSE);
	assert_int_equal(walk(&r, "z", &s), TM_ENOTFOUND); /* the root is intact */
	tm_objtab_free(&r.tab);

	/* malformed trees: a mode that is not octal, a name without NUL, a short id */
	make(&r);
	tm_objtab_free(&r.tab);
	{
		static const char *bad[] = { "10064x a\0xxxxxxxxxxxxxxxxxxxx", "100644 a",
					     "100644 a\0short", " a\0xxxxxxxxxxxxxxxxxxxx" };
		static const size_t len[] = { 29, 8, 14, 23 };
		for (size_t i = 0; i < 4; i++) {
			char tree[41], commit[128], cid[41];
			struct tm_objsrc src;
			size_t n;
			memset(&r.tab, 0, sizeof(r.tab));
			tm_objtab_add(&r.tab, TM_OBJ_TREE, bad[i], len[i]);
			tm_obj_id(tree, TM_OBJ_TREE, bad[i], len[i]);
			n = (size_t)sprintf(commit, "tree %s\n\nm\n", tree);
			tm_objtab_add(&r.tab, TM_OBJ_COMMIT, commit, n);
			tm_obj_id(cid, TM_OBJ_COMMIT, commit, n);
			tm_objtab_source(&src, &r.tab);
			memset(&s, 0, sizeof(s));
			assert_int_equal(tm_obj_tree_walk(&src, cid, "", collect, &s), TM_EPARSE);
			tm_objtab_free(&r.tab);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_as_git),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_missing_or_bad_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
