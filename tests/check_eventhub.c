/*
 * check_eventhub: lib/events.c's hub on a real SQLite file, its readers
 * written to directly (events_reader_direct) over a real socketpair, as
 * the daemon's stream connections are: events arrive in order, framed as
 * HTTP/1.1 chunks or raw; a reader whose socket is full gets the rest
 * once it reads again; one that falls a whole ring behind is dropped and
 * its connection woken to end; heartbeats go to idle readers; shutdown
 * ends every stream; what is committed while no reader is connected
 * (the hub idle) reaches a reader that comes later. A socketpair stands in for MHD's TCP connection (the
 * HTTP path is check_events.py's): what the hub writes is the same.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "store.h"
#include "testutil.h"

#define INST "9a4b3c2d-1e0f-4a5b-8c7d-6e5f4a3b2c1d"

static char *dir;
static char dbpath[4096];
static struct store *s;
static struct events *ev;

/* The reader's "connection": suspend and resume calls counted. */
struct conn {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int suspends, resumes;
};

static void
conn_suspend(void *arg)
{
	struct conn *c = arg;

	pthread_mutex_lock(&c->lock);
	c->suspends++;
	pthread_mutex_unlock(&c->lock);
}

static void
conn_resume(void *arg)
{
	struct conn *c = arg;

	pthread_mutex_lock(&c->lock);
	c->resumes++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static const struct events_reader_ops conn_ops = {
    .suspend = conn_suspend,
    .resume = conn_resume,
};

static void
conn_init(struct conn *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
}

/* Waits up to 5 s for the connection to be resumed n times in all. */
static bool
conn_wait_resumes(struct conn *c, int n)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 5;
	pthread_mutex_lock(&c->lock);
	while (c->resumes < n &&
	    pthread_cond_timedwait(&c->cond, &c->lock, &ts) == 0)
		;
	ok = c->resumes >= n;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* A hub with a ring of 64 and heartbeats every heartbeat_s. */
static void
hub_start(int heartbeat_s)
{
	struct events_opts o = {
	    .db_path = dbpath, .ring = 64, .heartbeat_s = heartbeat_s};
	struct err e = {0};

	ck_assert_msg(events_new(&o, &ev, &e) == 0, "%s", e.msg);
}

static void
setup(void)
{
	struct err e = {0};

	dir = testutil_mkdtemp("check_eventhub");
	snprintf(dbpath, sizeof(dbpath), "%s/hyperlet.db", dir);
	ck_assert_msg(store_open(dbpath, NULL, &s, &e) == 0, "%s", e.msg);
	/* no heartbeat within a test unless it asks: a heartbeat also
	 * flushes, which would hide a reader the hub forgot */
	hub_start(60);
}

static void
teardown(void)
{
	ev = events_free(ev);
	s = store_close(s);
	testutil_rm_rf(dir);
	free(dir);
}

/* Appends n events (each its own commit, as the daemon's changes are). */
static void
append(int n)
{
	struct err e = {0};
	int i;

	for (i = 0; i < n; i++)
		ck_assert_msg(store_event_append_tx(
				  s, "volume.attached", INST, NULL, &e) == 0,
		    "%s", e.msg);
}

static int64_t
newest(void)
{
	struct err e = {0};
	int64_t o, n;

	ck_assert(store_events_bounds(s, &o, &n, &e) == 0);
	return n;
}

/* What the client side of the socket has received, decoded. */
struct client {
	int fd;
	bool chunked;
	char raw[1 << 16];
	size_t raw_len;
	char body[1 << 16];
	size_t body_len;
	bool bad_framing;
};

/* Decodes the whole chunks in raw into body (chunked) or moves raw. */
static void
decode(struct client *c)
{
	size_t off = 0;

	if (!c->chunked) {
		memcpy(c->body + c->body_len, c->raw, c->raw_len);
		c->body_len += c->raw_len;
		c->raw_len = 0;
		return;
	}
	for (;;) {
		char *end;
		unsigned long n;
		char *crlf = memmem(c->raw + off, c->raw_len - off, "\r\n", 2);

		if (crlf == NULL)
			break;
		n = strtoul(c->raw + off, &end, 16);
		if (end != crlf) {
			c->bad_framing = true;
			return;
		}
		if ((size_t)(crlf + 2 - c->raw) + n + 2 > c->raw_len)
			break; /* the chunk is not whole yet */
		if (memcmp(crlf + 2 + n, "\r\n", 2) != 0) {
			c->bad_framing = true;
			return;
		}
		memcpy(c->body + c->body_len, crlf + 2, n);
		c->body_len += n;
		off = (size_t)(crlf + 2 - c->raw) + n + 2;
	}
	memmove(c->raw, c->raw + off, c->raw_len - off);
	c->raw_len -= off;
}

/* Reads what is there (waiting up to ms for the first byte). */
static void
client_read(struct client *c, int ms)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};

	while (poll(&p, 1, ms) == 1) {
		ssize_t n = read(
		    c->fd, c->raw + c->raw_len, sizeof(c->raw) - c->raw_len);

		if (n <= 0)
			break;
		c->raw_len += (size_t)n;
		decode(c);
		ms = 50;
	}
}

