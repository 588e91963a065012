/*
 * api_impl: what api.c (the libmicrohttpd glue) and the route handlers
 * (api_instances.c, api_images.c) share. Not for main(). Handlers never see
 * MHD: they get a struct api_req with the matched path parameters, the
 * whole body (JSON routes) or a stream of chunks (uploads), and answer
 * through the api_reply_* functions; api.c turns that into a response,
 * counts it and logs one line.
 */
#ifndef HYPERLET_API_IMPL_H
#define HYPERLET_API_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "hyperlet.h"
#include "util.h"

struct api;
struct json_object;
struct store;

/* One request, from its headers to its completion. Owned by api.c. */
struct api_req {
	struct api *api;
	struct hyperlet *h;
	const char *method; /* MHD's; "GET", "PUT", ... */
	const char *route; /* the route template (static), for metrics */
	char id[UUID_STR_LEN]; /* {uuid} / {image_id}, canonical, or "" */
	char *sub; /* {volume_id}, as sent (decoded), or NULL */
	char *body; /* the whole body (JSON routes), NUL-terminated */
	size_t body_len;
	uint64_t content_length; /* UINT64_MAX when not announced */
	void *stream; /* upload state (api_images.c) */

	/* the reply, set by api_reply_* */
	int status; /* 0 until a reply is set */
	char *reply; /* owned */
	size_t reply_len;
	const char *content_type; /* static */
	char *location; /* owned; Location header, or NULL */
	char etag[32]; /* ETag header (with its quotes), or "" */
	char log_uuid[UUID_STR_LEN]; /* the instance the log line names */
	char problem_field[ERR_FIELD_MAX]; /* for the log line */
	char problem_detail[ERR_MSG_MAX]; /* 5xx only, for the log line */
	bool claimed; /* holds the claim on id (api_instance_claim) */
	struct api_stream *stream_reply; /* api_reply_stream, or NULL */
};

/* Handler of a complete request. Must set a reply (api.c answers 500 if it
 * does not). */
typedef void (*api_handler)(struct api_req *r);

/* Streaming upload: begin is called once the headers are in (before any
 * body), data for each chunk, finish once the body is complete (it must
 * set the reply), and cleanup at the end whatever happened (client gone,
 * error), possibly more than once (it must be idempotent): as soon as an
 * upload fails or finishes, and again at completion. begin and data
 * return 0 or a negative errno with e set; after an error the rest of the
 * body is discarded and answered with the error. */
struct api_stream_ops {
	int (*begin)(struct api_req *r, struct err *e);
	int (*data)(
	    struct api_req *r, const char *buf, size_t len, struct err *e);
	void (*finish)(struct api_req *r);
	void (*cleanup)(struct api_req *r);
};

/* This thread's store connection (opened on first use, kept for the
 * thread's life; borrowed). NULL with -EAGAIN in e when the database
 * cannot be opened. */
struct store *api_store(struct api_req *r, struct err *e);

/* A request header or query parameter (borrowed, valid during the
 * request), or NULL. */
const char *api_header(struct api_req *r, const char *name);
const char *api_query(struct api_req *r, const char *name);
/* -EINVAL naming the first query parameter not in allowed (NULL ended). */
int api_query_check(
    struct api_req *r, const char *const *allowed, struct err *e);

/* Replies. Each replaces an earlier reply. */
void api_reply_json(struct api_req *r, int status, struct json_object *o);
void api_reply_text(struct api_req *r, int status, const char *content_type,
    const char *text, size_t len);
void api_reply_empty(struct api_req *r, int status);
/* As api_reply_text, but takes text (malloc'ed; freed with the request)
 * instead of copying it: for large bodies. */
void api_reply_take(struct api_req *r, int status, const char *content_type,
    char *text, size_t len);
/*
 * A streamed reply of unknown length (chunked), pulled from MHD's own
 * thread: ops->read(cls, st, buf, max) returns the bytes it wrote (> 0),
 * 0 after calling api_stream_suspend(st) (nothing to send yet: the
 * connection sleeps until api_stream_resume), API_STREAM_END (the reply
 * ends) or API_STREAM_ERROR (the connection is closed). ops->free(cls)
 * runs once the connection is done (never during a read). Returns the
 * stream's handle (owned by api.c, valid until ops->free), or NULL with
 * a 500 reply set (out of memory). Never a thread per stream.
 */
