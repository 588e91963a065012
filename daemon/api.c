/*
 * api: the libmicrohttpd glue of the HTTP API v1. It owns the route table,
 * authentication, body accumulation and streaming, request limits, the one
 * errno -> HTTP table, RFC 9457 problem bodies, the request log line, the
 * request metrics and the graceful stop. Handlers (api_instances.c,
 * api_images.c) see no MHD type. MHD's own epoll thread pool reads
 * requests and runs the quick handlers (health, metrics, database reads);
 * a handler that calls libvirt (route_method.slow) runs on a job thread
 * while its connection is suspended, so no MHD worker, and no other
 * connection on it, ever waits for libvirt. Every thread keeps its own
 * store connection. Slow clients are cut off by a reaper thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api.h"
#include "api_impl.h"
#include "cfg.h"
#include "compute.h"
#include "events.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "tls.h"
#include "util.h"

enum body_kind {
	BODY_NONE = 0, /* a body is read (within max_body) and ignored */
	BODY_JSON, /* application/json, whole, within max_body */
	BODY_STREAM, /* application/octet-stream, streamed to ops */
};

/* How a malformed {uuid}/{image_id} is answered: nothing can exist under
 * it (404), or the request would create it (400). */
enum id_rule {
	ID_LOOKUP = 0,
	ID_CREATE,
};

struct route_method {
	const char *method;
	api_handler handler;
	enum body_kind body;
	const struct api_stream_ops *stream;
	enum id_rule id_rule;
	/* Calls libvirt: runs on a job thread while its connection is
	 * suspended, so MHD's workers (and health) never wait for it. */
	bool slow;
	/* Changes the instance: claimed (api_instance_claim) before it is
	 * queued, so a second change is 409 without taking a job thread,
	 * and no job thread ever waits for a claim. */
	bool claim;
	/* Sets r->id to the instance to claim when the path has none (a
	 * create: the body's uuid, or one drawn for it). */
	void (*claim_id)(struct api_req *r);
};

/* A job thread, and the condition it waits on while idle. */
struct job_thread {
	struct api *a;
	pthread_t t;
	pthread_cond_t cond; /* a job for it, or stop */
	bool idle; /* on a->jobs_idle */
};

struct route {
	const char *tmpl; /* segments; {x} matches one non-empty segment */
	const char *allow; /* the Allow header of a 405 */
	bool public; /* served without the bearer token */
	struct route_method m[3];
};

static const struct route routes[] = {
    {"/v1/health", "GET, HEAD", true, {{"GET", api_health}}},
    {"/metrics", "GET, HEAD", false, {{"GET", api_metrics}}},
    {"/v1/instances", "GET, HEAD, POST", false,
	{{"GET", api_instances_list},
	    {"POST", api_instances_create, BODY_JSON, NULL, ID_LOOKUP, true,
		true, api_instances_create_id}}},
    {"/v1/instances/{uuid}", "GET, HEAD, PUT, DELETE", false,
	{{"GET", api_instance_get},
	    {"PUT", api_instance_put, BODY_JSON, NULL, ID_CREATE, true, true},
	    {"DELETE", api_instance_delete, BODY_NONE, NULL, ID_LOOKUP, true,
		true}}},
    {"/v1/instances/{uuid}/action", "POST", false,
	{{"POST", api_instance_action, BODY_JSON, NULL, ID_LOOKUP, true,
	    true}}},
    {"/v1/instances/{uuid}/block_device_mappings", "GET, HEAD", false,
	{{"GET", api_instance_bdms}}},
    {"/v1/instances/{uuid}/block_device_info", "GET, HEAD", false,
	{{"GET", api_instance_blockinfo}}},
    {"/v1/instances/{uuid}/domain", "GET, HEAD", false,
	{{"GET", api_instance_domain, BODY_NONE, NULL, ID_LOOKUP, true}}},
    {"/v1/instances/{uuid}/console", "GET, HEAD", false,
	{{"GET", api_instance_console}}},
    {"/v1/instances/{uuid}/config_drive", "GET, HEAD", false,
	{{"GET", api_instance_config_drive}}},
    {"/v1/instances/{uuid}/volumes", "POST", false,
	{{"POST", api_instance_attach, BODY_JSON, NULL, ID_LOOKUP, true,
	    true}}},
    {"/v1/instances/{uuid}/volumes/{volume_id}", "DELETE", false,
	{{"DELETE", api_instance_detach, BODY_NONE, NULL, ID_LOOKUP, true,
	    true}}},
    {"/v1/instances/{uuid}/interfaces", "POST", false,
	{{"POST", api_instance_interface_attach, BODY_JSON, NULL, ID_LOOKUP,
	    true, true}}},
    {"/v1/instances/{uuid}/interfaces/{port_id}", "DELETE", false,
	{{"DELETE", api_instance_interface_detach, BODY_NONE, NULL, ID_LOOKUP,
	    true, true}}},
    {"/v1/node", "GET, HEAD", false, {{"GET", api_node_get}}},
    {"/v1/events", "GET, HEAD", false, {{"GET", api_events}}},
    {"/v1/images", "GET, HEAD", false, {{"GET", api_images_list}}},
    {"/v1/images/{image_id}", "GET, HEAD, PUT, DELETE", false,
	{{"GET", api_image_get},
	    {"PUT", NULL, BODY_STREAM, &api_image_upload, ID_CREATE, true},
	    {"DELETE", api_image_delete, BODY_NONE, NULL, ID_LOOKUP, true}}},
};

/* The one errno -> HTTP table (style.md 3). Codes the lib modules return
 * come first; the rest are the API's own conditions. */
static const struct {
	int code; /* negative errno */
	int status;
	const char *slug; /* the problem type's last segment */
	const char *title;
} errno_map[] = {
    {-EINVAL, 400, "invalid-request", "Invalid request"},
    {-ENOENT, 404, "not-found", "Not found"},
    {-EEXIST, 409, "conflict", "Conflict"},
    {-EBUSY, 409, "conflict", "Conflict"},
    {-EAGAIN, 503, "unavailable", "Service unavailable"},
    {-E2BIG, 413, "too-large", "Request too large"},
    {-EFBIG, 413, "too-large", "Request too large"},
    {-EOPNOTSUPP, 501, "not-implemented", "Not implemented"},
    /* a create that does not fit the node (store_instance_claim) */
    {-ENOSPC, 409, "insufficient-resources", "Insufficient resources"},
    /* the API's own */
    {-EACCES, 401, "unauthorized", "Unauthorized"},
    {-ENOSYS, 405, "method-not-allowed", "Method not allowed"},
    {-ESTALE, 412, "precondition-failed", "Precondition failed"},
    {-EMEDIUMTYPE, 415, "unsupported-media-type", "Unsupported media type"},
    {-ESHUTDOWN, 503, "unavailable", "Service unavailable"},
    {-ENXIO, 421, "misdirected-request", "Misdirected request"},
    /* events asked for that retention has pruned (events.h) */
    {-EIDRM, 410, "gone", "Gone"},
};

/* A log line kind that is written at most once a second. */
struct log_limit {
	int64_t last_us;
	uint64_t quiet; /* lines not written since */
};