/* The ids of the events in the decoded body, in order; their count. */
static size_t
ids(const struct client *c, int64_t *out, size_t max)
{
	const char *p = c->body, *end = c->body + c->body_len;
	size_t n = 0;

	while (p < end && n < max) {
		const char *hit = memmem(p, (size_t)(end - p), "id: ", 4);

		if (hit == NULL)
			break;
		out[n++] = strtoll(hit + 4, NULL, 10);
		p = hit + 4;
	}
	return n;
}

/* Reads from cl until it has want events (tries reads of up to ms
 * each), then checks the framing and that their ids are first, first + 1,
 * ... in order. */
static void
expect_ids(struct client *cl, int64_t first, size_t want, int tries, int ms)
{
	int64_t got[64];
	size_t n, i;

	ck_assert(want <= 64);
	for (i = 0; i < (size_t)tries && ids(cl, got, 64) < want; i++)
		client_read(cl, ms);
	ck_assert(!cl->bad_framing);
	n = ids(cl, got, 64);
	ck_assert_int_eq(n, want);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(got[i], first + (int64_t)i);
}

/* A send buffer that takes a few events at a time. */
static void
shrink_sndbuf(int fd)
{
	int small = 1024;

	ck_assert(
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)) == 0);
}

/* A reader after the newest id, gone direct on fds[0]: its first read
 * finds nothing and suspends its connection. */
