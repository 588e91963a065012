/*
 * bench_loadgen: the HTTP load generator of `make bench`. One thread drives
 * a libcurl multi handle with a fixed number of requests in flight (the
 * concurrency), records each request's latency and prints one line per
 * figure ("name value unit"). It creates instances from a body template
 * (then deletes them, at the same concurrency), or walks GET /v1/instances
 * page by page. Not a test: it only reports.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uuid/uuid.h>

#include "benchutil.h"

struct slot {
	CURL *h;
	struct curl_slist *hdrs;
	char *body; /* request body, owned */
	char *resp; /* response body, owned */
	size_t resp_len;
	char location[256];
	double t0;
	size_t index; /* which request of the run */
	bool busy;
};

struct run {
	const char *base; /* http://127.0.0.1:PORT */
	const char *token; /* bearer token or NULL */
	const char *tmpl; /* create body template */
	int expect; /* HTTP status that counts as success */
	size_t n; /* requests to make */
	size_t next; /* next request to start */
	size_t done;
	size_t errors;
	double *lat; /* ms per request */
	char **uuids; /* created instance uuids (create runs) */
	enum { RUN_CREATE, RUN_DELETE, RUN_LIST } kind;
	size_t limit; /* list: page size */
	char marker[64]; /* list: the next marker ("" for the first page) */
};

static size_t
on_data(char *p, size_t sz, size_t nm, void *u)
{
	struct slot *s = u;
	size_t n = sz * nm;
	char *nb = realloc(s->resp, s->resp_len + n + 1);

	if (nb == NULL)
		return 0;
	s->resp = nb;
	memcpy(s->resp + s->resp_len, p, n);
	s->resp_len += n;
	s->resp[s->resp_len] = '\0';
	return n;
}

static size_t
on_header(char *p, size_t sz, size_t nm, void *u)
{
	struct slot *s = u;
	size_t n = sz * nm;

	if (n > 9 && strncasecmp(p, "Location:", 9) == 0) {
		size_t i = 9, j = 0;

		while (i < n && p[i] == ' ')
			i++;
		while (i < n && p[i] != '\r' && p[i] != '\n' &&
		    j + 1 < sizeof(s->location))
			s->location[j++] = p[i++];
		s->location[j] = '\0';
	}
	return n;
}

/* Replaces every @KEY@ of the template: @NAME@ a unique name, @VOLn@ and
 * @UUIDn@ fresh uuids. */
static char *
render(const char *tmpl, size_t index)
{
	size_t cap = strlen(tmpl) + 1024, len = 0;
	char *out = malloc(cap);
	const char *p = tmpl;

	if (out == NULL)
		abort();
	while (*p) {
		char rep[64];
		size_t skip = 0;

		rep[0] = '\0';
		if (strncmp(p, "@NAME@", 6) == 0) {
			snprintf(rep, sizeof(rep), "bench-%zu", index);
			skip = 6;
		} else if (strncmp(p, "@VOL", 4) == 0 ||
		    strncmp(p, "@UUID", 5) == 0) {
			const char *e = strchr(p + 1, '@');
			uuid_t u;

			if (e != NULL) {
				uuid_generate_random(u);
				uuid_unparse_lower(u, rep);
				skip = (size_t)(e - p) + 1;
			}
		}
		if (skip == 0) {
			rep[0] = *p;
			rep[1] = '\0';
			skip = 1;
		}
		if (len + strlen(rep) + 1 > cap) {
			cap *= 2;
			out = realloc(out, cap);
			if (out == NULL)
				abort();
		}
		memcpy(out + len, rep, strlen(rep));
		len += strlen(rep);
		p += skip;
	}
	out[len] = '\0';
	return out;
}