struct api {
	struct hyperlet *h; /* borrowed, outlives a */
	struct MHD_Daemon *mhd;
	const struct cfg *cfg;
	const char *token; /* borrowed from cfg; NULL: no auth */
	size_t token_len;
	struct tls *tls; /* HTTPS certificate and key; NULL: plain HTTP */
	struct compute *own_compute; /* made here when main gave none */
	const char *db_path;
	pthread_key_t store_key; /* each worker's struct store */
	atomic_int_fast64_t inflight; /* requests between headers and
					 completion */
	atomic_bool stopping; /* api_stop began: answer 503, close */
	/* Creates (read) against image deletes (write): an image cannot go
	 * between a create's look-up of it and its row naming it. */
	pthread_rwlock_t images_lock;
	/* Job threads: run the slow handlers (route_method.slow) while MHD
	 * keeps the connection suspended. */
	pthread_mutex_t jobs_lock; /* guards the queue, jobs_stop, idle */
	struct req *jobs_head, *jobs_tail;
	bool jobs_stop;
	size_t jobs_queued, jobs_running;
	int64_t jobs_progress_us; /* the last job finished (or the start) */
	int64_t stall_us; /* job_stall_timeout */
	struct job_thread *job_threads; /* n_job_slots, conds made */
	size_t n_job_slots, n_job_threads; /* allocated, started */
	/* The waiting job threads, the one that waited least on top: a job
	 * wakes it, so that at low load one thread, with its warm store
	 * connection (and SQLite page cache) and CPU caches, takes job after
	 * job instead of each going to the thread that waited longest. */
	struct job_thread **jobs_idle;
	size_t n_jobs_idle;
	/* Instances with a change in progress (api_instance_claim). */
	pthread_mutex_t claims_lock; /* guards claims */
	pthread_cond_t claims_cond; /* a claim went (CLOCK_MONOTONIC) */
	struct claim *claims;
	/* Deadlines for slow clients (the reaper thread): MHD's
	 * connection_timeout is an idle timeout, so a client that sends one
	 * byte a second would hold a connection for ever. */
	pthread_mutex_t conns_lock; /* guards conns and the tracks in it */
	struct conn_track *conns;
	pthread_t reaper;
	bool reaper_started;
	pthread_cond_t reaper_cond; /* with conns_lock: wakes it to stop */
	bool reaper_stop;
	int64_t deadline_us; /* connection_timeout */
	int64_t header_us; /* header_timeout, at most deadline_us */
	int64_t min_upload_rate; /* bytes/s over deadline_us; 0: none */
	int per_ip_limit; /* per_ip_connection_limit; 0: none */
	/* Request ids: a random prefix per start, then a counter. */
	uint32_t id_seed;
	atomic_uint_fast32_t id_next;
	/* Lines any client can cause without a token (401s, connections
	 * cut off or refused, MHD's complaints) are logged at most once a
	 * second each (log_pass). */
	pthread_mutex_t noise_lock; /* guards the three below */
	struct log_limit log401, log_cut, log_mhd;
	int port;
};

struct claim {
	struct claim *next;
	char uuid[UUID_STR_LEN];
	bool outside; /* api_claim_uuid's: a change made outside a request */
};

/* How long a request waits for a claim made outside a request (the
 * lifecycle events' worker holds one for a libvirt read and a SQLite
 * transaction, a few ms) before it answers 409. */
#define CLAIM_OUTSIDE_WAIT_MS 2000

/* MHD's memory pool per connection (its default is 32 KiB). It holds the
 * request line and headers, the answer's headers and the chunk being
 * sent; bodies go to the request's own buffer (req_data) or the upload's
 * file, so they are not bounded by it. An idle event stream keeps its
 * pool (most of it touched) for as long as it is open: 200 readers cost
 * ~5 MiB with 32 KiB and ~1.6 MiB with this, which still takes a request
 * line and headers of about 4 KiB (more answers 431). */
#define API_CONN_POOL 6144
/* The callback response's own buffer (calloc'd, unused for chunked
 * streams: MHD reads into its pool's write buffer). */
#define API_STREAM_BLOCK 64

/* One open connection. Its socket is shut down by the reaper when the
 * client takes longer than header_timeout to send a request's headers
 * (until one of its requests passed authentication; then
 * connection_timeout, also for a JSON body), or when an upload averages
 * less than min_upload_rate over a connection_timeout window. */
struct conn_track {
	struct conn_track *prev, *next;
	int fd;
	int64_t deadline_us; /* 0: none (a handler runs, or an upload) */
	int64_t deadline_len_us; /* what deadline_us allowed, for the log */
	bool authed; /* a request of it passed authentication */
	bool waiting; /* for a request's headers (idle or slow) */
	int64_t since_us; /* when it began waiting */
	int family; /* the client's address, for per_ip_connection_limit */
	unsigned char ip[16];
	bool upload; /* an upload's body is being read */
	int64_t win_start_us; /* the upload's current rate window */
	uint64_t win_bytes; /* bytes received in it */
	bool cut;
};

/* MHD's per-request context: api_req plus what only api.c sees. */
struct req {
	struct api_req pub; /* first: handlers get &pub */
	struct MHD_Connection *conn;
	const struct route_method *rm;
	int64_t t0_us;
	char method[16];
	char *path; /* for the log line */
	size_t body_cap;
	struct err err; /* an error met while reading the body */
	bool failed; /* err holds the answer; discard the body */
	bool queued;
	int queued_status;
	char req_id[20]; /* X-Request-Id, in 5xx bodies and the log line */
	const char *allow; /* Allow header for 405 */
	bool auth_challenge; /* WWW-Authenticate for 401 */
	struct req *job_next; /* in the job queue */
	int64_t queued_us; /* when it was queued */
	bool job_done; /* the job thread set the reply: queue it */
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct req *
req_of(struct api_req *r)
{
	return (struct req *)r;
}

/* The HTTP status for a negative errno (the table above; 500 if absent). */
int
api_status_for_errno(int code)
{
	size_t i;

	for (i = 0; i < ELEMENTSOF(errno_map); i++)
		if (errno_map[i].code == code)
			return errno_map[i].status;
	return 500;
}

static void
reply_take(struct api_req *r, int status, const char *content_type, char *buf,
    size_t len)
{
	free(r->reply);
	r->status = status;
	r->content_type = content_type;
	r->reply = buf;
	r->reply_len = len;
}

/* Serializes o (borrowed) as the reply body. */
void
api_reply_json(struct api_req *r, int status, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(
	    o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	char *copy = s ? strdup(s) : NULL;

	if (copy == NULL) {
		struct err e = {0};

		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return;
	}
	reply_take(r, status, "application/json", copy, strlen(copy));
}

/* Takes text (len bytes, malloc'ed, NUL-terminated) as the reply body. */
void
api_reply_take(struct api_req *r, int status, const char *content_type,
    char *text, size_t len)
{
	reply_take(r, status, content_type, text, len);
}

/* Copies text (len bytes) as the reply body. */
void
api_reply_text(struct api_req *r, int status, const char *content_type,
    const char *text, size_t len)
{
	char *copy = malloc(len + 1);

	if (copy == NULL) {
		struct err e = {0};

		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return;
	}
	memcpy(copy, text, len);
	copy[len] = '\0';
	reply_take(r, status, content_type, copy, len);
}

/* A reply with no body (204). */
void
api_reply_empty(struct api_req *r, int status)
{
	reply_take(r, status, NULL, NULL, 0);
}

/* An RFC 9457 problem from e. */
void
api_reply_error(struct api_req *r, const struct err *e)
{
	int code = e && e->code ? e->code : -EIO;
	const char *slug = "internal", *title = "Internal server error";
	int status = 500;
	size_t i;
	char type[96];
	struct json_object *o;

	for (i = 0; i < ELEMENTSOF(errno_map); i++)
		if (errno_map[i].code == code) {
			slug = errno_map[i].slug;
			title = errno_map[i].title;
			status = errno_map[i].status;
			break;
		}
	(void)snprintf(type, sizeof(type), "urn:hyperlet:problem:%s", slug);
	o = json_object_new_object();
	if (o == NULL) {
		reply_take(r, 500, NULL, NULL, 0);
		return;
	}
	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "title", json_object_new_string(title));
	json_object_object_add(o, "status", json_object_new_int(status));
	if (status >= 500 && status != 501) {
		/* The cause (libvirt's words, host paths) is for the log
		 * line, not the client: it gets the id to find it there.
		 * A 501 is not a fault but the client's information: its
		 * detail names the feature the libvirt driver lacks. */
		const char *id = req_of(r)->req_id;
		char detail[160];

		(void)snprintf(detail, sizeof(detail),
		    "%s; the daemon's log has the cause under request id %s",
		    title, id);
		json_object_object_add(
		    o, "detail", json_object_new_string(detail));
		json_object_object_add(
		    o, "request_id", json_object_new_string(id));
	} else
		json_object_object_add(o, "detail",
		    json_object_new_string(e && e->msg[0] ? e->msg : title));
	if (e && e->field[0]) {
		json_object_object_add(
		    o, "field", json_object_new_string(e->field));
		(void)snprintf(
		    r->problem_field, sizeof(r->problem_field), "%s", e->field);
	}
	api_reply_json(r, status, o);
	json_object_put(o);
	if (r->status == status)
		r->content_type = "application/problem+json";
	/* the request's one log line carries it (at warning level) */
	if (status >= 500)
		(void)snprintf(r->problem_detail, sizeof(r->problem_detail),
		    "%s", e && e->msg[0] ? e->msg : title);
}

static void
store_key_free(void *p)
{
	(void)store_close(p);
}

static struct store *store_of(struct api *a, struct err *e);

/* This thread's store connection (see api_impl.h). */
struct store *
api_store(struct api_req *r, struct err *e)
{
	return store_of(r->api, e);
}

static struct store *
store_of(struct api *a, struct err *e)
{
	struct store *s = pthread_getspecific(a->store_key);
	struct store_opts o = {
	    .no_migrate = true, .sync_normal = a->cfg->sync_normal};
	struct err oe = {0};

	if (s)
		return s;
	/* no_migrate: a missing file is an error, not a new empty database */
	if (store_open(a->db_path, &o, &s, &oe) < 0) {
		err_set(e, -EAGAIN, "database unavailable: %s", oe.msg);
		return NULL;
	}
	if (pthread_setspecific(a->store_key, s) != 0) {
		(void)store_close(s);
		err_set(e, -ENOMEM, "out of memory");
		return NULL;
	}
	return s;
}

/* A request header (borrowed) or NULL. */
const char *
api_header(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(
	    req_of(r)->conn, MHD_HEADER_KIND, name);
}

/* A query parameter (borrowed) or NULL. */
const char *
api_query(struct api_req *r, const char *name)
{
	return MHD_lookup_connection_value(
	    req_of(r)->conn, MHD_GET_ARGUMENT_KIND, name);
}

struct query_check {
	const char *const *allowed;
	const char *bad;
};

static enum MHD_Result
query_check_one(
    void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct query_check *q = cls;
	size_t i;

	(void)kind;
	(void)value;
	for (i = 0; q->allowed[i]; i++)
		if (STREQ(q->allowed[i], key))
			return MHD_YES;
	q->bad = key;
	return MHD_NO;
}

/* -EINVAL naming the first query parameter not in allowed. */
int
api_query_check(struct api_req *r, const char *const *allowed, struct err *e)
{
	struct query_check q = {allowed, NULL};

	(void)MHD_get_connection_values(
	    req_of(r)->conn, MHD_GET_ARGUMENT_KIND, query_check_one, &q);
	if (q.bad)
		return err_set_field(e, -EINVAL, q.bad,
		    "unknown query parameter '%.64s'", q.bad);
	return 0;
}

/* Claims uuid: 0, -EBUSY, -ENOMEM. A request (outside false) waits up
 * to CLAIM_OUTSIDE_WAIT_MS for a claim made outside a request, and never
 * for another request's: a job thread that waited for a claim only a job
 * behind it in the queue could release would wait for ever. The worker
 * outside never waits (it retries). */
static int
claim_take(struct api *a, const char *uuid, bool outside)
{
	struct timespec until;
	struct claim *c;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += CLAIM_OUTSIDE_WAIT_MS / 1000;
	until.tv_nsec += (CLAIM_OUTSIDE_WAIT_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->claims_lock);
	for (c = a->claims; c;)
		if (!STREQ(c->uuid, uuid))
			c = c->next;
		else if (!outside && c->outside &&
		    pthread_cond_timedwait(
			&a->claims_cond, &a->claims_lock, &until) == 0)
			c = a->claims; /* a claim went: look again */
		else {
			pthread_mutex_unlock(&a->claims_lock);
			return -EBUSY;
		}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		pthread_mutex_unlock(&a->claims_lock);
		return -ENOMEM;
	}
	(void)snprintf(c->uuid, sizeof(c->uuid), "%s", uuid);
	c->outside = outside;
	c->next = a->claims;
	a->claims = c;
	pthread_mutex_unlock(&a->claims_lock);
	return 0;
}

