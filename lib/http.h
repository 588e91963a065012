/*
 * http: a small HTTP/JSON client on libcurl (<curl/curl.h> only here),
 * for the services hyperlet talks to (OpenStack Placement and Keystone,
 * lib/placement.c). One struct http is one reusable curl handle (kept-alive
 * connections) used by one thread at a time; nothing is global but
 * curl_global_init, done once by http_new.
 */
#ifndef HYPERLET_HTTP_H
#define HYPERLET_HTTP_H

#include <stdbool.h>

#include <json-c/json.h>

#include "err.h"

struct http;

/* One answer: status and body (the body parsed when it is JSON). */
struct http_resp {
	long status; /* 0 until an answer came */
	char *body; /* owned, NUL-terminated, "" when empty */
	struct json_object *json; /* owned; NULL when the body is not JSON */
	char *subject_token; /* owned: the X-Subject-Token header (Keystone),
				NULL when absent */
};

void http_resp_clear(struct http_resp *r);

/* A client whose every call times out after timeout_ms (connect and
 * transfer together). Returns 0 and *ret (http_free) or -ENOMEM. */
int http_new(long timeout_ms, struct http **ret, struct err *e);
struct http *http_free(struct http *h);

/* The timeout of the calls from now on. */
void http_set_timeout(struct http *h, long timeout_ms);

/* A call in progress fails (-ECANCELED) soon after *flag becomes true
 * (checked about once a second, and at each chunk): a daemon that stops
 * does not wait out a timeout. flag must outlive h; NULL: none. */
void http_set_abort(struct http *h, const _Atomic bool *flag);

/*
 * One request: method ("GET", "PUT", ...) on url with the extra header
 * lines headers (NULL-terminated "Name: value" strings, may be NULL) and,
 * when body is not NULL, body serialised as application/json. Any HTTP
 * status is a success of the call: *ret (cleared first; http_resp_clear)
 * holds it. Returns 0, or -EIO (connection refused, timeout, TLS: the
 * message says which) with *ret untouched, -ENOMEM.
 */
int http_request(struct http *h, const char *method, const char *url,
    const char *const *headers, struct json_object *body, struct http_resp *ret,
    struct err *e);

#endif