static void
slot_start(struct run *r, struct slot *s, CURLM *m)
{
	char url[512];

	s->index = r->next++;
	s->resp_len = 0;
	s->location[0] = '\0';
	free(s->body);
	s->body = NULL;
	curl_easy_reset(s->h);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
	curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdrs);
	curl_easy_setopt(s->h, CURLOPT_TIMEOUT, 120L);
	switch (r->kind) {
	case RUN_CREATE:
		s->body = render(r->tmpl, s->index);
		snprintf(url, sizeof(url), "%s/v1/instances", r->base);
		curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
		break;
	case RUN_DELETE:
		snprintf(url, sizeof(url), "%s/v1/instances/%s", r->base,
		    r->uuids[s->index] ? r->uuids[s->index] : "none");
		curl_easy_setopt(s->h, CURLOPT_CUSTOMREQUEST, "DELETE");
		break;
	case RUN_LIST:
		snprintf(url, sizeof(url), "%s/v1/instances?limit=%zu%s%s",
		    r->base, r->limit, r->marker[0] ? "&marker=" : "",
		    r->marker);
		break;
	}
	curl_easy_setopt(s->h, CURLOPT_URL, url);
	s->t0 = bench_now_ms();
	s->busy = true;
	curl_multi_add_handle(m, s->h);
}

/* The "next" marker of a list page, "" at the end. */
static void
next_marker(const char *json, char out[64])
{
	const char *p = json ? strstr(json, "\"next\"") : NULL;
	size_t j = 0;

	out[0] = '\0';
	if (p == NULL)
		return;
	p += 6;
	while (*p == ' ' || *p == ':')
		p++;
	if (*p != '"')
		return;
	p++;
	while (*p && *p != '"' && j < 63)
		out[j++] = *p++;
	out[j] = '\0';
}

static void
slot_finish(struct run *r, struct slot *s, CURLcode cc)
{
	long status = 0;

	curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
	r->lat[s->index] = bench_now_ms() - s->t0;
	s->busy = false;
	r->done++;
	if (cc != CURLE_OK || status != r->expect) {
		if (r->errors++ < 5)
			fprintf(stderr,
			    "bench_loadgen: request %zu: %s %ld %.300s\n",
			    s->index, curl_easy_strerror(cc), status,
			    s->resp ? s->resp : "");
		return;
	}
	if (r->kind == RUN_CREATE) {
		const char *slash = strrchr(s->location, '/');

		if (slash != NULL && strlen(slash + 1) == 36)
			r->uuids[s->index] = strdup(slash + 1);
		/* BENCH_ANSWERS: "uuid ms" per create, the time its answer
		 * (sent after the commit) arrived, CLOCK_REALTIME, for
		 * bench_sse's committed -> received latency */
		if (slash != NULL && getenv("BENCH_ANSWERS")) {
			FILE *f = fopen(getenv("BENCH_ANSWERS"), "a");
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			if (f) {
				fprintf(f, "%s %.3f\n", slash + 1,
				    (double)ts.tv_sec * 1e3 +
					(double)ts.tv_nsec / 1e6);
				fclose(f);
			}
		}
	} else if (r->kind == RUN_LIST) {
		next_marker(s->resp, r->marker);
		if (r->marker[0] == '\0')
			r->n = r->done; /* walked to the end */
	}
}

/* Runs r with conc requests in flight; returns the wall time in ms. */
static double
run_go(struct run *r, int conc)
{
	CURLM *m = curl_multi_init();
	struct slot *slots = calloc((size_t)conc, sizeof(*slots));
	double t0 = bench_now_ms();
	int running = 0;

	r->next = r->done = r->errors = 0;
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conc);
	for (int i = 0; i < conc; i++) {
		char auth[300];

		slots[i].h = curl_easy_init();
		slots[i].hdrs =
		    curl_slist_append(NULL, "Content-Type: application/json");
		slots[i].hdrs = curl_slist_append(slots[i].hdrs, "Expect:");
		if (r->token) {
			snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
			    r->token);
			slots[i].hdrs = curl_slist_append(slots[i].hdrs, auth);
		}
	}
	/* A list walk is sequential by nature (each page needs the last
	 * page's marker): one request in flight. */
	for (int i = 0; i < conc && r->next < r->n; i++)
		slot_start(r, &slots[i], m);
	while (r->done < r->n || running > 0) {
		CURLMsg *msg;
		int left;

		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			for (int i = 0; i < conc; i++)
				if (slots[i].h == msg->easy_handle)
					s = &slots[i];
			curl_multi_remove_handle(m, s->h);
			slot_finish(r, s, msg->data.result);
			if (r->next < r->n)
				slot_start(r, s, m);
		}
		if (r->done >= r->n && running == 0)
			break;
		curl_multi_poll(m, NULL, 0, 100, NULL);
	}
	t0 = bench_now_ms() - t0;
	for (int i = 0; i < conc; i++) {
		curl_easy_cleanup(slots[i].h);
		curl_slist_free_all(slots[i].hdrs);
		free(slots[i].body);
		free(slots[i].resp);
	}
	free(slots);
	curl_multi_cleanup(m);
	return t0;
}