/* Claims uuid for a change outside a request (see api.h). */
int
api_claim_uuid(void *arg, const char *uuid)
{
	return claim_take(arg, uuid, true);
}

/* Releases a claim of api_claim_uuid (see api.h). */
void
api_release_uuid(void *arg, const char *uuid)
{
	struct api *a = arg;
	struct claim **pp, *c;

	pthread_mutex_lock(&a->claims_lock);
	for (pp = &a->claims; (c = *pp); pp = &c->next)
		if (STREQ(c->uuid, uuid)) {
			*pp = c->next;
			free(c);
			break;
		}
	pthread_cond_broadcast(&a->claims_cond);
	pthread_mutex_unlock(&a->claims_lock);
}

/* Claims r->id for a change (see api_impl.h and claim_take). */
int
api_instance_claim(struct api_req *r, struct err *e)
{
	int rc;

	if (r->claimed) /* api.c claimed it before queueing */
		return 0;
	if ((rc = claim_take(r->api, r->id, false)) == -EBUSY)
		return err_set_field(e, -EBUSY, "uuid",
		    "instance %s: another change is in progress", r->id);
	if (rc < 0)
		return err_set(e, rc, "out of memory");
	r->claimed = true;
	return 0;
}

static void
instance_release(struct api_req *r)
{
	if (!r->claimed)
		return;
	api_release_uuid(r->api, r->id);
	r->claimed = false;
}

/* The images lock (see struct api): shared for creates, exclusive for
 * image deletes. */
void
api_images_lock(struct api_req *r, bool exclusive)
{
	if (exclusive)
		pthread_rwlock_wrlock(&r->api->images_lock);
	else
		pthread_rwlock_rdlock(&r->api->images_lock);
}

void
api_images_unlock(struct api_req *r)
{
	pthread_rwlock_unlock(&r->api->images_lock);
}

/* Requests between headers and completion. */
int64_t
api_inflight(struct api *a)
{
	return atomic_load(&a->inflight);
}

/* The API's request counters (borrowed). */
struct metrics *
api_metrics_get(struct api *a)
{
	return a->h->metrics;
}

static struct conn_track *
track_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci ? ci->socket_context : NULL;
}

enum track_mode {
	TRACK_NONE, /* a handler runs, or an upload (its rate is watched) */
	TRACK_BODY, /* a JSON body: connection_timeout */
	TRACK_NEXT, /* the next request's headers: header_timeout until a
		       request passed authentication, then
		       connection_timeout */
};

/* Whether to write a line of kind l now: at most one a second. The line
 * written also tells how many were not (quiet gets " (and N more <what>
 * not logged)" or ""). */
static bool
log_pass(struct api *a, struct log_limit *l, const char *what, char *quiet,
    size_t size)
{
	int64_t now = now_us();
	bool pass = false;

	quiet[0] = '\0';
	pthread_mutex_lock(&a->noise_lock);
	if (l->last_us == 0 || now - l->last_us >= 1000000) {
		if (l->quiet)
			(void)snprintf(quiet, size,
			    " (and %llu more %s not logged)",
			    (unsigned long long)l->quiet, what);
		l->last_us = now;
		l->quiet = 0;
		pass = true;
	} else
		l->quiet++;
	pthread_mutex_unlock(&a->noise_lock);
	return pass;
}

/* Sets the connection's deadline (see enum track_mode). */
static void
track_deadline(struct api *a, struct MHD_Connection *c, enum track_mode m)
{
	struct conn_track *t = track_of(c);
	int64_t len = 0;

	if (t == NULL)
		return;
	pthread_mutex_lock(&a->conns_lock);
	if (m == TRACK_BODY || (m == TRACK_NEXT && t->authed))
		len = a->deadline_us;
	else if (m == TRACK_NEXT)
		len = a->header_us;
	t->deadline_us = len ? now_us() + len : 0;
	t->deadline_len_us = len;
	t->waiting = m == TRACK_NEXT;
	if (t->waiting)
		t->since_us = now_us();
	if (m != TRACK_NONE)
		t->upload = false;
	pthread_mutex_unlock(&a->conns_lock);
}

