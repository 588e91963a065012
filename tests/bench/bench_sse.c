/*
 * bench_sse: N readers of GET /v1/events in one thread (epoll), for `make
 * bench`: each connection is one stream from now on; every event's id and
 * "at" (the time of the change, ms) are read as they arrive. Prints
 * "ready" once every stream answered 200, then on SIGTERM (or SIGINT)
 * reads the newest id from the file given and prints figures:
 * events_<label>_readers, _all_got_all (1 when every reader got every id
 * from its first to the newest, in order, none twice), _events (per
 * reader), _latency_p50/_p99/_max (ms, arrival minus "at" over the
 * events of the first SAMPLED readers: every reader's ids are checked,
 * but only those few parse times, so that this client's own CPU, on the
 * daemon's 2 cores, stays a small part of what is measured). Not a test:
 * it only reports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct rd {
	int fd;
	bool timed; /* one of the first SAMPLED readers: latency, arrivals */
	bool headers_done;
	int status;
	/* chunked decoding */
	int64_t chunk_left; /* bytes of the current chunk still to come;
			       -1: reading a size line */
	int crlf_left; /* CRLF after a chunk's data */
	char line[64];
	size_t line_len;
	/* event text */
	char *ev;
	size_t ev_len, ev_cap;
	char head[4096];
	size_t head_len;
	int64_t first, last, count;
	bool bad; /* an id out of order */
	bool closed;
};

#define SAMPLED 20

static volatile sig_atomic_t done;
static double *lat;
static size_t n_lat, cap_lat;
static FILE *arrivals;

static void
on_sig(int s)
{
	(void)s;
	done = 1;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* "2026-12-05T06:27:51.719Z" -> ms since the epoch. Every reader gets
 * the same "at" strings one after another: the last one is kept, so that
 * the client's own CPU (on the daemon's 2 cores) stays small. */
static double
parse_at(const char *s)
{
	static char last[24];
	static double last_v;
	struct tm tm = {0};
	int ms = 0;

	if (memcmp(s, last, sizeof(last)) == 0)
		return last_v;
	memcpy(last, s, sizeof(last));
	last_v = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	last_v = (double)timegm(&tm) * 1e3 + ms;
	return last_v;
}

static void
one_event(struct rd *r, const char *text, double t)
{
	const char *id = strstr(text, "id: ");
	const char *at = strstr(text, "\"at\":\"");
	int64_t v;

	if (text[0] == ':' || id == NULL)
		return; /* heartbeat */
	v = strtoll(id + 4, NULL, 10);
	if (r->count == 0)
		r->first = v;
	else if (v != r->last + 1)
		r->bad = true;
	r->last = v;
	r->count++;
	if (at && r->timed) {
		if (n_lat == cap_lat) {
			cap_lat = cap_lat ? cap_lat * 2 : 65536;
			lat = realloc(lat, cap_lat * sizeof(*lat));
		}
		lat[n_lat++] = t - parse_at(at + 6);
	}
	/* BENCH_ARRIVALS: "uuid ms" per instance.created, when it arrived */
	if (arrivals && r->timed && strstr(text, "event: instance.created")) {
		const char *in = strstr(text, "\"instance\":\"");

		if (in)
			fprintf(arrivals, "%.36s %.3f\n", in + 12, t);
	}
}

static void
body_bytes(struct rd *r, const char *p, size_t n, double t)
{
	size_t i, start;

	if (r->ev_len + n + 1 > r->ev_cap) {
		r->ev_cap = (r->ev_len + n + 1) * 2;
		r->ev = realloc(r->ev, r->ev_cap);
	}
	memcpy(r->ev + r->ev_len, p, n);
	r->ev_len += n;
	r->ev[r->ev_len] = '\0';
	start = 0;
	for (i = 1; i < r->ev_len; i++)
		if (r->ev[i] == '\n' && r->ev[i - 1] == '\n') {
			r->ev[i] = '\0';
			one_event(r, r->ev + start, t);
			start = i + 1;
		}
	memmove(r->ev, r->ev + start, r->ev_len - start);
	r->ev_len -= start;
}

