/*
 * api_events: GET /v1/events (design.md "Events"). With Accept:
 * application/json a page from the database; otherwise a server-sent
 * event stream: a reader of the hub (lib/events.h) pulled by the
 * connection through api_reply_stream, so a waiting reader costs a
 * suspended connection and a small struct, never a thread. The resume
 * point is Last-Event-ID (it wins) or ?after=; without either the stream
 * starts at the newest event (from now on).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "api_impl.h"
#include "events.h"
#include "macro.h"
#include "store.h"

#define EVENTS_PAGE_MAX 1000

/* One stream: its hub reader and its connection's handle. */
struct sse {
	struct events_reader *rd;
	struct api_stream *st;
	bool asked_direct;
};

static void
sse_suspend(void *arg)
{
	struct sse *x = arg;

	api_stream_suspend(x->st);
}

static void
sse_resume(void *arg)
{
	struct sse *x = arg;

	api_stream_resume(x->st);
}

static const struct events_reader_ops sse_reader_ops = {
    .suspend = sse_suspend,
    .resume = sse_resume,
};

static ssize_t
sse_read(void *cls, struct api_stream *st, char *buf, size_t max)
{
	struct sse *x = cls;
	struct err e = {0};
	struct store *s = api_stream_store(st, &e);
	ssize_t n;

	/* the hub writes the stream once it has caught up (events.h) */
	if (!x->asked_direct) {
		bool chunked = false;
		int fd = api_stream_direct(st, max, &chunked);

		x->asked_direct = true;
		if (fd >= 0)
			events_reader_direct(x->rd, fd, chunked);
	}
	n = events_reader_read(x->rd, s, buf, max);

	if (n == EVENTS_READ_END)
		return API_STREAM_END;
	if (n < 0)
		return API_STREAM_ERROR;
	return n;
}

static void
sse_free(void *cls)
{
	struct sse *x = cls;

	events_reader_free(x->rd);
	free(x);
}

static const struct api_stream_reply_ops sse_reply_ops = {
    .read = sse_read,
    .free = sse_free,
};

/* A non-negative event id in decimal (at most 18 digits), or -EINVAL
 * naming field. */
static int
parse_id(const char *v, const char *field, int64_t *ret, struct err *e)
{
	int64_t n = 0;
	size_t i, len = strlen(v);

	if (len == 0 || len > 18)
		goto bad;
	for (i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			goto bad;
		n = n * 10 + (v[i] - '0');
	}
	*ret = n;
	return 0;
bad:
	return err_set_field(e, -EINVAL, field,
	    "%s '%.40s': expected an event id (a non-negative integer)", field,
	    v);
}

/* Whether the client asked for a JSON page rather than a stream. */
static bool
wants_json(struct api_req *r)
{
	const char *acc = api_header(r, "Accept");

	return acc && strstr(acc, "application/json") &&
	    !strstr(acc, "text/event-stream");
}

void
api_events(struct api_req *r)
{
	static const char *const allowed[] = {
	    "after", "limit", "instance", NULL};
	_cleanup_free_ struct store_event *v = NULL;
	const char *after_s, *lei, *limit_s, *inst_s, *field;
	char inst[UUID_STR_LEN] = "";
	struct err e = {0};
	struct store *s;
	int64_t after = -1, limit = EVENTS_PAGE_MAX, newest = 0;
	size_t n = 0;
	struct sse *x;
	int rc;

	if ((rc = api_query_check(r, allowed, &e)) < 0)
		goto fail;
	lei = api_header(r, "Last-Event-ID");
	after_s = api_query(r, "after");
	limit_s = api_query(r, "limit");
	inst_s = api_query(r, "instance");
	/* each one given is checked, even the after the header overrides */
	if (after_s && (rc = parse_id(after_s, "after", &after, &e)) < 0)
		goto fail;
	if (lei && (rc = parse_id(lei, "Last-Event-ID", &after, &e)) < 0)
		goto fail;
	field = lei ? "Last-Event-ID" : "after";
	if (limit_s) {
		if ((rc = parse_id(limit_s, "limit", &limit, &e)) < 0 ||
		    limit < 1 || limit > EVENTS_PAGE_MAX) {
			err_clear(&e);
			rc = err_set_field(&e, -EINVAL, "limit",
			    "limit '%.40s': expected an integer from 1 to %d",
			    limit_s, EVENTS_PAGE_MAX);
			goto fail;
		}
	}
	if (inst_s && (util_uuid_normalize(inst_s, inst) < 0)) {
		rc = err_set_field(&e, -EINVAL, "instance",
		    "instance '%.40s' is not a UUID", inst_s);
		goto fail;
	}
	if ((s = api_store(r, &e)) == NULL) {
		rc = e.code;
		goto fail;
	}
	if (inst[0]) {
		struct instance *i = NULL;

		/* unknown: neither a row nor a kept event names it */
		rc = store_instance_get(s, inst, &i, &e);
		instance_free(i);
		if (rc == -ENOENT) {
			err_clear(&e);
			if ((rc = store_events_list(
				 s, 0, 1, inst, &v, &n, &e)) < 0)
				goto fail;
			free(v);
			v = NULL;
			if (n == 0) {
				rc = err_set_field(&e, -EINVAL, "instance",
				    "no instance %s (and no event of one)",
				    inst);
				goto fail;
			}
		} else if (rc < 0)
			goto fail;
	}
	if ((rc = events_check_after(
		 s, after < 0 ? 0 : after, field, &newest, &e)) < 0)
		goto fail;

	if (wants_json(r)) {
		char *text = NULL;
		size_t len = 0;

		if ((rc = store_events_list(s, after < 0 ? 0 : after,
			 (size_t)limit, inst[0] ? inst : NULL, &v, &n, &e)) <
			0 ||
		    (rc = events_page_format(v, n, newest, &text, &len, &e)) <
			0)
			goto fail;
		api_reply_take(r, 200, "application/json", text, len);
		return;
	}
	if (r->h->events == NULL) {
		rc = err_set(&e, -EAGAIN, "the event stream is not running");
		goto fail;
	}
	if (after == 0) { /* from the oldest kept */
		int64_t oldest;

		if ((rc = store_events_bounds(s, &oldest, &newest, &e)) < 0)
			goto fail;
		after = oldest - 1;
	}
	x = calloc(1, sizeof(*x));
	if (x == NULL) {
		rc = err_set(&e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = events_reader_new(r->h->events, after < 0 ? newest : after,
		 inst[0] ? inst : NULL, &sse_reader_ops, x, &x->rd, &e)) < 0) {
		free(x);
		goto fail;
	}
	if ((x->st = api_reply_stream(
		 r, 200, "text/event-stream", &sse_reply_ops, x)) == NULL)
		sse_free(x);
	return;
fail:
	(void)rc;
	api_reply_error(r, &e);
}
