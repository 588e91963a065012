/*
 * The HTTP client harness of check_api and check_http (see httpc.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpc.h"
#include "macro.h"
#include "testutil.h"

int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

int
httpc_daemon_spawn(const char *dir, const char *conf, const char *log,
    int timeout_ms, pid_t *pid)
{
	const char *bin = getenv("HYPERLETD");
	int64_t deadline = now_ms() + timeout_ms;

	ck_assert_msg(bin && *bin, "HYPERLETD is not set (run via make check)");
	(void)unlink(log);
	*pid = fork();
	ck_assert_int_ge(*pid, 0);
	if (*pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		testutil_child_allow_core(dir);
		execl(bin, bin, "--config", conf, (char *)NULL);
		_exit(127);
	}
	while (now_ms() < deadline) {
		char *text = testutil_read_file(log, NULL);
		/* "serving on" comes once every connection is open: the
		 * API's own "listening on" comes before the last of them */
		char *line = text ? strstr(text, "serving on ") : NULL;
		char *p = line ? strstr(line, "(port ") : NULL;
		int port = p ? atoi(p + 6) : 0;
		int st;

		free(text);
		if (port > 0)
			return port;
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			return -1;
		}
		sleep_ms(20);
	}
	return -1;
}

int
httpc_daemon_stop(pid_t *pid)
{
	int64_t deadline = now_ms() + 30000;
	int st;

	if (*pid <= 0)
		return -1;
	kill(*pid, SIGTERM);
	while (now_ms() < deadline) {
		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st)
					     : 128 + WTERMSIG(st);
		}
		sleep_ms(10);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, &st, 0);
	*pid = 0;
	return -1;
}

void
resp_clear(struct resp *r)
{
	free(r->body);
	free(r->headers);
	if (r->json)
		json_object_put(r->json);
	memset(r, 0, sizeof(*r));
}

const char *
hdr(const struct resp *r, const char *name)
{
	static _Thread_local char v[512];
	const char *p = r->headers;
	size_t n = strlen(name);

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");

		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *s = p + n + 1;
			size_t l;

			while (*s == ' ')
				s++;
			l = eol ? (size_t)(eol - s) : strlen(s);
			if (l >= sizeof(v))
				l = sizeof(v) - 1;
			memcpy(v, s, l);
			v[l] = '\0';
			return v;
		}
		p = eol ? eol + 2 : NULL;
	}
	return NULL;
}

static size_t
append(char **p, size_t *len, const char *data, size_t add)
{
	char *np = realloc(*p, *len + add + 1);

	if (np == NULL)
		return 0;
	memcpy(np + *len, data, add);
	*len += add;
	np[*len] = '\0';
	*p = np;
	return add;
}

static size_t
on_body(char *data, size_t size, size_t n, void *cls)
{
	struct resp *r = cls;

	return append(&r->body, &r->len, data, size * n);
}

static size_t
on_header(char *data, size_t size, size_t n, void *cls)
{
	struct resp *r = cls;

	return append(&r->headers, &r->hlen, data, size * n);
}

static size_t
on_read(char *out, size_t size, size_t n, void *cls)
{
	struct upload_src *s = cls;
	size_t want = size * n, left = s->len - s->off;

	if (s->chunk && want > s->chunk)
		want = s->chunk;
	if (want > left)
		want = left;
	if (want && s->delay_ms)
		sleep_ms(s->delay_ms);
	if (s->data)
		memcpy(out, s->data + s->off, want);
	else
		memset(out, 0, want);
	s->off += want;
	return want;
}

CURLcode
httpc_perform(CURL *c, const struct httpc_req *q, struct resp *r)
{
	memset(r, 0, sizeof(*r));
	curl_easy_setopt(c, CURLOPT_URL, q->url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, q->method);
	curl_easy_setopt(c, CURLOPT_NOBODY, STREQ(q->method, "HEAD") ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, q->timeout_s ? q->timeout_s : 60L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	if (q->src) {
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, q->src);
		if (!q->chunked)
			curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
			    (curl_off_t)q->src->len);
	} else if (q->body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, q->body);
		curl_easy_setopt(
		    c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->blen);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, q->headers);
	r->cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &r->seconds);
	/* the list is the caller's: a reused handle must not keep it */
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
	return r->cc;
}
