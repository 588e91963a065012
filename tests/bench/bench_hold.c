/*
 * bench_hold: fills a libvirt test driver hosted by a libvirtd
 * (test+unix:///default?socket=...) with the domains of a test-driver
 * node file (bench_nodexml's output: each instance's domain as hyperletd
 * defines it, with its <test:runstate>), and keeps its connection open
 * until it is killed. libvirtd frees test:///default when its last client
 * disconnects, so this holder is what lets hyperletd restart against the
 * same domains: the production shape, libvirt's state out of process as
 * with qemu:///system. Defines without VALIDATE (setting up, not
 * measured) and starts the domains whose run state is running. Writes the
 * number of domains to READY_FILE when done, then waits for a signal.
 * Usage: bench_hold URI NODE.xml READY_FILE
 */
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchutil.h"

#define TEST_NS " xmlns:test='http://libvirt.org/schemas/domain/test/1.0'"
#define RUNSTATE "<test:runstate>"
#define RUNSTATE_END "</test:runstate>"

static void
quiet(void *opaque, virErrorPtr err)
{
	(void)opaque;
	(void)err;
}

/* Removes the first occurrence of [from, to + strlen(to)) in s, where to
 * is searched after from. Returns whether it found both. */
static int
cut(char *s, const char *from, const char *to)
{
	char *a = strstr(s, from), *b;

	if (a == NULL || (b = strstr(a, to)) == NULL)
		return 0;
	b += strlen(to);
	memmove(a, b, strlen(b) + 1);
	return 1;
}

int
main(int argc, char **argv)
{
	char *node, *p, *end, *xml;
	virConnectPtr c;
	virDomainPtr d;
	int n = 0, running;
	double t0;
	FILE *f;

	if (argc != 4) {
		fprintf(stderr, "usage: bench_hold URI NODE.xml READY_FILE\n");
		return 2;
	}
	virSetErrorFunc(NULL, quiet);
	if ((node = bench_read_file(argv[2])) == NULL) {
		perror(argv[2]);
		return 1;
	}
	if ((c = virConnectOpen(argv[1])) == NULL) {
		fprintf(stderr, "bench_hold: %s: %s\n", argv[1],
		    virGetLastErrorMessage());
		return 1;
	}
	t0 = bench_now_ms();
	for (p = node; (p = strstr(p, "<domain")) != NULL; p = end) {
		if ((end = strstr(p, "</domain>")) == NULL)
			break;
		end += strlen("</domain>");
		if ((xml = strndup(p, (size_t)(end - p))) == NULL)
			return 1;
		running = strstr(xml, RUNSTATE "1" RUNSTATE_END) != NULL;
		(void)cut(xml, TEST_NS, "1.0'");
		(void)cut(xml, RUNSTATE, RUNSTATE_END);
		d = virDomainDefineXML(c, xml);
		if (d == NULL || (running && virDomainCreate(d) < 0)) {
			fprintf(stderr, "bench_hold: domain %d: %s\n", n,
			    virGetLastErrorMessage());
			return 1;
		}
		virDomainFree(d);
		free(xml);
		n++;
	}
	free(node);
	fprintf(stderr, "bench_hold: %d domains defined in %.0f ms\n", n,
	    bench_now_ms() - t0);
	if ((f = fopen(argv[3], "w")) == NULL || fprintf(f, "%d\n", n) < 0 ||
	    fclose(f) != 0) {
		perror(argv[3]);
		return 1;
	}
	for (;;)
		pause();
}
