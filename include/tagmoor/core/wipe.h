/*
 * wipe.h — the one way secrets (keys, tokens, passwords, headers that carry them) are
 * cleared before their memory is freed or leaves scope.
 */
#ifndef TAGMOOR_WIPE_H
#define TAGMOOR_WIPE_H

#include <stddef.h>

/* Zeroes n bytes at p through a volatile pointer (the compiler cannot drop it); p may be NULL. */
void tm_wipe(void *p, size_t n);

#endif
