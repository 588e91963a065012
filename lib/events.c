/*
 * events: the hub of the event stream (see events.h). Owns the ring of
 * the newest events as server-sent-event text, the list of readers and
 * the hub thread that fills the ring, wakes readers, sends heartbeats and
 * prunes. Invariants (under hub->lock): the ring holds, in id order, the
 * events with ids in (base, newest] that the hub has read (ids are
 * strictly increasing; every committed id <= newest is either in the
 * ring or older than its first slot); a reader's cursor is the last id
 * it has passed (sent or skipped by its filter).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "events.h"
#include "jwriter.h"
/* XXX(#12): the hub is a background thread in lib/ with no caller to
 * report a failed read or prune to: it logs them itself (warning). */
#include "log.h"
#include "macro.h"
#include "util.h"

#define EVENTS_RETENTION_DEFAULT 100000
#define EVENTS_HEARTBEAT_DEFAULT 15
#define EVENTS_PRUNE_BATCH 5000
#define EVENTS_PRUNE_EVERY_S 10
#define EVENTS_READ_BATCH 256 /* rows per database read */
#define EVENTS_HEARTBEAT_TEXT ": heartbeat\n\n"
#define EVENTS_RETRY_US 10000 /* a direct reader's full socket */
/* When the host's CPUs are all busy, the hub spends at most about
 * stream_cpu % of a core writing to readers (events.h): each send to a
 * reader's socket costs several µs (on loopback TCP, the reader's side
 * too), so with few readers every change goes at once, and with many,
 * under a burst of changes, each send carries several events instead of
 * taking the cores from the changes themselves. A change after a quiet
 * spell, or while a core is idle, always goes at once. */
#define EVENTS_STREAM_CPU_DEFAULT 25
#define EVENTS_IDLE_PCT 10
#define EVENTS_IDLE_SAMPLE_US 100000
#define EVENTS_BATCH_MAX_US 20000

struct slot {
	int64_t id;
	char instance[UUID_STR_LEN];
	char *text; /* "id: ...\nevent: ...\ndata: {...}\n\n", owned */
	size_t len;
	int64_t committed_us; /* (monotonic) when the hub was told of it */
};

struct events_reader {
	struct events_reader *prev, *next;
	struct events *ev;
	int64_t cursor;
	char instance[UUID_STR_LEN]; /* "" : every instance */
	const struct events_reader_ops *ops;
	void *arg;
	bool suspended;
	bool live; /* has read from the ring (may be dropped) */
	bool heartbeat; /* a heartbeat is due */
	/* text taken but not yet given (an event longer than a read) */
	char *pending;
	size_t pending_len, pending_off;
	/* Direct writing (events_reader_direct): once the reader has
	 * nothing left to send, its connection stays suspended and the hub
	 * writes the ring's bytes to fd itself, framed as HTTP/1.1 chunks
	 * when chunked, with every reader's wake-up costing one send. */
	int fd; /* -1: no direct writing */
	bool chunked;
	bool direct; /* the hub writes to fd now (lock held to change) */
	bool blocked; /* its socket was full: the hub tries again soon */
	int end; /* 0, or the EVENTS_READ_* the next read returns */
	/* bytes (framed) queued for fd but not yet taken by the socket */
	char *wpend;
	size_t wpend_len, wpend_off;
};

struct events {
	/* Guards wake and stop only: the post-commit hook takes it with
	 * the database's write lock held, so it is never held for long
	 * (never while readers are woken). */
	pthread_mutex_t wake_lock;
	pthread_cond_t cond; /* with wake_lock: wakes the hub thread */
	bool wake; /* a commit wrote events since the hub last read */
	bool stop; /* events_free: the thread ends */
	/* No reader: commits do not wake the hub, except every prune_step
	 * of them (for the pruning), and the ring is left as it was (stale)
	 * until a reader comes. */
	bool idle;
	int64_t idle_commits;
	pthread_mutex_t lock; /* guards the ring and the readers */
	struct slot *ring;
	size_t cap, head, count; /* slots [head - count, head) mod cap */
	int64_t newest; /* the newest id the hub has read (written by
			   the hub thread only) */
	bool stale; /* ids after newest were committed while idle: readers
		       wait for the hub to read them (reader_new wakes it) */
	int64_t seen; /* the newest id in the table the hub knows of, read
			 or not (hub thread) */
	bool closing; /* events_shutdown */
	struct events_reader *readers;
	size_t n_readers;
	size_t n_blocked; /* direct readers whose socket is full */
	int64_t woken_us; /* the commit that woke the hub (wake_lock) */
	struct events_stats stats; /* under lock */