static void
report(const char *name, struct run *r, double wall_ms)
{
	bench_report_latencies(name, r->lat, r->done, wall_ms, r->errors);
}

static int
usage(void)
{
	fprintf(stderr,
	    "usage: bench_loadgen create BASE_URL BODY_TEMPLATE N CONC NAME "
	    "[keep]\n"
	    "       bench_loadgen list BASE_URL LIMIT WALKS NAME\n"
	    "  BASE_URL http://127.0.0.1:PORT; $BENCH_TOKEN = bearer token\n");
	return 2;
}

int
main(int argc, char **argv)
{
	struct run r = {0};
	char name[128];
	double wall;

	if (argc < 2)
		return usage();
	curl_global_init(CURL_GLOBAL_ALL);
	r.token = getenv("BENCH_TOKEN");
	if (strcmp(argv[1], "create") == 0 && (argc == 7 || argc == 8)) {
		int conc = atoi(argv[5]);
		bool keep = argc == 8 && strcmp(argv[7], "keep") == 0;

		r.base = argv[2];
		r.tmpl = bench_read_file(argv[3]);
		r.n = strtoul(argv[4], NULL, 10);
		if (r.tmpl == NULL || r.n == 0 || conc < 1)
			return usage();
		r.lat = calloc(r.n, sizeof(double));
		r.uuids = calloc(r.n, sizeof(char *));
		r.kind = RUN_CREATE;
		r.expect = 201;
		wall = run_go(&r, conc);
		snprintf(name, sizeof(name), "create_%s", argv[6]);
		report(name, &r, wall);
		if (!keep) {
			size_t n = r.n;

			r.kind = RUN_DELETE;
			r.expect = 204;
			wall = run_go(&r, conc);
			r.n = n;
			snprintf(name, sizeof(name), "delete_%s", argv[6]);
			report(name, &r, wall);
		}
		return 0;
	}
	if (strcmp(argv[1], "list") == 0 && argc == 6) {
		size_t walks = strtoul(argv[4], NULL, 10), total = 0, cap = 0;
		double *all = NULL, wall_all = 0;
		size_t errors = 0;

		r.base = argv[2];
		r.limit = strtoul(argv[3], NULL, 10);
		if (r.limit == 0 || walks == 0)
			return usage();
		r.kind = RUN_LIST;
		r.expect = 200;
		for (size_t w = 0; w < walks; w++) {
			r.n = 100000; /* until "next" is null */
			r.marker[0] = '\0';
			r.lat = calloc(r.n, sizeof(double));
			wall_all += run_go(&r, 1);
			errors += r.errors;
			if (total + r.done > cap) {
				cap = (total + r.done) * 2;
				all = realloc(all, cap * sizeof(double));
			}
			memcpy(all + total, r.lat, r.done * sizeof(double));
			total += r.done;
			free(r.lat);
			if (r.errors)
				break;
		}
		snprintf(name, sizeof(name), "list_%s", argv[5]);
		bench_report_latencies(name, all, total, wall_all, errors);
		return 0;
	}
	return usage();
}
