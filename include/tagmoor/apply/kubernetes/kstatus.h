/*
 * kstatus.h — is a live Kubernetes object healthy? The rules of
 * sigs.k8s.io/cli-utils' kstatus (what Flux and kpt wait on), computed from
 * the object as the API server returns it:
 *
 *  - deletionTimestamp set: Terminating;
 *  - status.observedGeneration present and != metadata.generation: InProgress;
 *  - condition Reconciling=True: InProgress; Stalled=True: Failed;
 *  - then per kind: Deployment, StatefulSet, DaemonSet, ReplicaSet (replica
 *    counts and conditions; ProgressDeadlineExceeded is Failed), Job
 *    (started: Current; Failed condition: Failed), Pod, Service
 *    (LoadBalancer needs a cluster IP), PersistentVolumeClaim (Bound), CRD
 *    (Established; NamesAccepted=False is Failed), PodDisruptionBudget;
 *  - any other kind: a Ready condition decides (True: Current, False:
 *    InProgress with its message); no such condition: Current.
 *
 * One deliberate difference: a Pod in phase Failed is Failed (kstatus calls
 * it Current because a Job's pods may fail; tagmoor only waits on Pods the
 * repository declares, where a failed Pod is a failed rollout).
 */
#ifndef TAGMOOR_KSTATUS_H
#define TAGMOOR_KSTATUS_H

#include <stddef.h>
#include <stdint.h>

struct tm_doc;

enum tm_kstatus {
	TM_KSTATUS_CURRENT = 0,
	TM_KSTATUS_IN_PROGRESS,
	TM_KSTATUS_FAILED,
	TM_KSTATUS_TERMINATING,
	TM_KSTATUS_NOT_FOUND
};

/* "Current", "InProgress", "Failed", "Terminating", "NotFound". */
const char *tm_kstatus_name(enum tm_kstatus s);

/*
 * The status of obj (a map with apiVersion, kind, metadata, spec, status).
 * group/kind override the object's own (items of typed lists carry none);
 * NULL: taken from obj. msg receives one line (may be NULL). now: seconds
 * since the epoch (for the Pod scheduling window; 0 = time(NULL)).
 */
enum tm_kstatus tm_kstatus_compute(const struct tm_doc *obj, const char *group, const char *kind,
				   int64_t now, char *msg, size_t msglen);

/* Whether a kind can only ever be Current once it exists (ConfigMap, Secret,
 * RBAC, classes, ...): health() does not poll those. */
int tm_kstatus_always_ready(const char *group, const char *kind);

/* RFC 3339 time ("2024-05-01T10:00:00Z", fractions and offsets allowed) to
 * seconds since the epoch; -1 when malformed. */
int64_t tm_kstatus_parse_time(const char *s);

#endif