struct api_stream;
#define API_STREAM_END (-1)
#define API_STREAM_ERROR (-2)
struct api_stream_reply_ops {
	ssize_t (*read)(
	    void *cls, struct api_stream *st, char *buf, size_t max);
	void (*free)(void *cls);
};
struct api_stream *api_reply_stream(struct api_req *r, int status,
    const char *content_type, const struct api_stream_reply_ops *ops,
    void *cls);
/* From inside ops->read only. */
void api_stream_suspend(struct api_stream *st);
/* From any thread, while the stream lives (its ops->free not yet run). */
void api_stream_resume(struct api_stream *st);
/* From inside ops->read (max: its max), when the stream may be written
 * to its socket by another thread while suspended: the socket, with
 * *chunked set when the body is HTTP/1.1 chunks (otherwise its bytes go
 * as they are, up to the connection's close); -1 when it may not (TLS). */
int api_stream_direct(struct api_stream *st, size_t max, bool *chunked);
/* The calling (MHD) thread's store connection, for ops->read. */
struct store *api_stream_store(struct api_stream *st, struct err *e);

/* An RFC 9457 problem from e (its code mapped by the one errno -> HTTP
 * table in api.c; e->field becomes "field"). */
void api_reply_error(struct api_req *r, const struct err *e);
/* The HTTP status for a negative errno. */
int api_status_for_errno(int code);

/* Claims the instance r->id for a change, until the handler returns
 * (api.c releases it). api.c claims before a change is queued (the route's
 * claim flag), so in a handler this returns 0 at once. Never waits: a
 * change already in progress is -EBUSY (409) naming it. Returns 0,
 * -EBUSY, -ENOMEM. */
int api_instance_claim(struct api_req *r, struct err *e);

/* The job queue as /v1/health shows it (api.c). */
struct api_jobs {
	size_t queued, running;
	int64_t oldest_wait_ms; /* of the oldest queued job; 0: none */
	bool stalled; /* see api_jobs_stalled (api.h) */
};
void api_jobs_get(struct api *a, struct api_jobs *ret);

/* Creates hold the images lock shared, image deletes exclusive. */
void api_images_lock(struct api_req *r, bool exclusive);
void api_images_unlock(struct api_req *r);

/* sha256 of buf as 64 lower-case hex digits (api_images.c). Returns 0 or
 * -EIO. */
int api_sha256_hex(const void *buf, size_t len, char out[65]);

/* Route handlers. */
void api_health(struct api_req *r);
void api_metrics(struct api_req *r);
void api_instances_list(struct api_req *r);
void api_instances_create(struct api_req *r);
/* Before POST /v1/instances is queued: r->id = the body's uuid, or one
 * drawn for the create (left "" for a uuid that is not one: the handler
 * answers 400). */
void api_instances_create_id(struct api_req *r);
void api_instance_put(struct api_req *r);
void api_instance_get(struct api_req *r);
void api_instance_delete(struct api_req *r);
void api_instance_action(struct api_req *r);
void api_instance_bdms(struct api_req *r);
void api_instance_blockinfo(struct api_req *r);
void api_instance_domain(struct api_req *r);
void api_instance_console(struct api_req *r);
void api_instance_config_drive(struct api_req *r);
void api_instance_attach(struct api_req *r);
void api_instance_detach(struct api_req *r);
void api_instance_interface_attach(struct api_req *r);
void api_instance_interface_detach(struct api_req *r);
void api_node_get(struct api_req *r);
void api_events(struct api_req *r);
void api_images_list(struct api_req *r);
void api_image_get(struct api_req *r);
void api_image_delete(struct api_req *r);
extern const struct api_stream_ops api_image_upload;

/* Request counters for the metrics page (api.c). */
int64_t api_inflight(struct api *a);
struct metrics *api_metrics_get(struct api *a);

#endif