/* A request of the connection passed authentication: its next requests'
 * headers get connection_timeout, not header_timeout. */
static void
track_authed(struct api *a, struct MHD_Connection *c)
{
	struct conn_track *t = track_of(c);

	if (t == NULL)
		return;
	pthread_mutex_lock(&a->conns_lock);
	t->authed = true;
	pthread_mutex_unlock(&a->conns_lock);
}

/* Starts (on) or ends watching the rate of the connection's upload. */
static void
track_upload(struct api *a, struct MHD_Connection *c, bool on)
{
	struct conn_track *t = track_of(c);

	if (t == NULL)
		return;
	pthread_mutex_lock(&a->conns_lock);
	t->upload = on;
	t->win_start_us = now_us();
	t->win_bytes = 0;
	pthread_mutex_unlock(&a->conns_lock);
}

/* Counts len bytes of the connection's upload. */
static void
track_bytes(struct api *a, struct MHD_Connection *c, size_t len)
{
	struct conn_track *t = track_of(c);

	if (t == NULL)
		return;
	pthread_mutex_lock(&a->conns_lock);
	t->win_bytes += len;
	pthread_mutex_unlock(&a->conns_lock);
}

/* Notes the client's address in t (IPv4, IPv6; others are not limited). */
static void
track_address(struct conn_track *t, const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		t->family = AF_INET;
		memcpy(t->ip, &in->sin_addr, sizeof(in->sin_addr));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		t->family = AF_INET6;
		memcpy(t->ip, &in6->sin6_addr, sizeof(in6->sin6_addr));
	}
}

/*
 * per_ip_connection_limit for the new connection t (not yet listed;
 * conns_lock held). When its address holds the limit already, the oldest
 * of that address's connections that wait for a request's headers
 * (unauthenticated ones first) is cut, and t is served; only when none
 * waits is t itself cut. So a client that holds its slots idle cannot
 * lock out another on the same address (the scheduler and a local
 * attacker both come from 127.0.0.1): a new connection costs the idler
 * its oldest one, while connections busy with a request are never cut.
 */
static void
track_per_ip(struct api *a, struct conn_track *t)
{
	struct conn_track *o, *victim = NULL;
	int n = 0;
	char quiet[64];

	if (a->per_ip_limit <= 0 || t->family == 0)
		return;
	for (o = a->conns; o; o = o->next) {
		if (o->cut || o->family != t->family ||
		    memcmp(o->ip, t->ip, sizeof(o->ip)) != 0)
			continue;
		n++;
		if (o->waiting &&
		    (victim == NULL || (victim->authed && !o->authed) ||
			(victim->authed == o->authed &&
			    o->since_us < victim->since_us)))
			victim = o;
	}
	if (n < a->per_ip_limit)
		return;
	if (victim == NULL)
		victim = t;
	victim->cut = true;
	(void)shutdown(victim->fd, SHUT_RDWR);
	if (log_pass(a, &a->log_cut, "cut off", quiet, sizeof(quiet)))
		log_info("api: a client address holds %d connections "
			 "(per_ip_connection_limit): %s%s",
		    n,
		    victim == t ? "refused a new one"
				: "closed its oldest idle one",
		    quiet);
}

static void
on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct api *a = cls;
	struct conn_track *t = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(
		    c, MHD_CONNECTION_INFO_CONNECTION_FD);
		const union MHD_ConnectionInfo *ai = MHD_get_connection_info(
		    c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		t = calloc(1, sizeof(*t));
		if (t == NULL || ci == NULL) {
			free(t);
			return; /* untracked: the idle timeout still holds */
		}
		t->fd = ci->connect_fd;
		if (ai && ai->client_addr)
			track_address(t, ai->client_addr);
		pthread_mutex_lock(&a->conns_lock);
		t->deadline_us = now_us() + a->header_us;
		t->deadline_len_us = a->header_us;
		t->waiting = true;
		t->since_us = now_us();
		track_per_ip(a, t);
		t->next = a->conns;
		if (a->conns)
			a->conns->prev = t;
		a->conns = t;
		pthread_mutex_unlock(&a->conns_lock);
		*socket_context = t;
		return;
	}
	if (t == NULL)
		return;
	/* MHD closes the socket after this callback: under the lock the
	 * reaper never touches a closed (or reused) descriptor. */
	pthread_mutex_lock(&a->conns_lock);
	if (t->prev)
		t->prev->next = t->next;
	else
		a->conns = t->next;
	if (t->next)
		t->next->prev = t->prev;
	pthread_mutex_unlock(&a->conns_lock);
	free(t);
	*socket_context = NULL;
}

/* Shuts down the sockets of clients past their deadline, and of uploads
 * under min_upload_rate over the last window; MHD then sees the
 * connection end and closes it in its own thread. */
