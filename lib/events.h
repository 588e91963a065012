/*
 * events: the stream hub behind GET /v1/events (design.md "Events").
 * The events themselves are rows the store writes in the transaction of
 * the change (store.h); the hub follows them for the readers of the
 * stream without a thread per reader:
 *   - one hub thread with its own store connection. The store's
 *     post-commit hook wakes it; it reads the new rows (in id order) into
 *     an in-memory ring of the newest EVENTS_RING events, formatted once
 *     as server-sent-event text, and resumes every suspended reader. It
 *     also sets the heartbeats and prunes the table down to the retention
 *     in the background;
 *   - readers are pulled by their HTTP connection (events_reader_read,
 *     from the server's own thread) and never wait: with nothing to send
 *     a reader asks its connection to be suspended (ops->suspend, called
 *     with the hub's lock held so a resume cannot be lost) until the hub
 *     resumes it. A reader that resumes from an id older than the ring
 *     reads from the database (its caller's store) until it reaches the
 *     ring; a reader that has reached it once and then falls more than
 *     the ring behind is dropped, never waited for.
 * Locks: the hub's lock guards the ring and the reader list; a second
 * one only the hub thread's wake-up, which the post-commit hook takes
 * with the database's write lock held (never the first).
 */
#ifndef HYPERLET_EVENTS_H
#define HYPERLET_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "store.h"

#define EVENTS_RING 4096

struct events;
struct events_reader;

struct events_opts {
	const char *db_path; /* the database main migrated */
	bool sync_normal; /* as the API's connections */
	int64_t retention; /* events kept; 0: 100000 */
	int heartbeat_s; /* 0: 15 */
	/* The share of one core (%, 1..100) the hub may spend writing to
	 * readers under a burst of changes: after a wake-up that took C µs
	 * of its CPU, the next waits C * (100 / stream_cpu - 1), at most
	 * 20 ms, so that each send carries several events. 0: 25. 100:
	 * every change at once, whatever it costs. */
	int stream_cpu;
	size_t ring; /* 0: EVENTS_RING (tests use a small one) */
};

/*
 * Opens the hub's connection, reads the newest id, installs the store's
 * post-commit hook (one hub per process) and starts the hub thread.
 * *ret owned (events_free). Returns 0, -EAGAIN/-EIO (database), -ENOMEM,
 * or a thread creation error.
 */
int events_new(const struct events_opts *o, struct events **ret, struct err *e);

/* Ends every stream (SIGTERM): each reader's next read returns
 * EVENTS_READ_END, suspended ones are resumed to see it; new readers are
 * refused. Idempotent; accepts NULL. */
void events_shutdown(struct events *ev);

/* Stops the hub thread, removes the hook, frees ev. Every reader must
 * be freed before. Accepts NULL; returns NULL. */
struct events *events_free(struct events *ev);

/* How a reader's connection is parked and woken. suspend is called from
 * inside events_reader_read (which then returns 0), resume from the hub
 * thread or events_shutdown; both with the hub's lock held. */
struct events_reader_ops {
	void (*suspend)(void *arg);
	void (*resume)(void *arg);
};

/*
 * A reader of the events after id `after`, only those of instance (a
 * canonical uuid) unless NULL, woken through ops(arg). The caller has
 * checked with events_check_after that nothing it asks for was pruned.
 * *ret owned (events_reader_free). Returns 0, -EAGAIN (shutting down),
 * -ENOMEM.
 */
int events_reader_new(struct events *ev, int64_t after, const char *instance,
    const struct events_reader_ops *ops, void *arg, struct events_reader **ret,
    struct err *e);

#define EVENTS_READ_END (-1) /* the stream ends (shutdown) */
#define EVENTS_READ_DROP (-2) /* too far behind, or the database failed */

/*
 * Fills buf (max > 0 bytes) with the reader's next bytes of stream text:
 * whole or continued events, or a heartbeat comment. s is the calling
 * thread's store, used only to catch up from ids older than the ring.
 * Returns the number of bytes (> 0); 0 after calling ops->suspend when
 * there is nothing to send yet; EVENTS_READ_END or EVENTS_READ_DROP.
 */
ssize_t events_reader_read(
    struct events_reader *rd, struct store *s, char *buf, size_t max);

/* Unlinks and frees a reader (its connection is gone). Accepts NULL;
 * returns NULL. */
struct events_reader *events_reader_free(struct events_reader *rd);

/*
 * Lets the hub write rd's stream to its connection's socket fd itself
 * (framed as HTTP/1.1 chunks when chunked, raw bytes otherwise) from the
 * first time the reader has nothing left to send: the connection then
 * stays suspended while the hub sends each wake-up's events with one
 * sendmsg per reader, and is resumed only to end (its next read returns
 * EVENTS_READ_END or EVENTS_READ_DROP). Only for a plain socket whose
 * every earlier byte is sent by the time the reader asks to be
 * suspended, and which is not closed while the reader lives. Called from
 * the reader's connection (read context) before it suspends.
 */
void events_reader_direct(struct events_reader *rd, int fd, bool chunked);

/* The stream's figures, for /metrics: delivery latency is from the
 * commit that wrote an event (when the hub was told of it) to the moment
 * the event's bytes were handed to a reader's connection (a direct
 * reader's socket, or MHD's buffer), once per reader. */
#define EVENTS_LATENCY_BUCKETS 12
extern const int64_t events_latency_le_us[EVENTS_LATENCY_BUCKETS];
struct events_stats {
	uint64_t readers; /* now */
	uint64_t direct; /* of which written by the hub now */
	uint64_t dropped; /* readers dropped (behind, or their socket failed) */
	uint64_t delivered; /* events handed to readers */
	uint64_t latency[EVENTS_LATENCY_BUCKETS + 1]; /* last: beyond */
	double latency_sum_s;
};
void events_stats_get(struct events *ev, struct events_stats *out);

/* Number of readers now (metrics, tests). */
size_t events_readers(struct events *ev);

/* -EIDRM (410) naming field when ids after `after` are no longer all
 * kept (after + 1 older than the oldest kept); 0 otherwise; -EAGAIN,
 * -EIO from the store. *ret_newest (may be NULL): the newest id. */
int events_check_after(struct store *s, int64_t after, const char *field,
    int64_t *ret_newest, struct err *e);

/* The JSON object of one event (design.md), NUL-terminated, appended to
 * *w's buffer: see events_page_format. */
struct jwriter;
void events_format_json(struct jwriter *w, const struct store_event *ev);

/* {"events": [...], "last_id": N} for a poller: last_id is the id of the
 * page's last event, or `newest` when the page is empty. *ret owned.
 * Returns 0 or -ENOMEM. */
int events_page_format(const struct store_event *v, size_t n, int64_t newest,
    char **ret, size_t *ret_len, struct err *e);

#endif