static struct events_reader *
direct_reader(struct conn *c, int fds[2], bool chunked)
{
	struct events_reader *rd = NULL;
	struct err e = {0};
	char buf[256];

	conn_init(c);
	ck_assert(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
	ck_assert(fcntl(fds[0], F_SETFL, O_NONBLOCK) == 0);
	ck_assert_msg(
	    events_reader_new(ev, newest(), NULL, &conn_ops, c, &rd, &e) == 0,
	    "%s", e.msg);
	events_reader_direct(rd, fds[0], chunked);
	ck_assert_int_eq(events_reader_read(rd, s, buf, sizeof(buf)), 0);
	ck_assert_int_eq(c->suspends, 1);
	return rd;
}

START_TEST(test_direct_reader_gets_every_event_in_order_as_chunks)
{
	static struct client cl;
	struct events_reader *rd;
	struct conn c;
	int fds[2];
	int64_t first = newest() + 1;

	rd = direct_reader(&c, fds, true);
	memset(&cl, 0, sizeof(cl));
	cl.fd = fds[1];
	cl.chunked = true;
	append(10);
	expect_ids(&cl, first, 10, 40, 100);
	/* written by the hub: the connection was never woken */
	ck_assert_int_eq(c.resumes, 0);
	rd = events_reader_free(rd);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_a_full_socket_gets_the_rest_once_read_again)
{
	static struct client cl;
	struct events_reader *rd;
	struct conn c;
	int fds[2];
	int64_t first = newest() + 1;

	rd = direct_reader(&c, fds, true);
	shrink_sndbuf(fds[0]);
	memset(&cl, 0, sizeof(cl));
	cl.fd = fds[1];
	cl.chunked = true;
	append(60); /* within the ring of 64, more than the socket takes */
	usleep(100000);
	expect_ids(&cl, first, 60, 100, 50);
	ck_assert_int_eq(c.resumes, 0);
	rd = events_reader_free(rd);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_a_socket_full_before_the_events_gets_them_once_read)
{
	static struct client cl;
	static char junk[1 << 16];
	struct events_reader *rd;
	struct conn c;
	int fds[2];
	int64_t first = newest() + 1;
	size_t filled = 0, drained = 0;
	ssize_t n;

	rd = direct_reader(&c, fds, true);
	shrink_sndbuf(fds[0]);
	/* the socket full before the events come: the hub's send takes
	 * nothing, and it must try again by itself */
	while ((n = send(fds[0], junk, 512, MSG_DONTWAIT)) > 0)
		filled += (size_t)n;
	ck_assert(n < 0 && errno == EAGAIN);
	append(3);
	usleep(50000);
	while (drained < filled) {
		n = read(fds[1], junk,
		    filled - drained < sizeof(junk) ? filled - drained
						    : sizeof(junk));
		ck_assert(n > 0);
		drained += (size_t)n;
	}
	memset(&cl, 0, sizeof(cl));
	cl.fd = fds[1];
	cl.chunked = true;
	expect_ids(&cl, first, 3, 20, 100);
	rd = events_reader_free(rd);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_a_reader_a_whole_ring_behind_is_dropped)
{
	struct events_reader *rd;
	struct events_stats st;
	struct conn c;
	int fds[2];
	char buf[256];

	rd = direct_reader(&c, fds, true);
	shrink_sndbuf(fds[0]);
	append(200); /* never read: more than the ring of 64 behind */
	ck_assert_msg(conn_wait_resumes(&c, 1), "the reader was not woken");
	ck_assert_int_eq(
	    events_reader_read(rd, s, buf, sizeof(buf)), EVENTS_READ_DROP);
	events_stats_get(ev, &st);
	ck_assert_uint_eq(st.dropped, 1);
	ck_assert_uint_eq(st.direct, 0);
	rd = events_reader_free(rd);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

START_TEST(test_raw_stream_heartbeat_and_shutdown)
{
	static struct client cl;
	struct events_reader *rd;
	struct events_stats st;
	struct conn c;
	int fds[2];
	int64_t got[8];
	char buf[256];
	size_t i;

	ev = events_free(ev);
	hub_start(1);
	rd = direct_reader(&c, fds, false);
	memset(&cl, 0, sizeof(cl));
	cl.fd = fds[1];
	append(2);
	for (i = 0; i < 40 && ids(&cl, got, 8) < 2; i++)
		client_read(&cl, 100);
	ck_assert_int_eq(ids(&cl, got, 8), 2);
	ck_assert(memmem(cl.body, cl.body_len, "\r\n", 2) == NULL);
	events_stats_get(ev, &st);
	ck_assert_uint_eq(st.direct, 1);
	ck_assert_uint_ge(st.delivered, 2);
	/* idle: the heartbeat (every second here) comes from the hub */
	cl.body_len = 0;
	for (i = 0; i < 30 && cl.body_len == 0; i++)
		client_read(&cl, 100);
	ck_assert_msg(memmem(cl.body, cl.body_len, ": heartbeat\n\n", 13),
	    "no heartbeat in %zu bytes", cl.body_len);
	ck_assert_int_eq(c.resumes, 0);
	/* SIGTERM: the stream ends through its connection */
	events_shutdown(ev);
	ck_assert(conn_wait_resumes(&c, 1));
	ck_assert_int_eq(
	    events_reader_read(rd, s, buf, sizeof(buf)), EVENTS_READ_END);
	rd = events_reader_free(rd);
	close(fds[0]);
	close(fds[1]);
}
END_TEST

/* Reads rd as its connection would (a suspended read waits for the
 * resume) until want more events have come; checks their ids are first,
 * first + 1, ... */
static void
pull_ids(struct events_reader *rd, struct conn *c, int64_t first, int want)
{
	static char body[1 << 17];
	size_t len = 0;
	int64_t got = 0;
	int tries, waited;

	pthread_mutex_lock(&c->lock);
	waited = c->resumes;
	pthread_mutex_unlock(&c->lock);

	for (tries = 0; tries < 400 && got < want; tries++) {
		ssize_t n = events_reader_read(rd, s, body + len, 4096);
		const char *p;

		ck_assert_int_ge(n, 0);
		if (n == 0) {
			ck_assert_msg(conn_wait_resumes(c, ++waited),
			    "suspended and never woken (%lld of %d)",
			    (long long)got, want);
			continue;
		}
		len += (size_t)n;
		ck_assert(len + 4096 <= sizeof(body));
		body[len] = '\0';
		for (got = 0, p = body; (p = strstr(p, "id: ")) != NULL; p += 4)
			ck_assert_int_eq(
			    strtoll(p + 4, NULL, 10), first + got++);
	}
	ck_assert_int_eq(got, want);
}

/* With no reader the hub is idle: commits do not wake it and the ring
 * is left behind. A reader that comes later still gets every event after
 * its cursor, in order, whether they fit the ring or not; after it, the
 * hub reads each commit again. */
START_TEST(test_events_of_an_idle_spell_reach_a_reader_that_comes_later)
{
	struct events_reader *rd = NULL;
	struct err e = {0};
	struct conn c;
	int64_t first = newest() + 1;

	append(10);
	usleep(100000); /* the hub has gone idle on the first of them */
	conn_init(&c);
	ck_assert_msg(
	    events_reader_new(ev, first - 1, NULL, &conn_ops, &c, &rd, &e) == 0,
	    "%s", e.msg);
	pull_ids(rd, &c, first, 10);
	append(5); /* a reader: each commit is read at once */
	pull_ids(rd, &c, first + 10, 5);
	rd = events_reader_free(rd);

	/* more than a ring of 64 while idle: the reader catches up from
	 * the database, then the ring */
	first = newest() + 1;
	append(150);
	usleep(100000);
	conn_init(&c);
	ck_assert_msg(
	    events_reader_new(ev, first - 1, NULL, &conn_ops, &c, &rd, &e) == 0,
	    "%s", e.msg);
	pull_ids(rd, &c, first, 150);
	append(3);
	pull_ids(rd, &c, first + 150, 3);
	rd = events_reader_free(rd);
}
END_TEST

static Suite *
eventhub_suite(void)
{
	Suite *su = suite_create("eventhub");
	TCase *tc = tcase_create("direct");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(
	    tc, test_direct_reader_gets_every_event_in_order_as_chunks);
	tcase_add_test(tc, test_a_full_socket_gets_the_rest_once_read_again);
	tcase_add_test(
	    tc, test_a_socket_full_before_the_events_gets_them_once_read);
	tcase_add_test(tc, test_a_reader_a_whole_ring_behind_is_dropped);
	tcase_add_test(tc, test_raw_stream_heartbeat_and_shutdown);
	tcase_add_test(
	    tc, test_events_of_an_idle_spell_reach_a_reader_that_comes_later);
	suite_add_tcase(su, tc);
	return su;
}

int
main(void)
{
	return testutil_run(eventhub_suite());
}