	struct store *store; /* the hub thread's connection */
	int64_t retention;
	int64_t prune_at; /* prune once the newest id reaches this (hub) */
	/* a tenth of the retention (at least 1): prune_at's distance past
	 * the last prune, and the idle hub's commits between looks */
	int64_t prune_step;
	int heartbeat_s;
	int stream_cpu; /* 1..100 */
	/* host_busy's last sample of /proc/stat (hub thread) */
	int64_t cpu_at;
	unsigned long long cpu_idle, cpu_total;
	bool cpu_busy;
	pthread_t thread;
};

/* Upper bounds (µs) of the delivery histogram's buckets (events.h). */
const int64_t events_latency_le_us[EVENTS_LATENCY_BUCKETS] = {100, 250, 500,
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The calling thread's CPU time. */
static int64_t
thread_cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Whether the host's CPUs were all but fully busy (less than
 * EVENTS_IDLE_PCT % idle) over the last EVENTS_IDLE_SAMPLE_US or more, from
 * /proc/stat (hub thread only). Pacing (stream_cpu) applies only then:
 * with a core to spare, a change goes to the readers at once. Unknown
 * (no /proc/stat): busy. */
static bool
host_busy(struct events *ev)
{
	unsigned long long v[10] = {0}, idle = 0, total = 0;
	int64_t now = mono_us();
	FILE *f;
	int n, i;

	if (now - ev->cpu_at < EVENTS_IDLE_SAMPLE_US)
		return ev->cpu_busy;
	f = fopen("/proc/stat", "re");
	if (f == NULL)
		return true;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8],
	    &v[9]);
	fclose(f);
	if (n < 5)
		return true;
	for (i = 0; i < 8 && i < n; i++) /* guest times are in user's */
		total += v[i];
	idle = v[3] + v[4]; /* idle, iowait */
	if (ev->cpu_at && total > ev->cpu_total)
		ev->cpu_busy = (idle - ev->cpu_idle) * 100 <
		    (total - ev->cpu_total) * EVENTS_IDLE_PCT;
	ev->cpu_at = now;
	ev->cpu_idle = idle;
	ev->cpu_total = total;
	return ev->cpu_busy;
}

/* Counts one event handed to one reader's connection (lock held). */
static void
observe(struct events *ev, const struct slot *sl, int64_t now)
{
	int64_t d = now - sl->committed_us;
	size_t b = 0;

	ev->stats.delivered++;
	if (sl->committed_us == 0) /* read after an idle spell: untimed */
		return;
	if (d < 0)
		d = 0;
	while (b < EVENTS_LATENCY_BUCKETS && d > events_latency_le_us[b])
		b++;
	ev->stats.latency[b]++;
	ev->stats.latency_sum_s += (double)d / 1e6;
}

/* --- formatting ------------------------------------------------------- */

static void
rfc3339_ms(int64_t ms, char out[40])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char sec[32];

	(void)gmtime_r(&t, &tm);
	(void)strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	(void)snprintf(out, 40, "%s.%03dZ", sec, (int)(ms % 1000));
}

/* The JSON object of ev (design.md "Events"). */
void
events_format_json(struct jwriter *w, const struct store_event *ev)
{
	char at[40];

	rfc3339_ms(ev->at_ms, at);
	jwriter_obj_begin(w);
	jwriter_key(w, "id");
	jwriter_int(w, ev->id);
	jwriter_key(w, "type");
	jwriter_str(w, ev->type);
	jwriter_key(w, "instance");
	jwriter_str(w, ev->instance);
	jwriter_key(w, "state");
	jwriter_str(w, ev->state[0] ? ev->state : NULL);
	jwriter_key(w, "generation");
	if (ev->state[0])
		jwriter_int(w, ev->generation);
	else
		jwriter_null(w);
	jwriter_key(w, "cause");
	jwriter_str(w, ev->cause);
	jwriter_key(w, "at");
	jwriter_str(w, at);
	if (ev->volume_id[0]) {
		jwriter_key(w, "volume_id");
		jwriter_str(w, ev->volume_id);
	}
	if (ev->port_id[0]) {
		jwriter_key(w, "port_id");
		jwriter_str(w, ev->port_id);
	}
	jwriter_obj_end(w);
}

/* The stream text of one event; *ret owned. */
static int
format_sse(const struct store_event *ev, char **ret, size_t *ret_len)
{
	struct jwriter w;
	char head[128];
	int n;

	n = snprintf(head, sizeof(head),
	    "id: %" PRId64 "\nevent: %s\ndata: ", ev->id, ev->type);
	if (n < 0 || (size_t)n >= sizeof(head))
		return -EINVAL;
	jwriter_init(&w, 320);
	jwriter_raw(&w, head, (size_t)n);
	w.sep = false; /* the raw prefix is no JSON value */
	events_format_json(&w, ev);
	w.sep = false;
	jwriter_raw(&w, "\n\n", 2);
	return jwriter_finish(&w, ret, ret_len);
}