static void *
reaper_run(void *p)
{
	struct api *a = p;

	util_thread_name("hl-reaper");
	pthread_mutex_lock(&a->conns_lock);
	while (!a->reaper_stop) {
		struct timespec ts;
		int64_t now = now_us();
		struct conn_track *t;

		for (t = a->conns; t; t = t->next) {
			int64_t win = now - t->win_start_us;
			char quiet[64];

			if (t->cut)
				continue;
			if (t->deadline_us && now > t->deadline_us) {
				t->cut = true;
				(void)shutdown(t->fd, SHUT_RDWR);
				if (log_pass(a, &a->log_cut, "cut off", quiet,
					sizeof(quiet)))
					log_info("api: cut off a client that "
						 "sent no complete request in "
						 "%lld s%s",
					    (long long)(t->deadline_len_us /
						1000000),
					    quiet);
			} else if (t->upload && a->min_upload_rate > 0 &&
			    win >= a->deadline_us) {
				/* bytes/s averaged over the window */
				if ((double)t->win_bytes * 1e6 <
				    (double)a->min_upload_rate * (double)win) {
					t->cut = true;
					(void)shutdown(t->fd, SHUT_RDWR);
					log_info("api: cut off an upload that "
						 "sent %llu bytes in %lld s "
						 "(min_upload_rate %lld)",
					    (unsigned long long)t->win_bytes,
					    (long long)(win / 1000000),
					    (long long)a->min_upload_rate);
				} else {
					t->win_start_us = now;
					t->win_bytes = 0;
				}
			}
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(
		    &a->reaper_cond, &a->conns_lock, &ts);
	}
	pthread_mutex_unlock(&a->conns_lock);
	return NULL;
}

/* Matches path against tmpl; on success stores {uuid}/{image_id} in
 * ret_id and {volume_id} in ret_sub (owned). */
static bool
route_match(const char *tmpl, const char *path, char *ret_id, size_t id_size,
    char **ret_sub)
{
	const char *t = tmpl, *p = path;
	char id[64] = "";
	const char *sub = NULL;
	size_t sub_len = 0;

	while (*t && *p) {
		if (*t != '/' || *p != '/')
			return false;
		t++;
		p++;
		const char *te = strchrnul(t, '/');
		const char *pe = strchrnul(p, '/');
		size_t tl = (size_t)(te - t), pl = (size_t)(pe - p);

		if (*t == '{') {
			if (pl == 0)
				return false;
			if (strncmp(t, "{volume_id}", tl) == 0 ||
			    strncmp(t, "{port_id}", tl) == 0) {
				sub = p;
				sub_len = pl;
			} else {
				if (pl >= sizeof(id))
					pl = sizeof(id) - 1;
				memcpy(id, p, pl);
				id[pl] = '\0';
			}
		} else if (tl != pl || strncmp(t, p, tl) != 0)
			return false;
		t = te;
		p = pe;
	}
	if (*t || *p)
		return false;
	(void)snprintf(ret_id, id_size, "%s", id);
	if (sub) {
		*ret_sub = strndup(sub, sub_len);
	}
	return true;
}

/* True if the media type of header value v (before any ';') is want. */
static bool
media_type_is(const char *v, const char *want)
{
	size_t n;

	if (v == NULL)
		return false;
	while (*v == ' ' || *v == '\t')
		v++;
	n = strcspn(v, "; \t");
	return n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* True if the Host header value v names the loopback: localhost,
 * 127.0.0.0/8 or [::1], each with an optional port. A page that DNS
 * rebinding points at the daemon sends its own name. */
static bool
host_is_loopback(const char *v)
{
	char name[64];
	const char *port;
	size_t n;

	if (v[0] == '[') {
		struct in6_addr a6;
		const char *end = strchr(v, ']');

		if (end == NULL || (size_t)(end - v - 1) >= sizeof(name))
			return false;
		n = (size_t)(end - v - 1);
		memcpy(name, v + 1, n);
		name[n] = '\0';
		port = end + 1;
		if (inet_pton(AF_INET6, name, &a6) != 1 ||
		    memcmp(&a6, &in6addr_loopback, sizeof(a6)) != 0)
			return false;
	} else {
		struct in_addr a4;

		n = strcspn(v, ":");
		if (n == 0 || n >= sizeof(name))
			return false;
		memcpy(name, v, n);
		name[n] = '\0';
		port = v + n;
		if (strcasecmp(name, "localhost") != 0 &&
		    !(inet_pton(AF_INET, name, &a4) == 1 &&
			(ntohl(a4.s_addr) >> 24) == 127))
			return false;
	}
	if (*port == '\0')
		return true;
	if (*port++ != ':' || *port == '\0' || strlen(port) > 5)
		return false;
	return strspn(port, "0123456789") == strlen(port);
}

/* Constant-time comparison of the Authorization header with the token. */
static bool
auth_ok(struct api *a, struct MHD_Connection *c)
{
	const char *v = MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	unsigned char d;
	size_t i, n;

	if (v == NULL || strncasecmp(v, "Bearer ", 7) != 0)
		return false;
	v += 7;
	while (*v == ' ')
		v++;
	n = strlen(v);
	/* Every byte of the token is compared whatever the input; only the
	 * input's own length shows in the time taken. */
	d = n != a->token_len;
	for (i = 0; i < a->token_len; i++)
		d |= (unsigned char)(a->token[i] ^ (i < n ? v[i] : 0));
	return d == 0;
}

/* --- streamed replies (api_reply_stream) --------------------------------- */

struct api_stream {
	struct api *api;
	struct MHD_Connection *conn;
	const struct api_stream_reply_ops *ops;
	void *cls;
};

/* See api_impl.h. */
struct api_stream *
api_reply_stream(struct api_req *r, int status, const char *content_type,
    const struct api_stream_reply_ops *ops, void *cls)
{
	struct api_stream *st = calloc(1, sizeof(*st));

	if (st == NULL) {
		struct err e = {0};

		err_set(&e, -ENOMEM, "out of memory");
		api_reply_error(r, &e);
		return NULL;
	}
	st->api = r->api;
	st->conn = req_of(r)->conn;
	st->ops = ops;
	st->cls = cls;
	reply_take(r, status, content_type, NULL, 0);
	free(r->stream_reply);
	r->stream_reply = st;
	return st;
}

void
api_stream_suspend(struct api_stream *st)
{
	MHD_suspend_connection(st->conn);
}

void
api_stream_resume(struct api_stream *st)
{
	MHD_resume_connection(st->conn);
}

/* See api_impl.h. Only libmicrohttpd 0.9.75's two ways of sending a
 * body of unknown length are told apart here: chunked, where the read
 * writes into the connection's pool buffer (max well over
 * API_STREAM_BLOCK), and close-delimited, where it writes into the
 * response's own API_STREAM_BLOCK bytes. In both, MHD asks for more only
 * once everything before is sent. */
int
api_stream_direct(struct api_stream *st, size_t max, bool *chunked)
{
	const union MHD_ConnectionInfo *ci;
	int one = 1, zero = 0;

	if (st->api->tls)
		return -1;
	ci = MHD_get_connection_info(
	    st->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return -1;
	/* the hub's sends go at once; a cork MHD left is pulled */
	(void)setsockopt(
	    ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(
	    ci->connect_fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
	/* a direct stream stays suspended: MHD's idle timeout must not cut
	 * it when it is resumed to end (heartbeats keep it checked) */
	(void)MHD_set_connection_option(
	    st->conn, MHD_CONNECTION_OPTION_TIMEOUT, (unsigned int)0);
	*chunked = max > API_STREAM_BLOCK;
	return ci->connect_fd;
}

struct store *
api_stream_store(struct api_stream *st, struct err *e)
{
	return store_of(st->api, e);
}

static ssize_t
stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct api_stream *st = cls;
	ssize_t n;

	(void)pos;
	if (max == 0)
		return 0;
	n = st->ops->read(st->cls, st, buf, max);
	if (n >= 0)
		return n;
	return n == API_STREAM_END ? MHD_CONTENT_READER_END_OF_STREAM
				   : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void
stream_free(void *cls)
{
	struct api_stream *st = cls;

	st->ops->free(st->cls);
	free(st);
}

static enum MHD_Result
queue_reply(struct api *a, struct req *q)
{
	struct api_req *r = &q->pub;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->status == 0) {
		struct err e = {0};

		err_set(&e, -EIO, "handler set no reply");
		api_reply_error(r, &e);
	}
	if (r->stream_reply) {
		resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
		    API_STREAM_BLOCK, stream_read, r->stream_reply,
		    stream_free);
		if (resp)
			r->stream_reply = NULL; /* freed with the response */
	} else if (r->reply) {
		resp = MHD_create_response_from_buffer(
		    r->reply_len, r->reply, MHD_RESPMEM_MUST_FREE);
		if (resp)
			r->reply = NULL; /* MHD frees it now */
	} else
		resp = MHD_create_response_from_buffer(
		    0, NULL, MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	if (r->content_type)
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->location)
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->etag[0])
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_ETAG, r->etag);
	if (r->status == 405 && q->allow)
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_ALLOW, q->allow);
	if (r->status == 401)
		(void)MHD_add_response_header(resp,
		    MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		    q->auth_challenge ? "Bearer realm=\"hyperlet\", "
					"error=\"invalid_token\""
				      : "Bearer realm=\"hyperlet\"");
	(void)MHD_add_response_header(
	    resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	(void)MHD_add_response_header(resp, "X-Request-Id", q->req_id);
	if (atomic_load(&a->stopping) || q->failed)
		(void)MHD_add_response_header(
		    resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(q->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	q->queued = true;
	q->queued_status = r->status;
	/* Counted when queued (not when the client has read it), so that a
	 * client's next request already sees this one in /metrics. */
	metrics_observe(a->h->metrics, r->route ? r->route : METRICS_UNMATCHED,
	    q->method, r->status, now_us() - q->t0_us);
	return ret;
}

static enum MHD_Result
queue_error(struct api *a, struct req *q, const struct err *e)
{
	api_reply_error(&q->pub, e);
	return queue_reply(a, q);
}

/* The checks made once the headers are in: shutdown, auth, route, method,
 * path ids, media type, announced length. Returns 0 to read the body, or
 * a negative errno with e set to answer at once. */
static int
req_begin(struct api *a, struct req *q, const char *url, const char *method,
    struct err *e)
{
	struct api_req *r = &q->pub;
	const struct route *rt = NULL;
	const struct route_method *rm = NULL;
	const char *cl, *ct;
	char id[64];
	size_t i, j;
	int64_t max;
	bool authed;

	if (atomic_load(&a->stopping))
		return err_set(e, -ESHUTDOWN, "the daemon is shutting down");
	for (i = 0; i < ELEMENTSOF(routes) && rt == NULL; i++) {
		char *sub = NULL;

		if (route_match(routes[i].tmpl, url, id, sizeof(id), &sub)) {
			rt = &routes[i];
			r->sub = sub;
		}
	}
	r->route = rt ? rt->tmpl : METRICS_UNMATCHED;
	authed = a->token == NULL || auth_ok(a, q->conn);
	if ((rt == NULL || !rt->public) && !authed) {
		q->auth_challenge =
		    MHD_lookup_connection_value(q->conn, MHD_HEADER_KIND,
			MHD_HTTP_HEADER_AUTHORIZATION) != NULL;
		/* one series: nothing such a client sends becomes a label */
		r->route = METRICS_UNAUTHENTICATED;
		return err_set(e, -EACCES,
		    q->auth_challenge ? "wrong bearer token"
				      : "a bearer token is required");
	}
	if (a->token == NULL) {
		/* Without a token the daemon listens on the loopback only,
		 * and whoever reaches it is trusted: a browser page must not
		 * reach it through a rebound DNS name. (HTTP/1.0 may omit
		 * Host; browsers never do.) */
		const char *host = MHD_lookup_connection_value(
		    q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);

		if (host && !host_is_loopback(host))
			return err_set(e, -ENXIO,
			    "Host '%.64s' is not a loopback name: without an "
			    "auth token only localhost, 127.0.0.0/8 and [::1] "
			    "are served",
			    host);
	}
	if (authed)
		track_authed(a, q->conn);
	if (rt == NULL)
		return err_set(e, -ENOENT, "no such resource");
	for (j = 0; j < ELEMENTSOF(rt->m) && rt->m[j].method; j++)
		if (STREQ(rt->m[j].method, method) ||
		    (STREQ(method, "HEAD") && STREQ(rt->m[j].method, "GET")))
			rm = &rt->m[j];
	if (rm == NULL) {
		q->allow = rt->allow;
		return err_set(e, -ENOSYS, "method %.16s not allowed on %s",
		    method, rt->tmpl);
	}
	q->rm = rm;
	if (strstr(rt->tmpl, "{uuid}") || strstr(rt->tmpl, "{image_id}")) {
		const char *what =
		    strstr(rt->tmpl, "{image_id}") ? "image_id" : "uuid";

		if (util_uuid_normalize(id, r->id) < 0) {
			if (rm->id_rule == ID_CREATE)
				return err_set_field(e, -EINVAL, what,
				    "%s in the path is not a UUID", what);
			return err_set(e, -ENOENT, "no such %s",
			    STREQ(what, "uuid") ? "instance" : "image");
		}
	}

	ct = MHD_lookup_connection_value(
	    q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (rm->body == BODY_JSON && !media_type_is(ct, "application/json"))
		return err_set_field(e, -EMEDIUMTYPE, "Content-Type",
		    "expected Content-Type application/json");
	if (rm->body == BODY_STREAM &&
	    !media_type_is(ct, "application/octet-stream"))
		return err_set_field(e, -EMEDIUMTYPE, "Content-Type",
		    "expected Content-Type application/octet-stream");

	max = rm->body == BODY_STREAM ? a->cfg->max_image_bytes
				      : a->cfg->max_body_bytes;
	r->content_length = UINT64_MAX;
	cl = MHD_lookup_connection_value(
	    q->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(cl, &end, 10);
		if (errno == 0 && end != cl && *end == '\0')
			r->content_length = v;
		if (r->content_length != UINT64_MAX &&
		    r->content_length > (uint64_t)max)
			return err_set(e, -EFBIG,
			    "the body is larger than %lld bytes",
			    (long long)max);
	}
	if (rm->body == BODY_STREAM) {
		int rc = rm->stream->begin(r, e);

		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Takes one chunk of the body. Returns 0 or a negative errno in e. */
static int
req_data(
    struct api *a, struct req *q, const char *buf, size_t len, struct err *e)
{
	struct api_req *r = &q->pub;
	size_t max = (size_t)a->cfg->max_body_bytes;

	if (q->rm->body == BODY_STREAM)
		return q->rm->stream->data(r, buf, len, e);
	if (r->body_len + len > max)
		return err_set(
		    e, -EFBIG, "the body is larger than %zu bytes", max);
	if (r->body_len + len + 1 > q->body_cap) {
		size_t cap = q->body_cap ? q->body_cap : 4096;
		char *nb;

		while (cap < r->body_len + len + 1)
			cap *= 2;
		nb = realloc(r->body, cap);
		if (nb == NULL)
			return err_set(e, -ENOMEM, "out of memory");
		r->body = nb;
		q->body_cap = cap;
	}
	memcpy(r->body + r->body_len, buf, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

/* Runs the request's handler (or finishes its upload) on this thread. */
static void
run_handler(struct req *q)
{
	if (q->rm->body == BODY_STREAM) {
		q->rm->stream->finish(&q->pub);
		/* before the answer leaves: a client that reads it finds no
		 * temporary file behind */
		q->rm->stream->cleanup(&q->pub);
	} else {
		q->rm->handler(&q->pub);
		instance_release(&q->pub);
	}
}

/* Queues a suspended request for a job thread. */
static void
job_queue(struct api *a, struct req *q)
{
	pthread_mutex_lock(&a->jobs_lock);
	q->job_next = NULL;
	q->queued_us = now_us();
	a->jobs_queued++;
	if (a->jobs_tail)
		a->jobs_tail->job_next = q;
	else
		a->jobs_head = q;
	a->jobs_tail = q;
	/* the thread that waited least; with none idle, each busy thread
	 * looks at the queue before it waits */
	if (a->n_jobs_idle > 0) {
		struct job_thread *jt = a->jobs_idle[--a->n_jobs_idle];

		jt->idle = false;
		pthread_cond_signal(&jt->cond);
	}
	pthread_mutex_unlock(&a->jobs_lock);
}

/* A job thread: takes suspended requests in order, runs their handler on
 * this thread (with this thread's own store connection) and resumes the
 * connection, whose access handler then queues the reply. After
 * jobs_stop, requests still queued get 503 without running. */
static void *
job_run(void *p)
{
	struct job_thread *self = p;
	struct api *a = self->a;

	util_thread_name("hl-job");
	for (;;) {
		struct req *q;
		bool run;

		pthread_mutex_lock(&a->jobs_lock);
		while (a->jobs_head == NULL && !a->jobs_stop) {
			if (!self->idle) {
				self->idle = true;
				a->jobs_idle[a->n_jobs_idle++] = self;
			}
			pthread_cond_wait(&self->cond, &a->jobs_lock);
		}
		/* woken by stop, or spuriously, or found a job before its
		 * own wake-up: off the idle stack */
		if (self->idle) {
			size_t i;

			for (i = 0; a->jobs_idle[i] != self; i++)
				;
			memmove(&a->jobs_idle[i], &a->jobs_idle[i + 1],
			    (--a->n_jobs_idle - i) * sizeof(*a->jobs_idle));
			self->idle = false;
		}
		q = a->jobs_head;
		if (q == NULL) {
			pthread_mutex_unlock(&a->jobs_lock);
			return NULL;
		}
		a->jobs_head = q->job_next;
		if (a->jobs_head == NULL)
			a->jobs_tail = NULL;
		a->jobs_queued--;
		a->jobs_running++;
		run = !a->jobs_stop;
		pthread_mutex_unlock(&a->jobs_lock);
		if (run)
			run_handler(q);
		else {
			struct err e = {0};

			err_set(&e, -ESHUTDOWN, "the daemon is shutting down");
			api_reply_error(&q->pub, &e);
		}
		pthread_mutex_lock(&a->jobs_lock);
		a->jobs_running--;
		a->jobs_progress_us = now_us();
		pthread_mutex_unlock(&a->jobs_lock);
		q->job_done = true;
		MHD_resume_connection(q->conn);
	}
}

/* The job queue's state (see api_impl.h): stalled when its oldest job
 * has waited longer than job_stall_timeout and no job finished in that
 * time either. */
void
api_jobs_get(struct api *a, struct api_jobs *ret)
{
	int64_t now = now_us();

	pthread_mutex_lock(&a->jobs_lock);
	ret->queued = a->jobs_queued;
	ret->running = a->jobs_running;
	ret->oldest_wait_ms =
	    a->jobs_head ? (now - a->jobs_head->queued_us) / 1000 : 0;
	ret->stalled = a->jobs_head && !a->jobs_stop &&
	    now - a->jobs_head->queued_us > a->stall_us &&
	    now - a->jobs_progress_us > a->stall_us;
	pthread_mutex_unlock(&a->jobs_lock);
}

/* Whether the job queue makes no progress (see api.h). */
bool
api_jobs_stalled(struct api *a)
{
	struct api_jobs j;

	api_jobs_get(a, &j);
	return j.stalled;
}

static int
jobs_start(struct api *a, size_t n, struct err *e)
{
	int rc;

	a->jobs_progress_us = now_us();
	a->job_threads = calloc(n, sizeof(*a->job_threads));
	a->jobs_idle = calloc(n, sizeof(*a->jobs_idle));
	if (a->job_threads == NULL || a->jobs_idle == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (; a->n_job_slots < n; a->n_job_slots++) {
		a->job_threads[a->n_job_slots].a = a;
		pthread_cond_init(&a->job_threads[a->n_job_slots].cond, NULL);
	}
	for (; a->n_job_threads < n; a->n_job_threads++) {
		struct job_thread *jt = &a->job_threads[a->n_job_threads];

		if ((rc = pthread_create(&jt->t, NULL, job_run, jt)) != 0)
			return err_set(
			    e, -rc, "cannot start a thread: %s", strerror(rc));
	}
	return 0;
}

/* Stops the job threads once the queue is empty (see job_run). */
static void
jobs_stop(struct api *a)
{
	size_t i;

	pthread_mutex_lock(&a->jobs_lock);
	a->jobs_stop = true;
	for (i = 0; i < a->n_job_threads; i++)
		pthread_cond_signal(&a->job_threads[i].cond);
	pthread_mutex_unlock(&a->jobs_lock);
	for (i = 0; i < a->n_job_threads; i++)
		pthread_join(a->job_threads[i].t, NULL);
	a->n_job_threads = 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct api *a = cls;
	struct req *q = *con_cls;
	struct err e = {0};

	(void)version;
	if (q == NULL) {
		q = calloc(1, sizeof(*q));
		if (q == NULL)
			return MHD_NO;
		q->pub.api = a;
		q->pub.h = a->h;
		q->conn = c;
		q->t0_us = now_us();
		(void)snprintf(q->method, sizeof(q->method), "%s", method);
		q->pub.method = q->method;
		q->path = strndup(url, 512);
		if (q->path == NULL) {
			free(q);
			return MHD_NO;
		}
		(void)snprintf(q->req_id, sizeof(q->req_id), "%08x%08x",
		    (unsigned)a->id_seed,
		    (unsigned)atomic_fetch_add(&a->id_next, 1));
		atomic_fetch_add(&a->inflight, 1);
		*con_cls = q;
		/* headers are in: a JSON body gets a fresh deadline, an upload
		 * a minimum rate (and the idle timeout) */
		track_deadline(a, c, TRACK_BODY);
		if (req_begin(a, q, url, method, &e) < 0) {
			if (q->rm && q->rm->body == BODY_STREAM)
				q->rm->stream->cleanup(&q->pub);
			track_deadline(a, c, TRACK_NONE);
			return queue_error(a, q, &e);
		}
		if (q->rm->body == BODY_STREAM) {
			track_deadline(a, c, TRACK_NONE);
			track_upload(a, c, true);
		}
		return MHD_YES;
	}
	if (q->queued)
		return MHD_YES;
	if (q->job_done) /* resumed: the job thread set the reply */
		return queue_reply(a, q);
	if (*upload_data_size) {
		if (q->rm->body == BODY_STREAM)
			track_bytes(a, c, *upload_data_size);
		if (!q->failed &&
		    req_data(a, q, upload_data, *upload_data_size, &q->err) <
			0) {
			q->failed = true;
			/* drop the partial upload now, not when the client
			 * is done sending the rest */
			if (q->rm->body == BODY_STREAM)
				q->rm->stream->cleanup(&q->pub);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	/* the whole request is in: no deadline while it is handled */
	track_deadline(a, c, TRACK_NONE);
	track_upload(a, c, false);
	if (q->failed)
		return queue_error(a, q, &q->err);
	if (q->rm->claim_id)
		q->rm->claim_id(&q->pub);
	if (q->rm->claim && q->pub.id[0] && api_instance_claim(&q->pub, &e) < 0)
		return queue_error(a, q, &e);
	if (q->rm->slow) {
		MHD_suspend_connection(c);
		job_queue(a, q);
		return MHD_YES;
	}
	run_handler(q);
	return queue_reply(a, q);
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct api *a = cls;
	struct req *q = *con_cls;
	struct api_req *r;
	int64_t us;
	int status;
	char quiet[64] = "";

	if (q == NULL)
		return;
	/* a kept-alive connection has header_timeout (connection_timeout
	 * once authenticated) for the next request's headers */
	track_deadline(a, c, TRACK_NEXT);
	r = &q->pub;
	if (q->rm && q->rm->body == BODY_STREAM && q->rm->stream->cleanup)
		q->rm->stream->cleanup(r); /* also after a failed begin */
	instance_release(r); /* normally released when the handler returned */
	us = now_us() - q->t0_us;
	/* 499: the client went away (or the daemon stopped) before an
	 * answer was queued (nginx's convention). */
	status = q->queued ? q->queued_status : 499;
	if (status != 401 ||
	    log_pass(a, &a->log401, "401s", quiet, sizeof(quiet)))
		log_write(status >= 500 ? LOG_WARNING : LOG_INFO,
		    "%s %s %d %lldms id=%s%s%s%s%s%s%s%s%s", q->method, q->path,
		    status, (long long)(us / 1000), q->req_id,
		    r->log_uuid[0] ? " instance=" : "", r->log_uuid,
		    r->problem_field[0] ? " field=" : "", r->problem_field,
		    r->problem_detail[0] ? ": " : "", r->problem_detail,
		    toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
			: toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			? " (timed out)"
			: " (connection closed)",
		    quiet);
	if (!q->queued)
		metrics_observe(a->h->metrics,
		    r->route ? r->route : METRICS_UNMATCHED, q->method, status,
		    us);
	if (r->stream_reply) { /* never handed to MHD */
		r->stream_reply->ops->free(r->stream_reply->cls);
		free(r->stream_reply);
	}
	free(r->body);
	free(r->reply);
	free(r->location);
	free(r->sub);
	free(q->path);
	free(q);
	*con_cls = NULL;
	atomic_fetch_sub(&a->inflight, 1);
}

/* MHD's own messages: mostly about clients (a connection over the limit,
 * a malformed request), so at most one a second. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct api *a = cls;
	char buf[512], quiet[64];
	size_t n;

	if (!log_pass(
		a, &a->log_mhd, "libmicrohttpd messages", quiet, sizeof(quiet)))
		return;
	(void)vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_warn("libmicrohttpd: %s%s", buf, quiet);
}

static struct api *
api_free(struct api *a)
{
	if (a == NULL)
		return NULL;
	if (a->h && a->h->metrics)
		a->h->metrics = metrics_free(a->h->metrics);
	if (a->own_compute) {
		if (a->h->compute == a->own_compute)
			a->h->compute = NULL;
		a->own_compute = compute_free(a->own_compute);
	}
	a->tls = tls_free(a->tls);
	pthread_rwlock_destroy(&a->images_lock);
	for (size_t i = 0; i < a->n_job_slots; i++)
		pthread_cond_destroy(&a->job_threads[i].cond);
	pthread_mutex_destroy(&a->jobs_lock);
	free(a->job_threads);
	free(a->jobs_idle);
	pthread_mutex_destroy(&a->claims_lock);
	pthread_cond_destroy(&a->claims_cond);
	pthread_cond_destroy(&a->reaper_cond);
	pthread_mutex_destroy(&a->conns_lock);
	pthread_mutex_destroy(&a->noise_lock);
	free(a);
	return NULL;
}

/* Starts serving (see api.h). */
int
api_start(struct hyperlet *h, struct api **ret, struct err *e)
{
	const struct cfg *cfg = h->cfg;
	struct api *a;
	pthread_rwlockattr_t rwa;
	pthread_condattr_t ca;
	struct MHD_OptionItem opts[16];
	const union MHD_DaemonInfo *info;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
	    MHD_ALLOW_SUSPEND_RESUME;
	size_t n = 0;
	int rc;

	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	a->h = h;
	a->cfg = cfg;
	/* a waiting image delete is not starved by a stream of creates */
	pthread_rwlockattr_init(&rwa);
	pthread_rwlockattr_setkind_np(
	    &rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&a->images_lock, &rwa);
	pthread_rwlockattr_destroy(&rwa);
	pthread_mutex_init(&a->claims_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->claims_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&a->jobs_lock, NULL);
	pthread_mutex_init(&a->conns_lock, NULL);
	pthread_cond_init(&a->reaper_cond, NULL);
	pthread_mutex_init(&a->noise_lock, NULL);
	a->stall_us =
	    (int64_t)(cfg->job_stall_timeout > 0 ? cfg->job_stall_timeout
						 : 300) *
	    1000000;
	a->deadline_us =
	    (int64_t)(cfg->connection_timeout > 0 ? cfg->connection_timeout
						  : 30) *
	    1000000;
	a->header_us =
	    (int64_t)(cfg->header_timeout > 0 ? cfg->header_timeout : 5) *
	    1000000;
	if (a->header_us > a->deadline_us)
		a->header_us = a->deadline_us;
	a->min_upload_rate = cfg->min_upload_rate;
	a->per_ip_limit = cfg->per_ip_connection_limit;
	if (getrandom(&a->id_seed, sizeof(a->id_seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(a->id_seed))
		a->id_seed = (uint32_t)now_us() ^ (uint32_t)getpid();
	a->db_path = h->db_path ? h->db_path : cfg->db_path;
	if (cfg->auth_token_file) {
		if (cfg->auth_token == NULL || cfg->auth_token[0] == '\0') {
			rc = err_set(e, -EINVAL, "%s: empty auth token",
			    cfg->auth_token_file);
			api_free(a);
			return rc;
		}
		a->token = cfg->auth_token;
		a->token_len = strlen(a->token);
	}
	if (cfg->tls_cert_file || cfg->tls_key_file) {
		if (cfg->tls_cert_file == NULL || cfg->tls_key_file == NULL) {
			api_free(a);
			return err_set(e, -EINVAL,
			    "TLS needs both tls_cert_file and tls_key_file");
		}
		if ((rc = tls_priorities_check(cfg->tls_priorities, e)) < 0 ||
		    (rc = tls_new(cfg->tls_cert_file, cfg->tls_key_file,
			 &a->tls, e)) < 0) {
			api_free(a);
			return rc;
		}
		flags |= MHD_USE_TLS;
		/* served by tls.c, so that SIGHUP can replace them */
		opts[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_CERT_CALLBACK, 0, tls_cert_callback()};
		opts[n++] = (struct MHD_OptionItem){
		    MHD_OPTION_HTTPS_PRIORITIES, 0, cfg->tls_priorities};
	}
	if (cfg->listen_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (h->compute == NULL) {
		struct compute_opts co = {
		    .virt = h->virt,
		    .images_dir =
			h->images_dir ? h->images_dir : cfg->images_path,
		    .limits = cfg->limits,
		    .stop_timeout_ms = cfg->stop_timeout * 1000,
		    .domxml = {.virt_type = cfg->virt_type},
		    .volume_roots = cfg->volume_roots,
		    .state_dir = cfg->state_dir,
		    .db_path = cfg->db_path,
		};

		if ((rc = compute_new(&co, &a->own_compute, e)) < 0) {
			api_free(a);
			return rc;
		}
		h->compute = a->own_compute;
	}
	{
		const char *tmpls[ELEMENTSOF(routes)];
		size_t i;

		for (i = 0; i < ELEMENTSOF(routes); i++)
			tmpls[i] = routes[i].tmpl;
		h->metrics = metrics_new(tmpls, ELEMENTSOF(routes));
	}
	if (h->metrics == NULL) {
		api_free(a);
		return err_set(e, -ENOMEM, "out of memory");
	}
	if (pthread_key_create(&a->store_key, store_key_free) != 0) {
		api_free(a);
		return err_set(e, -ENOMEM, "out of thread keys");
	}
	opts[n++] = (struct MHD_OptionItem){
	    MHD_OPTION_SOCK_ADDR, 0, (void *)&cfg->listen_addr};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE,
	    cfg->threads > 0 ? cfg->threads : 8, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
	    cfg->connection_limit > 0 ? cfg->connection_limit : 256, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT,
	    cfg->connection_timeout > 0 ? cfg->connection_timeout : 30, NULL};
	opts[n++] = (struct MHD_OptionItem){
	    MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, a};
	opts[n++] = (struct MHD_OptionItem){
	    MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, a};
	opts[n++] = (struct MHD_OptionItem){
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, API_CONN_POOL, NULL};
	opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

	/* The logger goes first, so that MHD never writes to stderr itself. */
	a->mhd = MHD_start_daemon(flags | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    on_request, a, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a,
	    MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (a->mhd == NULL) {
		rc = errno ? -errno : -EIO;
		pthread_key_delete(a->store_key);
		api_free(a);
		return err_set(e, rc, "cannot serve on %s: %s",
		    cfg->listen ? cfg->listen : "?", strerror(-rc));
	}
	if ((rc = pthread_create(&a->reaper, NULL, reaper_run, a)) != 0) {
		MHD_stop_daemon(a->mhd);
		pthread_key_delete(a->store_key);
		api_free(a);
		return err_set(
		    e, -rc, "cannot start a thread: %s", strerror(rc));
	}
	a->reaper_started = true;
	if ((rc = jobs_start(
		 a, cfg->threads > 0 ? (size_t)cfg->threads : 8, e)) < 0) {
		api_stop(a, 0);
		return rc;
	}
	info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
	a->port = info ? info->port : cfg->listen_port;
	log_info("api: listening on %s (port %d, %d threads%s%s)",
	    cfg->listen ? cfg->listen : "?", a->port,
	    cfg->threads > 0 ? cfg->threads : 8, a->tls ? ", TLS" : "",
	    a->token ? ", bearer token" : "");
	*ret = a;
	return 0;
}

/* Reloads the TLS certificate and key (see api.h). */
int
api_tls_reload(struct api *a, struct err *e)
{
	int rc;

	if (a == NULL || a->tls == NULL)
		return 0;
	if ((rc = tls_reload(a->tls, e)) == 0)
		log_info("api: TLS certificate and key reloaded");
	return rc;
}

/* The bound TCP port. */
int
api_port(const struct api *a)
{
	return a->port;
}

/* Quiesces, drains and stops (see api.h). */
void
api_stop(struct api *a, int drain_seconds)
{
	int64_t deadline;

	if (a == NULL)
		return;
	/* New requests are answered 503 and their connections closed from
	 * here on (on_request), so the listen socket stays with MHD until
	 * MHD_stop_daemon. Not MHD_quiesce_daemon: in libmicrohttpd 0.9.75
	 * with a thread pool on epoll it races a worker that removes the
	 * listen socket from its own epoll set once it sees was_quiesced,
	 * and panics ("Failed to remove listen FD from epoll set", abort)
	 * when the worker wins: seen in check_api at SIGTERM. */
	atomic_store(&a->stopping, true);
	/* event streams never finish by themselves: end them now (a reader
	 * reconnects with Last-Event-ID) */
	events_shutdown(a->h->events);
	deadline = now_us() + (int64_t)drain_seconds * 1000000;
	while (atomic_load(&a->inflight) > 0 && now_us() < deadline) {
		struct timespec ts = {0, 10 * 1000 * 1000};

		nanosleep(&ts, NULL);
	}
	if (atomic_load(&a->inflight) > 0)
		log_warn("api: %lld requests still running after %d s; "
			 "waiting for their handlers to return",
		    (long long)atomic_load(&a->inflight), drain_seconds);
	else
		log_info("api: drained");
	/* Jobs not started yet answer 503; running ones finish (they resume
	 * their connections, so MHD must still run). */
	jobs_stop(a);
	pthread_mutex_lock(&a->conns_lock);
	a->reaper_stop = true;
	pthread_cond_signal(&a->reaper_cond);
	pthread_mutex_unlock(&a->conns_lock);
	if (a->reaper_started)
		pthread_join(a->reaper, NULL);
	/* Every job has returned (a handler inside libvirt is waited for,
	 * never cut off mid-operation); now MHD's workers can go. */
	MHD_stop_daemon(a->mhd);
	pthread_key_delete(a->store_key);
	api_free(a);
}
