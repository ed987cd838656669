/*
 * versions.c — `tagmoor version`: asks each library adapter for the version
 * its library reports at run time.
 */
#include "tagmoor/versions.h"
#include "tagmoor/yaml.h"

void tm_versions_print(FILE *f)
{
	fprintf(f, "tagmoor %s\n", TM_VERSION);
	fprintf(f, "libyaml %s\n", tm_yaml_version());
}
