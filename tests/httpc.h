/*
 * The HTTP client harness shared by the Check programs that drive the
 * real daemon over a socket (check_api, check_http): spawning and
 * stopping hyperletd, one libcurl request into a struct resp, and the
 * small helpers around them. The names are short on purpose: they are
 * the vocabulary of those tests' call sites.
 */
#ifndef HYPERLET_HTTPC_H
#define HYPERLET_HTTPC_H

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

int64_t now_ms(void);
void sleep_ms(int ms);
/* Writes text to path (a failure fails the test). */
void write_file(const char *path, const char *text);

/* Starts $HYPERLETD --config conf with stdout and stderr appended to log
 * (removed first, so the wait reads this start's lines) and waits up to
 * timeout_ms for the "(port N" of its "serving on" line. *pid is the child,
 * or 0 if it exited before saying; returns the port or -1. */
int httpc_daemon_spawn(const char *dir, const char *conf, const char *log,
    int timeout_ms, pid_t *pid);
/* SIGTERM, then the exit status (128 + signal for a signal, -1 if it had
 * to be killed after 30 s); *pid becomes 0. */
int httpc_daemon_stop(pid_t *pid);

struct resp {
	long status;
	char *body;
	size_t len;
	char *headers;
	size_t hlen;
	double seconds;
	CURLcode cc;
	struct json_object *json; /* parsed body, if the caller parsed it */
};

void resp_clear(struct resp *r);
/* A response header's value (a buffer of the calling thread's own,
 * overwritten by its next call) or NULL. */
const char *hdr(const struct resp *r, const char *name);

/* A streamed request body, read by libcurl in chunks. */
struct upload_src {
	const char *data; /* NULL: zero bytes */
	size_t len, off;
	size_t chunk; /* bytes per read callback; 0: all */
	int delay_ms; /* sleep before each chunk */
};

struct httpc_req {
	const char *method;
	const char *url;
	const char *body; /* POSTFIELDS, unless src */
	size_t blen;
	struct upload_src *src; /* streamed body */
	bool chunked; /* src without a length */
	long timeout_s; /* 0: 60 */
	struct curl_slist *headers; /* the caller's, freed by the caller */
};

/* Performs q on c (any TLS certificate is accepted) and fills *r: body,
 * headers, status, seconds and curl's result in r->cc, which is also
 * returned. c keeps its connection for a reuse. */
CURLcode httpc_perform(CURL *c, const struct httpc_req *q, struct resp *r);

#endif
