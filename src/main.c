/* main.c — placeholder until the command line lands (next commit). */
#include <stdio.h>
int main(void)
{
	puts("tagmoor " TM_VERSION);
	return 0;
}
