/*
 * wipe.c — clearing secrets (core: below everything; the HTTP client, the kubeconfig reader
 * and the key handling of verify all use it).
 */
#include "tagmoor/core/wipe.h"

void tm_wipe(void *p, size_t n)
{
	volatile unsigned char *v = p;

	while (v && n--)
		*v++ = 0;
}
