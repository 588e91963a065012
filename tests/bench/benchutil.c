/*
 * Shared by the benchmark programs under tests/bench/: the clock, file
 * reading and the one format every figure is printed in, "name value
 * unit" on its own line, which tests/bench/run.sh collects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "benchutil.h"

/* Milliseconds on the monotonic clock. */
double
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The whole file as a NUL-terminated string (owned), or NULL. */
char *
bench_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0 ||
	    (buf = malloc((size_t)n + 1)) == NULL) {
		fclose(f);
		return NULL;
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The value at quantile q (0..1) of sorted v[n], nearest rank. */
static double
quantile(const double *v, size_t n, double q)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(q * (double)n + 0.999999);
	if (i < 1)
		i = 1;
	if (i > n)
		i = n;
	return v[i - 1];
}

/* Prints throughput, p50, p99, max and the error count of n requests that
 * took wall_ms together. Sorts lat in place. */
void
bench_report_latencies(
    const char *name, double *lat, size_t n, double wall_ms, size_t errors)
{
	qsort(lat, n, sizeof(double), cmp_double);
	printf("%s_rps %.1f req/s\n", name,
	    wall_ms > 0 ? (double)n * 1e3 / wall_ms : 0);
	printf("%s_p50 %.2f ms\n", name, quantile(lat, n, 0.50));
	printf("%s_p99 %.2f ms\n", name, quantile(lat, n, 0.99));
	printf("%s_max %.2f ms\n", name, n ? lat[n - 1] : 0);
	printf("%s_errors %zu count\n", name, errors);
	fflush(stdout);
}
