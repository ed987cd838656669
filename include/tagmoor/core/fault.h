/*
 * fault.h — named fault points for the fault tests (docs/faults.md).
 *
 * TM_FAULT("room.step") marks a step that writes or talks: after a fetch,
 * between unit writes, before a state replace, before a spool file is
 * removed. In a test build (cmake -DTM_TEST_HOOKS=ON) the environment picks
 * one point and what happens there:
 *
 *   TAGMOOR_FAULT=NAME[@N][:ACTION]   at the N-th time NAME is reached
 *                                     (default 1): ACTION is kill (SIGKILL
 *                                     to the process itself; the default),
 *                                     stop (SIGSTOP) or exit (_exit(86))
 *   TAGMOOR_FAULT_TRACE=FILE          appends each point reached, one per line
 *   TAGMOOR_TEST_CLOCK_OFFSET=SECONDS added to the pass's wall clock
 *                                     (TM_FAULT_TIME: one place, the pass)
 *
 * Every name is kept in the binary as "tm-fault:NAME", so `strings tagmoor`
 * lists them; without TM_TEST_HOOKS the macros are empty and the shipped
 * binary contains no fault point, no name and no environment variable.
 */
#ifndef TAGMOOR_FAULT_H
#define TAGMOOR_FAULT_H

#include <stdint.h>

#define TM_FAULT_PREFIX "tm-fault:"

#ifdef TM_TEST_HOOKS
void tm_fault_point(const char *tagged_name);
int64_t tm_fault_time(int64_t now);
#define TM_FAULT(name) tm_fault_point(TM_FAULT_PREFIX name)
#define TM_FAULT_TIME(now) tm_fault_time(now)
#else
#define TM_FAULT(name) ((void)0)
#define TM_FAULT_TIME(now) (now)
#endif

#endif
