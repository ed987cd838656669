/*
 * versions.c — `tagmoor version`: asks each library adapter for the version
 * its library reports at run time, and for the static builds the pinned
 * source packages they were built from (TM_BUILD_PINS, cross/build-static).
 */
#include "tagmoor/cli/versions.h"
#include "tagmoor/verify/crypto.h"
#include "tagmoor/source/git.h"
#include "tagmoor/source/http.h"
#include "tagmoor/doc/yaml.h"

void tm_versions_print(FILE *f)
{
	fprintf(f, "tagmoor %s\n", TM_VERSION);
	fprintf(f, "libgit2 %s\n", tm_git_version());
	fprintf(f, "mbedTLS %s\n", tm_crypto_mbedtls_version());
	fprintf(f, "libcurl %s\n", tm_http_curl_version());
	fprintf(f, "libyaml %s\n", tm_yaml_version());
	fprintf(f, "libsodium %s\n", tm_crypto_sodium_version());
	fprintf(f, "inih (reports no run-time version)\n");
#ifdef TM_BUILD_PINS
	/* Static builds (cross/build-static): the pinned sources this binary was built from. */
	fprintf(f, "%s", TM_BUILD_PINS);
#endif
}
