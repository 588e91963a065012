/*
 * Helpers the benchmark programs share: a monotonic clock in ms, reading a
 * file, and the figure lines every benchmark prints ("name value unit").
 */
#ifndef HYPERLET_BENCHUTIL_H
#define HYPERLET_BENCHUTIL_H

#include <stddef.h>

double bench_now_ms(void);
char *bench_read_file(const char *path);
void bench_report_latencies(
    const char *name, double *lat, size_t n, double wall_ms, size_t errors);

#endif