/* See events.h. */
int
events_page_format(const struct store_event *v, size_t n, int64_t newest,
    char **ret, size_t *ret_len, struct err *e)
{
	struct jwriter w;
	size_t i;

	jwriter_init(&w, 64 + n * 256);
	jwriter_obj_begin(&w);
	jwriter_key(&w, "events");
	jwriter_arr_begin(&w);
	for (i = 0; i < n; i++)
		events_format_json(&w, &v[i]);
	jwriter_arr_end(&w);
	jwriter_key(&w, "last_id");
	jwriter_int(&w, n ? v[n - 1].id : newest);
	jwriter_obj_end(&w);
	if (jwriter_finish(&w, ret, ret_len) < 0)
		return err_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* --- the hub ------------------------------------------------------------ */

/* The store's post-commit hook: called by the committing thread. */
static void
events_hook(void *arg)
{
	struct events *ev = arg;

	pthread_mutex_lock(&ev->wake_lock);
	if (ev->idle && ++ev->idle_commits < ev->prune_step) {
		pthread_mutex_unlock(&ev->wake_lock);
		return;
	}
	ev->idle_commits = 0;
	/* already set: the hub knows (it may be waiting out the batch) */
	if (!ev->wake) {
		ev->woken_us = mono_us();
		ev->wake = true;
		pthread_cond_signal(&ev->cond);
	}
	pthread_mutex_unlock(&ev->wake_lock);
}

/* The ring's first slot (*first) and its id (newest + 1 when the ring
 * is empty); whether rd's next event is older than it (lock held). */
static bool
ring_behind(const struct events *ev, const struct events_reader *rd,
    size_t *first, int64_t *first_id)
{
	*first = (ev->head + ev->cap - ev->count) % ev->cap;
	*first_id = ev->count ? ev->ring[*first].id : ev->newest + 1;
	return rd->cursor + 1 < *first_id && rd->cursor < ev->newest;
}

static size_t ring_find(const struct events *ev, int64_t cursor);

/* Ends a direct reader's writing (lock held): its connection is resumed
 * and its next read returns why. A stream cut inside a chunk cannot end
 * cleanly: it is dropped. */
static void
direct_end(struct events *ev, struct events_reader *rd, int why)
{
	if (rd->wpend)
		why = EVENTS_READ_DROP;
	if (why == EVENTS_READ_DROP && rd->end != EVENTS_READ_DROP)
		ev->stats.dropped++;
	rd->direct = false;
	rd->end = why;
	if (rd->suspended) {
		rd->suspended = false;
		rd->ops->resume(rd->arg);
	}
}

/* Keeps what the socket did not take of iov (w bytes of it were sent)
 * as the reader's wpend. Returns 0 or -ENOMEM. */
static int
keep_rest(struct events_reader *rd, const struct iovec *iov, size_t n,
    size_t total, size_t w)
{
	size_t i, off = 0;

	rd->wpend = malloc(total - w);
	if (rd->wpend == NULL)
		return -ENOMEM;
	rd->wpend_len = total - w;
	rd->wpend_off = 0;
	for (i = 0; i < n; i++) {
		const char *b = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (w >= len) {
			w -= len;
			continue;
		}
		memcpy(rd->wpend + off, b + w, len - w);
		off += len - w;
		w = 0;
	}
	return 0;
}

#define DIRECT_IOV 64 /* events per send */

/*
 * Writes to a direct reader's socket what it has not had yet (lock
 * held): the rest of a partial write, then the ring after its cursor (as
 * one chunk per send), or a heartbeat when one is due and nothing else
 * went. Never waits: a full socket leaves the rest for the next wake-up
 * (or the hub's retry); a reader that falls a whole ring behind, or
 * whose socket fails, is ended.
 */
static void
direct_flush(struct events *ev, struct events_reader *rd)
{
	for (;;) {
		struct iovec iov[DIRECT_IOV + 2];
		const struct slot *sent[DIRECT_IOV];
		struct msghdr mh = {0};
		char hdr[24];
		size_t k = 0, i, idx, first, body = 0, total, n_iov;
		int64_t first_id, last_id = rd->cursor, now;
		ssize_t w;

		if (!rd->direct)
			return;
		rd->blocked = true; /* until it is all sent */
		if (ring_behind(ev, rd, &first, &first_id)) {
			direct_end(ev, rd, EVENTS_READ_DROP);
			return;
		}
		if (rd->wpend) {
			w = send(rd->fd, rd->wpend + rd->wpend_off,
			    rd->wpend_len - rd->wpend_off,
			    MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK ||
				errno == EINTR))
				return;
			if (w < 0) {
				direct_end(ev, rd, EVENTS_READ_DROP);
				return;
			}
			rd->wpend_off += (size_t)w;
			if (rd->wpend_off < rd->wpend_len)
				return;
			free(rd->wpend);
			rd->wpend = NULL;
			rd->heartbeat = false;
		}
		idx = ring_find(ev, rd->cursor);
		for (i = idx; i < ev->count && k < DIRECT_IOV; i++) {
			const struct slot *sl =
			    &ev->ring[(first + i) % ev->cap];

			last_id = sl->id;
			if (rd->instance[0] &&
			    !STREQ(rd->instance, sl->instance))
				continue;
			iov[1 + k].iov_base = sl->text;
			iov[1 + k].iov_len = sl->len;
			body += sl->len;
			sent[k++] = sl;
		}
		if (k == 0) {
			rd->cursor = last_id;
			if (!rd->heartbeat) {
				rd->blocked = false;
				return;
			}
			iov[1].iov_base = (void *)EVENTS_HEARTBEAT_TEXT;
			iov[1].iov_len = sizeof(EVENTS_HEARTBEAT_TEXT) - 1;
			body = iov[1].iov_len;
			n_iov = 1;
		} else
			n_iov = k;
		if (rd->chunked) {
			int hl = snprintf(hdr, sizeof(hdr), "%zx\r\n", body);

			iov[0].iov_base = hdr;
			iov[0].iov_len = (size_t)hl;
			iov[1 + n_iov].iov_base = (void *)"\r\n";
			iov[1 + n_iov].iov_len = 2;
			mh.msg_iov = iov;
			mh.msg_iovlen = n_iov + 2;
			total = body + (size_t)hl + 2;
		} else {
			mh.msg_iov = iov + 1;
			mh.msg_iovlen = n_iov;
			total = body;
		}
		w = sendmsg(rd->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return; /* nothing taken: the cursor stays */
		if (w < 0) {
			direct_end(ev, rd, EVENTS_READ_DROP);
			return;
		}
		rd->cursor = last_id;
		rd->heartbeat = false;
		now = mono_us();
		for (i = 0; i < k; i++)
			observe(ev, sent[i], now);
		if ((size_t)w < total) {
			if (keep_rest(rd, mh.msg_iov, mh.msg_iovlen, total,
				(size_t)w) < 0)
				direct_end(ev, rd, EVENTS_READ_DROP);
			return;
		}
		if (k == 0 || i >= ev->count) {
			rd->blocked = false;
			return;
		}
	}
}

/* Wakes every reader (lock held): a direct one is written to, a
 * suspended one resumed (its connection reads). */
static void
wake_readers(struct events *ev)
{
	struct events_reader *rd;

	for (rd = ev->readers; rd; rd = rd->next)
		if (rd->direct)
			direct_flush(ev, rd);
		else if (rd->suspended) {
			rd->suspended = false;
			rd->ops->resume(rd->arg);
		}
}

/* Whether a direct reader waits for its socket (lock held). */
static bool
any_blocked(struct events *ev)
{
	struct events_reader *rd;

	for (rd = ev->readers; rd; rd = rd->next)
		if (rd->direct && rd->blocked)
			return true;
	return false;
}

/* Retries the direct readers whose socket was full (lock held). */
static void
retry_blocked(struct events *ev)
{
	struct events_reader *rd;

	for (rd = ev->readers; rd; rd = rd->next)
		if (rd->direct && rd->blocked)
			direct_flush(ev, rd);
}

/* With no reader the hub goes idle instead of reading (lock held): the
 * commits that follow do not wake it (events_hook) and the ring stays as
 * it is, marked stale, until events_reader_new wakes it. Lock order:
 * lock, then wake_lock. */
static void
hub_go_idle(struct events *ev)
{
	ev->stale = true;
	pthread_mutex_lock(&ev->wake_lock);
	ev->idle = true;
	ev->idle_commits = 0;
	pthread_mutex_unlock(&ev->wake_lock);
}

/* The hub's view of the table's newest id while idle (for the pruning). */
static void
hub_idle_bounds(struct events *ev)
{
	struct err e = {0};
	int64_t oldest, newest;

	if (store_events_bounds(ev->store, &oldest, &newest, &e) < 0) {
		log_warn("events: reading the newest id: %s", e.msg);
		return;
	}
	if (newest > ev->seen)
		ev->seen = newest;
}

/* The ring after an idle spell: if more than a ring's worth of events
 * came meanwhile, it starts over a ring before the newest (readers
 * whose cursor is older catch up from the database, as any reader
 * that starts behind); otherwise it goes on from newest. Not stale from
 * here: the readers that waited read again. */
static void
hub_wake_up(struct events *ev)
{
	int64_t from;

	hub_idle_bounds(ev);
	pthread_mutex_lock(&ev->lock);
	from = ev->seen - (int64_t)ev->cap;
	if (from > ev->newest) {
		ev->count = 0;
		ev->newest = from;
	}
	ev->stale = false;
	wake_readers(ev);
	pthread_mutex_unlock(&ev->lock);
}

/* Reads the events after ev->newest into the ring and wakes the readers.
 * Runs on the hub thread, without the lock while it reads. */
static void
hub_fill(struct events *ev, int64_t committed_us)
{
	bool stale;

	pthread_mutex_lock(&ev->lock);
	if (ev->readers == NULL) {
		hub_go_idle(ev);
		pthread_mutex_unlock(&ev->lock);
		hub_idle_bounds(ev);
		return;
	}
	stale = ev->stale;
	pthread_mutex_unlock(&ev->lock);
	if (stale) {
		hub_wake_up(ev);
		committed_us = 0; /* not known: delivery is not timed */
	}
	for (;;) {
		_cleanup_free_ struct store_event *v = NULL;
		struct err e = {0};
		int64_t after;
		size_t n = 0, i;

		pthread_mutex_lock(&ev->lock);
		after = ev->newest;
		pthread_mutex_unlock(&ev->lock);
		if (store_events_list(ev->store, after, EVENTS_READ_BATCH, NULL,
			&v, &n, &e) < 0) {
			log_warn("events: reading new events: %s", e.msg);
			return;
		}
		if (n == 0)
			return;
		pthread_mutex_lock(&ev->lock);
		for (i = 0; i < n; i++) {
			struct slot *sl = &ev->ring[ev->head];
			char *text = NULL;
			size_t len = 0;

			if (format_sse(&v[i], &text, &len) < 0) {
				log_warn("events: out of memory");
				break;
			}
			free(sl->text);
			sl->id = v[i].id;
			memcpy(sl->instance, v[i].instance, UUID_STR_LEN);
			sl->text = text;
			sl->len = len;
			sl->committed_us = committed_us;
			ev->head = (ev->head + 1) % ev->cap;
			if (ev->count < ev->cap)
				ev->count++;
			ev->newest = v[i].id;
		}
		if (ev->newest > ev->seen)
			ev->seen = ev->newest;
		wake_readers(ev);
		pthread_mutex_unlock(&ev->lock);
		if (n < EVENTS_READ_BATCH)
			return;
	}
}

/* Deletes what is beyond the retention, a batch at a time. */
static void
hub_prune(struct events *ev)
{
	struct err e = {0};
	int n = 0;
	size_t total = 0;

	do {
		if (store_events_prune(ev->store, ev->retention,
			EVENTS_PRUNE_BATCH, &n, &e) < 0) {
			log_warn("events: pruning: %s", e.msg);
			return;
		}
		total += (size_t)n;
	} while (n == EVENTS_PRUNE_BATCH);
	if (total)
		log_debug("events: pruned %zu events", total);
}

static void *
hub_run(void *arg)
{
	struct events *ev = arg;
	int64_t next_hb = mono_us() + (int64_t)ev->heartbeat_s * 1000000;
	int64_t next_prune = mono_us(), next_fill = 0;

	util_thread_name("hl-events");
	pthread_mutex_lock(&ev->wake_lock);
	while (!ev->stop) {
		int64_t now = mono_us();
		int64_t until = next_hb < next_prune ? next_hb : next_prune;
		struct timespec ts;
		bool blocked;

		/* Events that come before next_fill go out together: one
		 * send per reader for several (stream_cpu). */
		if (ev->wake && now >= next_fill) {
			int64_t woken = ev->woken_us, cost = thread_cpu_us();

			ev->wake = false;
			pthread_mutex_unlock(&ev->wake_lock);
			hub_fill(ev, woken);
			pthread_mutex_lock(&ev->wake_lock);
			cost = host_busy(ev) ? (thread_cpu_us() - cost) *
				(100 - ev->stream_cpu) / ev->stream_cpu
					     : 0;
			next_fill = mono_us() +
			    (cost < EVENTS_BATCH_MAX_US ? cost
							: EVENTS_BATCH_MAX_US);
			/* a tenth of the retention past the last prune: the
			 * table stays within 110% of it under any load */
			if (ev->seen >= ev->prune_at)
				next_prune = 0;
			continue;
		}
		if (now >= next_hb) {
			struct events_reader *rd;

			pthread_mutex_unlock(&ev->wake_lock);
			pthread_mutex_lock(&ev->lock);
			for (rd = ev->readers; rd; rd = rd->next)
				rd->heartbeat = true;
			wake_readers(ev);
			pthread_mutex_unlock(&ev->lock);
			pthread_mutex_lock(&ev->wake_lock);
			next_hb = now + (int64_t)ev->heartbeat_s * 1000000;
			continue;
		}
		if (now >= next_prune) {
			pthread_mutex_unlock(&ev->wake_lock);
			hub_prune(ev);
			pthread_mutex_lock(&ev->wake_lock);
			next_prune =
			    mono_us() + (int64_t)EVENTS_PRUNE_EVERY_S * 1000000;
			ev->prune_at = ev->seen + ev->prune_step;
			continue;
		}
		/* a direct reader's full socket is tried again every
		 * EVENTS_RETRY_US: a reader that reads again gets the rest
		 * soon, one that does not falls behind and is dropped */
		pthread_mutex_unlock(&ev->wake_lock);
		pthread_mutex_lock(&ev->lock);
		retry_blocked(ev);
		blocked = any_blocked(ev);
		pthread_mutex_unlock(&ev->lock);
		pthread_mutex_lock(&ev->wake_lock);
		if (ev->stop || (ev->wake && mono_us() >= next_fill))
			continue;
		/* a commit while the lock was let go set wake without a
		 * signal to wait for: its batch is due at next_fill */
		if (ev->wake && until > next_fill)
			until = next_fill;
		if (blocked && until > now + EVENTS_RETRY_US)
			until = now + EVENTS_RETRY_US;
		if (until < now)
			until = now;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (until - now) / 1000000;
		ts.tv_nsec += ((until - now) % 1000000) * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		(void)pthread_cond_timedwait(&ev->cond, &ev->wake_lock, &ts);
	}
	pthread_mutex_unlock(&ev->wake_lock);
	return NULL;
}

/* Starts the hub (see events.h). */
int
events_new(const struct events_opts *o, struct events **ret, struct err *e)
{
	struct store_opts so = {
	    .no_migrate = true, .sync_normal = o->sync_normal};
	struct events *ev;
	int64_t oldest;
	int rc;

	ev = calloc(1, sizeof(*ev));
	if (ev == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	ev->cap = o->ring ? o->ring : EVENTS_RING;
	ev->ring = calloc(ev->cap, sizeof(*ev->ring));
	ev->retention =
	    o->retention > 0 ? o->retention : EVENTS_RETENTION_DEFAULT;
	ev->heartbeat_s =
	    o->heartbeat_s > 0 ? o->heartbeat_s : EVENTS_HEARTBEAT_DEFAULT;
	ev->stream_cpu = o->stream_cpu > 0 && o->stream_cpu <= 100
	    ? o->stream_cpu
	    : EVENTS_STREAM_CPU_DEFAULT;
	/* idle, the hub still looks every prune_step commits (each wrote
	 * one event or more): the table stays within 110 % of the
	 * retention as when it reads every commit */
	ev->prune_step = ev->retention / 10 > 0 ? ev->retention / 10 : 1;
	pthread_mutex_init(&ev->lock, NULL);
	pthread_mutex_init(&ev->wake_lock, NULL);
	pthread_cond_init(&ev->cond, NULL);
	if (ev->ring == NULL) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = store_open(o->db_path, &so, &ev->store, e)) < 0)
		goto out;
	/* the hook first, then the newest id: a commit in between wakes
	 * the hub, which reads from that id on */
	store_event_hook_set(events_hook, ev);
	if ((rc = store_events_bounds(ev->store, &oldest, &ev->newest, e)) <
	    0) {
		store_event_hook_set(NULL, NULL);
		goto out;
	}
	ev->seen = ev->newest;
	if ((rc = pthread_create(&ev->thread, NULL, hub_run, ev)) != 0) {
		store_event_hook_set(NULL, NULL);
		rc = err_set(e, -rc, "cannot start a thread: %s", strerror(rc));
		goto out;
	}
	*ret = ev;
	return 0;
out:
	ev->store = store_close(ev->store);
	free(ev->ring);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->wake_lock);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
	return rc;
}

