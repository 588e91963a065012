/*
 * http: one libcurl easy handle per struct http, reused so that the
 * connections to a service stay open between calls. Requests and answers
 * are JSON (json-c); the answer's body is kept whole (at most
 * HTTP_MAX_BODY bytes) and parsed when it parses. See http.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "http.h"
#include "macro.h"

#define HTTP_MAX_BODY (64 * 1024 * 1024)

struct http {
	CURL *curl;
	long timeout_ms;
	const _Atomic bool *abort_flag;
};

struct http_buf {
	char *p;
	size_t len, cap;
	bool too_big;
};

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_global_rc = CURLE_FAILED_INIT;

static void
http_global_init(void)
{
	http_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void
http_resp_clear(struct http_resp *r)
{
	free(r->body);
	if (r->json)
		json_object_put(r->json);
	free(r->subject_token);
	memset(r, 0, sizeof(*r));
}

int
http_new(long timeout_ms, struct http **ret, struct err *e)
{
	struct http *h;

	(void)pthread_once(&http_once, http_global_init);
	if (http_global_rc != CURLE_OK)
		return err_set(e, -ENOMEM, "curl_global_init failed");
	if ((h = calloc(1, sizeof(*h))) == NULL ||
	    (h->curl = curl_easy_init()) == NULL) {
		free(h);
		return err_set(e, -ENOMEM, "out of memory");
	}
	h->timeout_ms = timeout_ms;
	*ret = h;
	return 0;
}

struct http *
http_free(struct http *h)
{
	if (h == NULL)
		return NULL;
	curl_easy_cleanup(h->curl);
	free(h);
	return NULL;
}

void
http_set_timeout(struct http *h, long timeout_ms)
{
	h->timeout_ms = timeout_ms;
}

void
http_set_abort(struct http *h, const _Atomic bool *flag)
{
	h->abort_flag = flag;
}

static int
http_progress(
    void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const _Atomic bool *flag = arg;

	(void)dt, (void)dn, (void)ut, (void)un;
	return atomic_load(flag) ? 1 : 0;
}

static size_t
http_write(char *data, size_t size, size_t n, void *arg)
{
	struct http_buf *b = arg;
	size_t len = size * n;

	if (b->len + len + 1 > HTTP_MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + len + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL)
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return len;
}

/* Keeps X-Subject-Token (Keystone's token comes in a header). */
static size_t
http_header(char *data, size_t size, size_t n, void *arg)
{
	static const char name[] = "X-Subject-Token:";
	char **tok = arg;
	size_t len = size * n;

	if (len > sizeof(name) - 1 &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0) {
		const char *v = data + sizeof(name) - 1;
		size_t vl = len - (sizeof(name) - 1);

		while (vl > 0 && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl > 0 &&
		    (v[vl - 1] == '\r' || v[vl - 1] == '\n' ||
			v[vl - 1] == ' '))
			vl--;
		free(*tok);
		*tok = strndup(v, vl);
	}
	return len;
}

int
http_request(struct http *h, const char *method, const char *url,
    const char *const *headers, struct json_object *body, struct http_resp *ret,
    struct err *e)
{
	struct http_buf b = {0};
	struct curl_slist *hl = NULL, *t;
	char *tok = NULL;
	const char *payload = NULL;
	CURLcode cc;
	long status = 0;
	int rc = 0;

	for (size_t i = 0; headers && headers[i]; i++) {
		if ((t = curl_slist_append(hl, headers[i])) == NULL)
			goto nomem;
		hl = t;
	}
	if ((t = curl_slist_append(hl, "Accept: application/json")) == NULL)
		goto nomem;
	hl = t;
	/* no "Expect: 100-continue" round trip for a PUT */
	if ((t = curl_slist_append(hl, "Expect:")) == NULL)
		goto nomem;
	hl = t;
	if (body) {
		payload = json_object_to_json_string_ext(
		    body, JSON_C_TO_STRING_PLAIN);
		if ((t = curl_slist_append(
			 hl, "Content-Type: application/json")) == NULL)
			goto nomem;
		hl = t;
	}
	curl_easy_reset(h->curl);
	(void)curl_easy_setopt(h->curl, CURLOPT_URL, url);
	(void)curl_easy_setopt(h->curl, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		(void)curl_easy_setopt(h->curl, CURLOPT_NOBODY, 1L);
	(void)curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hl);
	(void)curl_easy_setopt(h->curl, CURLOPT_NOSIGNAL, 1L);
	(void)curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	(void)curl_easy_setopt(h->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	(void)curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, http_write);
	(void)curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &b);
	(void)curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, http_header);
	(void)curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &tok);
	if (h->abort_flag) {
		(void)curl_easy_setopt(
		    h->curl, CURLOPT_XFERINFOFUNCTION, http_progress);
		(void)curl_easy_setopt(
		    h->curl, CURLOPT_XFERINFODATA, (void *)h->abort_flag);
		(void)curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	}
	if (payload) {
		(void)curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, payload);
		(void)curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)strlen(payload));
	}
	cc = curl_easy_perform(h->curl);
	(void)curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		rc = err_set(e,
		    cc == CURLE_ABORTED_BY_CALLBACK ? -ECANCELED : -EIO,
		    "%s %s: %s", method, url,
		    b.too_big ? "answer too large" : curl_easy_strerror(cc));
		goto out;
	}
	http_resp_clear(ret);
	ret->status = status;
	ret->body = b.p ? b.p : strdup("");
	b.p = NULL;
	ret->subject_token = tok;
	tok = NULL;
	if (ret->body == NULL) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if (ret->body[0]) {
		struct json_tokener *jt = json_tokener_new_ex(32);

		if (jt == NULL) {
			rc = err_set(e, -ENOMEM, "out of memory");
			goto out;
		}
		ret->json = json_tokener_parse_ex(
		    jt, ret->body, (int)strlen(ret->body));
		if (ret->json &&
		    json_tokener_get_error(jt) != json_tokener_success) {
			json_object_put(ret->json);
			ret->json = NULL;
		}
		json_tokener_free(jt);
	}
out:
	curl_slist_free_all(hl);
	free(b.p);
	free(tok);
	return rc;
nomem:
	curl_slist_free_all(hl);
	return err_set(e, -ENOMEM, "out of memory");
}
