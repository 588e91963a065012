/* hyperletd: placeholder until the daemon lands. */
#include <stdio.h>

int
main(void)
{
	fprintf(stderr, "hyperletd: not yet\n");
	return 1;
}