/* Ends every stream (see events.h). */
void
events_shutdown(struct events *ev)
{
	if (ev == NULL)
		return;
	struct events_reader *rd;

	pthread_mutex_lock(&ev->lock);
	ev->closing = true;
	for (rd = ev->readers; rd; rd = rd->next)
		if (rd->direct)
			direct_end(ev, rd, EVENTS_READ_END);
		else if (rd->suspended) {
			rd->suspended = false;
			rd->ops->resume(rd->arg);
		}
	pthread_mutex_unlock(&ev->lock);
}

/* Stops and frees the hub (see events.h). */
struct events *
events_free(struct events *ev)
{
	size_t i;

	if (ev == NULL)
		return NULL;
	store_event_hook_set(NULL, NULL);
	pthread_mutex_lock(&ev->wake_lock);
	ev->stop = true;
	pthread_cond_signal(&ev->cond);
	pthread_mutex_unlock(&ev->wake_lock);
	pthread_join(ev->thread, NULL);
	for (i = 0; i < ev->cap; i++)
		free(ev->ring[i].text);
	free(ev->ring);
	ev->store = store_close(ev->store);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->wake_lock);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
	return NULL;
}

/* --- readers ------------------------------------------------------------ */

/* A new reader (see events.h). */
int
events_reader_new(struct events *ev, int64_t after, const char *instance,
    const struct events_reader_ops *ops, void *arg, struct events_reader **ret,
    struct err *e)
{
	struct events_reader *rd = calloc(1, sizeof(*rd));

