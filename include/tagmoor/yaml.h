/*
 * yaml.h — YAML/JSON text to the document tree with Kubernetes' typing
 * rules (arrives with the Kubernetes applier). For now: the library version.
 */
#ifndef TAGMOOR_YAML_H
#define TAGMOOR_YAML_H

/* "0.2.5" as libyaml reports it at run time. */
const char *tm_yaml_version(void);

#endif
