/*
 * yaml.c — the libyaml adapter (the only file that includes yaml.h).
 */
#include "tagmoor/yaml.h"

#include <yaml.h>

const char *tm_yaml_version(void)
{
	return yaml_get_version_string();
}