	if (rd == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	rd->ev = ev;
	rd->cursor = after;
	if (instance)
		(void)snprintf(
		    rd->instance, sizeof(rd->instance), "%s", instance);
	rd->ops = ops;
	rd->arg = arg;
	rd->fd = -1;
	pthread_mutex_lock(&ev->lock);
	if (ev->closing) {
		pthread_mutex_unlock(&ev->lock);
		free(rd);
		return err_set(e, -EAGAIN, "the daemon is stopping");
	}
	rd->next = ev->readers;
	if (ev->readers)
		ev->readers->prev = rd;
	ev->readers = rd;
	ev->n_readers++;
	pthread_mutex_unlock(&ev->lock);
	/* an idle hub reads what came meanwhile (hub_fill); taken after
	 * lock: the hub goes idle under lock, so either it saw this reader
	 * or it is idle by now */
	pthread_mutex_lock(&ev->wake_lock);
	if (ev->idle) {
		ev->idle = false;
		if (!ev->wake) {
			ev->woken_us = mono_us();
			ev->wake = true;
			pthread_cond_signal(&ev->cond);
		}
	}
	pthread_mutex_unlock(&ev->wake_lock);
	*ret = rd;
	return 0;
}

/* Unlinks and frees rd (see events.h). */
struct events_reader *
events_reader_free(struct events_reader *rd)
{
	struct events *ev;

	if (rd == NULL)
		return NULL;
	ev = rd->ev;
	pthread_mutex_lock(&ev->lock);
	if (rd->prev)
		rd->prev->next = rd->next;
	else
		ev->readers = rd->next;
	if (rd->next)
		rd->next->prev = rd->prev;
	ev->n_readers--;
	pthread_mutex_unlock(&ev->lock);
	free(rd->pending);
	free(rd->wpend);
	free(rd);
	return NULL;
}

/* Direct writing for rd (see events.h). */
void
events_reader_direct(struct events_reader *rd, int fd, bool chunked)
{
	pthread_mutex_lock(&rd->ev->lock);
	rd->fd = fd;
	rd->chunked = chunked;
	pthread_mutex_unlock(&rd->ev->lock);
}

/* The stream's counters (see events.h). */
void
events_stats_get(struct events *ev, struct events_stats *out)
{
	struct events_reader *rd;

	pthread_mutex_lock(&ev->lock);
	*out = ev->stats;
	out->readers = ev->n_readers;
	out->direct = 0;
	for (rd = ev->readers; rd; rd = rd->next)
		if (rd->direct)
			out->direct++;
	pthread_mutex_unlock(&ev->lock);
}

/* Readers now. */
size_t
events_readers(struct events *ev)
{
	size_t n;

	pthread_mutex_lock(&ev->lock);
	n = ev->n_readers;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

/* Copies what fits of text to buf at *off; keeps the rest pending.
 * Returns 0 or -ENOMEM. */
static int
give(struct events_reader *rd, const char *text, size_t len, char *buf,
    size_t max, size_t *off)
{
	size_t room = max - *off, take = len < room ? len : room;

	memcpy(buf + *off, text, take);
	*off += take;
	if (take == len)
		return 0;
	rd->pending = malloc(len - take);
	if (rd->pending == NULL)
		return -ENOMEM;
	memcpy(rd->pending, text + take, len - take);
	rd->pending_len = len - take;
	rd->pending_off = 0;
	return 0;
}

/* Index in the ring of the first slot with an id > cursor (lock held);
 * ev->count when none. Binary search: ids increase along the ring. */
static size_t
ring_find(const struct events *ev, int64_t cursor)
{
	size_t lo = 0, hi = ev->count,
	       first = (ev->head + ev->cap - ev->count) % ev->cap;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ev->ring[(first + mid) % ev->cap].id <= cursor)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Catch-up from the database: the events after the cursor that are older
 * than the ring's first slot (first_id). Returns bytes given, 0 when
 * there were none (the cursor then moves up to first_id - 1), or a
 * negative errno. */
static ssize_t
read_db(struct events_reader *rd, struct store *s, int64_t first_id, char *buf,
    size_t max)
{
	_cleanup_free_ struct store_event *v = NULL;
	struct err e = {0};
	size_t n = 0, i, off = 0;
	int64_t oldest, newest;

	if (s == NULL)
		return -EIO;
	/* pruned since the request was checked: the reader is dropped, and
	 * its next request with Last-Event-ID answers 410, rather than
	 * missing events quietly */
	if (store_events_bounds(s, &oldest, &newest, &e) < 0)
		return e.code;
	if (rd->cursor + 1 < oldest)
		return -EIDRM;
	if (store_events_list(s, rd->cursor, EVENTS_READ_BATCH,
		rd->instance[0] ? rd->instance : NULL, &v, &n, &e) < 0) {
		log_debug("events: catching up: %s", e.msg);
		return e.code;
	}
	for (i = 0;
	     i < n && v[i].id < first_id && off < max && rd->pending == NULL;
	     i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;

		if (format_sse(&v[i], &text, &len) < 0 ||
		    give(rd, text, len, buf, max, &off) < 0)
			return -ENOMEM;
		rd->cursor = v[i].id;
	}
	if (off == 0)
		rd->cursor = first_id - 1; /* nothing of ours before the ring */
	return (ssize_t)off;
}

/* The next bytes of a reader's stream (see events.h). */
ssize_t
events_reader_read(
    struct events_reader *rd, struct store *s, char *buf, size_t max)
{
	struct events *ev = rd->ev;
	size_t off = 0, i, idx, first;
	int64_t first_id;

	if (rd->pending) {
		size_t left = rd->pending_len - rd->pending_off;
		size_t take = left < max ? left : max;

		memcpy(buf, rd->pending + rd->pending_off, take);
		rd->pending_off += take;
		if (rd->pending_off == rd->pending_len) {
			free(rd->pending);
			rd->pending = NULL;
		}
		return (ssize_t)take;
	}
	for (;;) {
		pthread_mutex_lock(&ev->lock);
		if (rd->end) {
			pthread_mutex_unlock(&ev->lock);
			return rd->end;
		}
		if (ev->closing) {
			pthread_mutex_unlock(&ev->lock);
			return EVENTS_READ_END;
		}
		/* the hub is reading what came while it was idle: wait for
		 * it (not direct yet: the reader may have a catch-up from
		 * the database to do first) */
		if (ev->stale) {
			rd->suspended = true;
			rd->ops->suspend(rd->arg);
			pthread_mutex_unlock(&ev->lock);
			return 0;
		}
		if (ring_behind(ev, rd, &first, &first_id)) {
			ssize_t n;

			if (rd->live) { /* fell a whole ring behind */
				ev->stats.dropped++;
				pthread_mutex_unlock(&ev->lock);
				return EVENTS_READ_DROP;
			}
			pthread_mutex_unlock(&ev->lock);
			n = read_db(rd, s, first_id, buf, max);
			if (n < 0)
				return EVENTS_READ_DROP;
			if (n > 0)
				return n;
			continue; /* caught up: the ring from here */
		}
		rd->live = true;
		idx = ring_find(ev, rd->cursor);
		for (i = idx; i < ev->count && off < max && rd->pending == NULL;
		     i++) {
			const struct slot *sl =
			    &ev->ring[(first + i) % ev->cap];

			if (rd->instance[0] &&
			    !STREQ(rd->instance, sl->instance)) {
				rd->cursor = sl->id;
				continue;
			}
			if (give(rd, sl->text, sl->len, buf, max, &off) < 0) {
				pthread_mutex_unlock(&ev->lock);
				return EVENTS_READ_DROP;
			}
			observe(ev, sl, mono_us());
			rd->cursor = sl->id;
		}
		if (off == 0 && rd->heartbeat &&
		    max >= sizeof(EVENTS_HEARTBEAT_TEXT) - 1) {
			memcpy(buf, EVENTS_HEARTBEAT_TEXT,
			    sizeof(EVENTS_HEARTBEAT_TEXT) - 1);
			off = sizeof(EVENTS_HEARTBEAT_TEXT) - 1;
		}
		rd->heartbeat = false;
		if (off == 0) {
			rd->suspended = true;
			rd->ops->suspend(rd->arg);
			/* everything the connection had is sent (MHD asks for
			 * more only then): from here on the hub writes */
			if (rd->fd >= 0)
				rd->direct = true;
		}
		pthread_mutex_unlock(&ev->lock);
		return (ssize_t)off;
	}
}

/* 410 when what follows `after` is no longer all kept (see events.h). */
int
events_check_after(struct store *s, int64_t after, const char *field,
    int64_t *ret_newest, struct err *e)
{
	int64_t oldest, newest;
	int rc;

	if ((rc = store_events_bounds(s, &oldest, &newest, e)) < 0)
		return rc;
	if (after > 0 && after + 1 < oldest)
		return err_set_field(e, -EIDRM, field,
		    "events after %" PRId64 " are no longer kept (the oldest "
		    "kept is %" PRId64 "): list again, then follow from its "
		    "last_id",
		    after, oldest);
	if (ret_newest)
		*ret_newest = newest;
	return 0;
}
