/*
 * versions.h — tagmoor's version and those of the linked libraries as they
 * report themselves at run time (a static build can carry other versions
 * than the headers it was compiled against).
 */
#ifndef TAGMOOR_VERSIONS_H
#define TAGMOOR_VERSIONS_H

#include <stdio.h>

void tm_versions_print(FILE *f);

#endif