static void
feed(struct rd *r, const char *p, size_t n, double t)
{
	while (n > 0) {
		if (!r->headers_done) {
			char *e;

			if (r->head_len + 1 >= sizeof(r->head))
				return;
			r->head[r->head_len++] = *p++;
			n--;
			r->head[r->head_len] = '\0';
			if ((e = strstr(r->head, "\r\n\r\n")) != NULL) {
				r->headers_done = true;
				r->status = atoi(r->head + 9);
				r->chunk_left = -1;
			}
			continue;
		}
		if (r->crlf_left) {
			r->crlf_left--;
			p++;
			n--;
			continue;
		}
		if (r->chunk_left < 0) {
			char c = *p++;

			n--;
			if (c == '\n') {
				r->line[r->line_len] = '\0';
				r->chunk_left = strtoll(r->line, NULL, 16);
				r->line_len = 0;
				if (r->chunk_left == 0) {
					r->closed = true;
					return;
				}
			} else if (c != '\r' &&
			    r->line_len + 1 < sizeof(r->line))
				r->line[r->line_len++] = c;
			continue;
		}
		{
			size_t take = (size_t)r->chunk_left < n
			    ? (size_t)r->chunk_left
			    : n;

			body_bytes(r, p, take, t);
			p += take;
			n -= take;
			r->chunk_left -= (int64_t)take;
			if (r->chunk_left == 0) {
				r->chunk_left = -1;
				r->crlf_left = 2;
			}
		}
	}
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	int port, n, ep, i, ready = 0;
	struct rd *rs;
	const char *label, *newest_file;
	struct sockaddr_in sa = {0};
	int64_t newest = -1, minc = -1, maxc = 0;
	bool all = true;
	FILE *f;

	if (argc != 5) {
		fprintf(stderr, "usage: bench_sse PORT N LABEL NEWEST_FILE\n");
		return 2;
	}
	if (getenv("BENCH_ARRIVALS"))
		arrivals = fopen(getenv("BENCH_ARRIVALS"), "w");
	port = atoi(argv[1]);
	n = atoi(argv[2]);
	label = argv[3];
	newest_file = argv[4];
	signal(SIGTERM, on_sig);
	signal(SIGINT, on_sig);
	signal(SIGPIPE, SIG_IGN);
	rs = calloc((size_t)n, sizeof(*rs));
	ep = epoll_create1(0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (i = 0; i < n; i++) {
		char req[256];
		struct epoll_event ev = {
		    .events = EPOLLIN, .data.u32 = (uint32_t)i};
		int len;

		rs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		rs[i].timed = i < SAMPLED;
		if (connect(rs[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("connect");
			return 1;
		}
		/* BENCH_SSE_QUERY: e.g. "?instance=UUID" (experiments) */
		len = snprintf(req, sizeof(req),
		    "GET /v1/events%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
		    "Accept: text/event-stream\r\n\r\n",
		    getenv("BENCH_SSE_QUERY") ? getenv("BENCH_SSE_QUERY") : "",
		    port);
		if (write(rs[i].fd, req, (size_t)len) != len)
			return 1;
		epoll_ctl(ep, EPOLL_CTL_ADD, rs[i].fd, &ev);
	}
	while (!done) {
		struct epoll_event evs[64];
		int k, m = epoll_wait(ep, evs, 64, 100);

		for (k = 0; k < m; k++) {
			struct rd *r = &rs[evs[k].data.u32];
			char buf[65536];
			ssize_t got = read(r->fd, buf, sizeof(buf));
			bool was = r->headers_done;

			if (got <= 0) {
				r->closed = true;
				epoll_ctl(ep, EPOLL_CTL_DEL, r->fd, NULL);
				continue;
			}
			feed(r, buf, (size_t)got, now_ms());
			if (!was && r->headers_done) {
				if (r->status != 200) {
					fprintf(stderr,
					    "reader %u: status %d\n",
					    evs[k].data.u32, r->status);
					return 1;
				}
				if (++ready == n) {
					printf("ready\n");
					fflush(stdout);
				}
			}
		}
	}
	f = fopen(newest_file, "r");
	if (f == NULL || fscanf(f, "%" SCNd64, &newest) != 1)
		newest = -1;
	if (f)
		fclose(f);
	for (i = 0; i < n; i++) {
		const struct rd *r = &rs[i];

		if (r->bad || r->closed || (newest >= 0 && r->last != newest))
			all = false;
		if (minc < 0 || r->count < minc)
			minc = r->count;
		if (r->count > maxc)
			maxc = r->count;
	}
	qsort(lat, n_lat, sizeof(*lat), cmp_d);
	printf("events_%s_readers %d n\n", label, n);
	printf("events_%s_all_got_all %d bool\n", label, all ? 1 : 0);
	printf("events_%s_per_reader_min %lld n\n", label, (long long)minc);
	printf("events_%s_per_reader_max %lld n\n", label, (long long)maxc);
	if (n_lat) {
		printf(
		    "events_%s_latency_p50 %.2f ms\n", label, lat[n_lat / 2]);
		printf("events_%s_latency_p99 %.2f ms\n", label,
		    lat[(size_t)((double)n_lat * 0.99)]);
		printf(
		    "events_%s_latency_max %.2f ms\n", label, lat[n_lat - 1]);
	}
	if (arrivals)
		fclose(arrivals);
	return 0;
}
