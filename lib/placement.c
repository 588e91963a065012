/*
 * placement: OpenStack Placement's protocol for one compute node. See
 * placement.h. Every call goes through placement_call, which adds the
 * token and the microversion, fetches a Keystone token when there is none
 * (or it is about to expire) and once more on a 401.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "placement.h"
#include "util.h"

#define PLACEMENT_RETRIES 5 /* generation conflicts in a row */
#define TOKEN_MARGIN_S 60
/* the calls that carry many allocations get this many timeouts */
#define PLACEMENT_BIG_FACTOR 6 /* fetch a new token this long before expiry */

struct placement {
	struct http *http;
	char *url; /* without a trailing slash */
	char *static_token;
	char *auth_url, *username, *password, *project_name;
	char *user_domain_name, *project_domain_name;
	char *project_id, *user_id;
	long timeout_ms;
	char *token; /* the Keystone token of the moment, or NULL */
	time_t token_expires; /* 0: unknown */
	/* the provider's last known generation; -1: read it */
	int64_t generation;
	bool inv_known; /* inv holds what was last written */
	struct node_inventory inv[NODE_N_RC];
};

static int placement_call(struct placement *p, const char *method,
    const char *path, struct json_object *body, struct http_resp *ret,
    struct err *e);
static int keystone_token(struct placement *p, struct err *e);
static int answer_err(
    const struct http_resp *r, const char *what, struct err *e);
static bool is_conflict(const struct http_resp *r);
static int provider_generation(
    struct placement *p, const char *uuid, struct err *e);

static char *
dup_or_null(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

int
placement_new(
    const struct placement_conf *c, struct placement **ret, struct err *e)
{
	struct placement *p = calloc(1, sizeof(*p));
	size_t n;
	int rc;

	if (p == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	p->generation = -1;
	p->timeout_ms = c->timeout_ms;
	if ((rc = http_new(c->timeout_ms, &p->http, e)) < 0) {
		free(p);
		return rc;
	}
	p->url = strdup(c->url ? c->url : "");
	p->static_token = dup_or_null(c->token);
	p->auth_url = dup_or_null(c->auth_url);
	p->username = dup_or_null(c->username);
	p->password = dup_or_null(c->password);
	p->project_name = dup_or_null(c->project_name);
	p->user_domain_name =
	    strdup(c->user_domain_name ? c->user_domain_name : "Default");
	p->project_domain_name =
	    strdup(c->project_domain_name ? c->project_domain_name : "Default");
	p->project_id = strdup(c->project_id ? c->project_id : "hyperlet");
	p->user_id = strdup(c->user_id ? c->user_id : "hyperlet");
	if (!p->url || !p->user_domain_name || !p->project_domain_name ||
	    !p->project_id || !p->user_id) {
		placement_free(p);
		return err_set(e, -ENOMEM, "out of memory");
	}
	n = strlen(p->url);
	while (n > 0 && p->url[n - 1] == '/')
		p->url[--n] = '\0';
	*ret = p;
	return 0;
}

void
placement_set_abort(struct placement *p, const _Atomic bool *flag)
{
	http_set_abort(p->http, flag);
}

static void
free_secret(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

struct placement *
placement_free(struct placement *p)
{
	if (p == NULL)
		return NULL;
	http_free(p->http);
	free(p->url);
	free_secret(p->static_token);
	free(p->auth_url);
	free(p->username);
	free_secret(p->password);
	free(p->project_name);
	free(p->user_domain_name);
	free(p->project_domain_name);
	free(p->project_id);
	free(p->user_id);
	free_secret(p->token);
	free(p);
	return NULL;
}

/* --- auth ---------------------------------------------------------------- */

/* "2026-12-05T07:13:43.000000Z" into seconds since the epoch; 0 if not. */
static time_t
parse_expiry(const char *s)
{
	struct tm tm = {0};
	const char *end;

	if (s == NULL || (end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
		return 0;
	return timegm(&tm);
}

/* POST {auth_url}/v3/auth/tokens with the password method, scoped to
 * project_name. */
static int
keystone_token(struct placement *p, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *auth, *id, *pw, *user, *dom, *scope, *proj, *pdom,
	    *methods, *tok, *exp;
	struct json_object *body = json_object_new_object();
	char url[1100];
	size_t n = p->auth_url ? strlen(p->auth_url) : 0;
	int rc;

	if (p->auth_url == NULL || body == NULL) {
		if (body)
			json_object_put(body);
		return err_set(
		    e, -EACCES, "placement: no token and no auth_url");
	}
	while (n > 0 && p->auth_url[n - 1] == '/')
		n--;
	(void)snprintf(url, sizeof(url), "%.*s%s/auth/tokens", (int)n,
	    p->auth_url,
	    n >= 3 && strncmp(p->auth_url + n - 3, "/v3", 3) == 0 ? "" : "/v3");
	auth = json_object_new_object();
	id = json_object_new_object();
	methods = json_object_new_array();
	json_object_array_add(methods, json_object_new_string("password"));
	json_object_object_add(id, "methods", methods);
	pw = json_object_new_object();
	user = json_object_new_object();
	json_object_object_add(user, "name",
	    json_object_new_string(p->username ? p->username : ""));
	dom = json_object_new_object();
	json_object_object_add(
	    dom, "name", json_object_new_string(p->user_domain_name));
	json_object_object_add(user, "domain", dom);
	json_object_object_add(user, "password",
	    json_object_new_string(p->password ? p->password : ""));
	json_object_object_add(pw, "user", user);
	json_object_object_add(id, "password", pw);
	json_object_object_add(auth, "identity", id);
	if (p->project_name) {
		scope = json_object_new_object();
		proj = json_object_new_object();
		json_object_object_add(
		    proj, "name", json_object_new_string(p->project_name));
		pdom = json_object_new_object();
		json_object_object_add(pdom, "name",
		    json_object_new_string(p->project_domain_name));
		json_object_object_add(proj, "domain", pdom);
		json_object_object_add(scope, "project", proj);
		json_object_object_add(auth, "scope", scope);
	}
	json_object_object_add(body, "auth", auth);
	rc = http_request(p->http, "POST", url, NULL, body, &r, e);
	json_object_put(body);
	if (rc < 0)
		return rc;
	if (r.status != 201 || r.subject_token == NULL)
		return err_set(e, r.status >= 500 ? -EIO : -EACCES,
		    "keystone %s: HTTP %ld", url, r.status);
	free_secret(p->token);
	p->token = r.subject_token;
	r.subject_token = NULL;
	p->token_expires = 0;
	if (r.json && json_object_object_get_ex(r.json, "token", &tok) &&
	    json_object_object_get_ex(tok, "expires_at", &exp) &&
	    json_object_is_type(exp, json_type_string))
		p->token_expires = parse_expiry(json_object_get_string(exp));
	return 0;
}

/* --- one call -------------------------------------------------------------- */

static int
placement_call(struct placement *p, const char *method, const char *path,
    struct json_object *body, struct http_resp *ret, struct err *e)
{
	char url[2048], auth[1200];
	const char *headers[] = {
	    "OpenStack-API-Version: placement " PLACEMENT_MICROVERSION,
	    auth,
	    NULL,
	};
	int rc;

	(void)snprintf(url, sizeof(url), "%s%s", p->url, path);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (p->static_token == NULL &&
		    (p->token == NULL ||
			(p->token_expires &&
			    time(NULL) + TOKEN_MARGIN_S >= p->token_expires)) &&
		    (rc = keystone_token(p, e)) < 0)
			return rc;
		(void)snprintf(auth, sizeof(auth), "X-Auth-Token: %s",
		    p->static_token ? p->static_token : p->token);
		if ((rc = http_request(
			 p->http, method, url, headers, body, ret, e)) < 0)
			return rc;
		if (ret->status != 401 || p->static_token)
			break;
		free_secret(p->token); /* expired or revoked: once more */
		p->token = NULL;
	}
	if (ret->status == 401 || ret->status == 403)
		return err_set(e, -EACCES, "placement %s %s: HTTP %ld", method,
		    path, ret->status);
	if (ret->status >= 500)
		return err_set(e, -EIO, "placement %s %s: HTTP %ld", method,
		    path, ret->status);
	return 0;
}

/* Placement's error body: {"errors": [{"code": ..., "detail": ...}]}. */
static const char *
answer_field(const struct http_resp *r, const char *key)
{
	struct json_object *errs, *first, *v;

	if (r->json && json_object_object_get_ex(r->json, "errors", &errs) &&
	    json_object_is_type(errs, json_type_array) &&
	    json_object_array_length(errs) > 0 &&
	    (first = json_object_array_get_idx(errs, 0)) &&
	    json_object_object_get_ex(first, key, &v) &&
	    json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

static int
answer_err(const struct http_resp *r, const char *what, struct err *e)
{
	const char *d = answer_field(r, "detail");
	char one[200];
	size_t i = 0;

	/* Placement's details span lines: the first one says it */
	if (d) {
		while (d[0] == '\n' || d[0] == ' ')
			d++;
		while (d[i] && d[i] != '\n' && i < sizeof(one) - 1) {
			one[i] = d[i];
			i++;
		}
	}
	one[i] = '\0';
	return err_set(e, -EINVAL, "placement %s: HTTP %ld%s%s", what,
	    r->status, i ? ": " : "", one);
}

static bool
is_conflict(const struct http_resp *r)
{
	const char *code = answer_field(r, "code");

	return r->status == 409 && code &&
	    strcmp(code, "placement.concurrent_update") == 0;
}

static int
get_int64(struct json_object *o, const char *key, int64_t *ret)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -EINVAL;
	*ret = json_object_get_int64(v);
	return 0;
}

/* --- provider ------------------------------------------------------------ */

static int
provider_generation(struct placement *p, const char *uuid, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	char path[128];
	int rc;

	(void)snprintf(path, sizeof(path), "/resource_providers/%s", uuid);
	if ((rc = placement_call(p, "GET", path, NULL, &r, e)) < 0)
		return rc;
	if (r.status == 404)
		return -ENOENT;
	if (r.status != 200)
		return answer_err(&r, "GET resource provider", e);
	if (get_int64(r.json, "generation", &p->generation) < 0)
		return err_set(
		    e, -EIO, "placement: a provider without generation");
	return 0;
}

int
placement_provider_ensure(
    struct placement *p, const char *uuid, const char *name, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *body;
	int rc;

	/* each ensure (each reconciliation) writes the inventories again:
	 * someone may have changed them */
	p->inv_known = false;
	rc = provider_generation(p, uuid, e);
	if (rc != -ENOENT)
		return rc;
	if ((body = json_object_new_object()) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	json_object_object_add(body, "uuid", json_object_new_string(uuid));
	json_object_object_add(body, "name", json_object_new_string(name));
	rc = placement_call(p, "POST", "/resource_providers", body, &r, e);
	json_object_put(body);
	if (rc < 0)
		return rc;
	if (r.status == 409) /* a racing create of the same uuid is fine */
		return provider_generation(p, uuid, e) == -ENOENT
		    ? answer_err(&r, "POST resource provider", e)
		    : e->code;
	if (r.status != 200 && r.status != 201)
		return answer_err(&r, "POST resource provider", e);
	if (get_int64(r.json, "generation", &p->generation) < 0)
		p->generation = -1;
	return 0;
}

/* --- inventories ------------------------------------------------------------ */

static bool
inv_field_eq(struct json_object *o, const char *key, int64_t want)
{
	int64_t v;

	return get_int64(o, key, &v) == 0 && v == want;
}

/* 1 when Placement's inventories (GET path) are inv, 0 when not. */
static int
inventories_same(struct placement *p, const char *path,
    const struct node_inventory inv[NODE_N_RC], struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *invs, *o, *ratio;
	size_t want = 0;
	int rc;

	if ((rc = placement_call(p, "GET", path, NULL, &r, e)) < 0)
		return rc;
	if (r.status != 200 || !r.json ||
	    !json_object_object_get_ex(r.json, "inventories", &invs))
		return 0;
	(void)get_int64(r.json, "resource_provider_generation", &p->generation);
	for (int i = 0; i < NODE_N_RC; i++) {
		if (inv[i].total <= 0)
			continue;
		want++;
		if (!json_object_object_get_ex(invs, node_rc_name(i), &o) ||
		    !inv_field_eq(o, "total", inv[i].total) ||
		    !inv_field_eq(o, "reserved", inv[i].reserved) ||
		    !inv_field_eq(o, "min_unit", 1) ||
		    !inv_field_eq(o, "step_size", 1) ||
		    !inv_field_eq(o, "max_unit", inv[i].total) ||
		    !json_object_object_get_ex(o, "allocation_ratio", &ratio) ||
		    (float)json_object_get_double(ratio) !=
			(float)inv[i].allocation_ratio)
			return 0;
	}
	return (size_t)json_object_object_length(invs) == want;
}

int
placement_inventories_put(struct placement *p, const char *uuid,
    const struct node_inventory inv[NODE_N_RC], struct err *e)
{
	char path[128];
	int rc;

	if (p->inv_known && memcmp(p->inv, inv, sizeof(p->inv)) == 0)
		return 0;
	(void)snprintf(
	    path, sizeof(path), "/resource_providers/%s/inventories", uuid);
	/* as Nova's report client: no PUT (which moves the provider's
	 * generation) when Placement has them already */
	if ((rc = inventories_same(p, path, inv, e)) < 0)
		return rc;
	if (rc == 1) {
		memcpy(p->inv, inv, sizeof(p->inv));
		p->inv_known = true;
		return 0;
	}
	for (int attempt = 0; attempt < PLACEMENT_RETRIES; attempt++) {
		_cleanup_(http_resp_clear) struct http_resp r = {0};
		struct json_object *body, *invs;

		if (p->generation < 0 &&
		    (rc = provider_generation(p, uuid, e)) < 0)
			return rc == -ENOENT
			    ? err_set(e, -EIO, "placement: provider %s is gone",
				  uuid)
			    : rc;
		body = json_object_new_object();
		invs = json_object_new_object();
		for (int i = 0; i < NODE_N_RC; i++) {
			struct json_object *o;

			if (inv[i].total <= 0)
				continue;
			o = json_object_new_object();
			json_object_object_add(
			    o, "total", json_object_new_int64(inv[i].total));
			json_object_object_add(o, "reserved",
			    json_object_new_int64(inv[i].reserved));
			json_object_object_add(o, "allocation_ratio",
			    json_object_new_double(inv[i].allocation_ratio));
			json_object_object_add(
			    o, "min_unit", json_object_new_int64(1));
			json_object_object_add(
			    o, "max_unit", json_object_new_int64(inv[i].total));
			json_object_object_add(
			    o, "step_size", json_object_new_int64(1));
			json_object_object_add(invs, node_rc_name(i), o);
		}
		json_object_object_add(body, "resource_provider_generation",
		    json_object_new_int64(p->generation));
		json_object_object_add(body, "inventories", invs);
		rc = placement_call(p, "PUT", path, body, &r, e);
		json_object_put(body);
		if (rc < 0)
			return rc;
		if (r.status == 200) {
			if (get_int64(r.json, "resource_provider_generation",
				&p->generation) < 0)
				p->generation = -1;
			memcpy(p->inv, inv, sizeof(p->inv));
			p->inv_known = true;
			return 0;
		}
		if (!is_conflict(&r))
			return answer_err(&r, "PUT inventories", e);
		p->generation = -1; /* someone else changed it: re-read */
	}
	return err_set(e, -EIO,
	    "placement: PUT inventories: %d generation conflicts in a row",
	    PLACEMENT_RETRIES);
}

/* --- allocations --------------------------------------------------------- */

/* The consumer's generation (null: Placement does not know it). */
static int
consumer_generation(struct placement *p, const char *consumer,
    struct json_object **ret, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *g;
	char path[128];
	int rc;

	(void)snprintf(path, sizeof(path), "/allocations/%s", consumer);
	if ((rc = placement_call(p, "GET", path, NULL, &r, e)) < 0)
		return rc;
	if (r.status != 200)
		return answer_err(&r, "GET allocations", e);
	*ret = r.json &&
		json_object_object_get_ex(r.json, "consumer_generation", &g)
	    ? json_object_get(g)
	    : NULL;
	return 0;
}

/* {"resources": {...}} of usage on rp, the amounts of 0 left out. */
static struct json_object *
allocation_json(const char *rp, const int64_t usage[NODE_N_RC])
{
	struct json_object *allocs = json_object_new_object();
	struct json_object *mine = json_object_new_object();
	struct json_object *res = json_object_new_object();

	for (int i = 0; i < NODE_N_RC; i++)
		if (usage[i] > 0)
			json_object_object_add(res, node_rc_name(i),
			    json_object_new_int64(usage[i]));
	json_object_object_add(mine, "resources", res);
	json_object_object_add(allocs, rp, mine);
	return allocs;
}

/* The consumer's part of a PUT or POST body, around allocs. */
static struct json_object *
consumer_json(
    struct placement *p, struct json_object *allocs, struct json_object *gen)
{
	struct json_object *body = json_object_new_object();

	json_object_object_add(body, "allocations", allocs);
	json_object_object_add(body, "consumer_generation", gen);
	json_object_object_add(
	    body, "project_id", json_object_new_string(p->project_id));
	json_object_object_add(
	    body, "user_id", json_object_new_string(p->user_id));
	json_object_object_add(
	    body, "consumer_type", json_object_new_string("INSTANCE"));
	return body;
}

int
placement_allocations_post(struct placement *p, const char *rp,
    const char *const *consumers, const int64_t (*usage)[NODE_N_RC], size_t n,
    struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *body;
	int rc;

	if (n == 0)
		return 0;
	if ((body = json_object_new_object()) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	http_set_timeout(p->http, p->timeout_ms * PLACEMENT_BIG_FACTOR);
	for (size_t i = 0; i < n; i++)
		json_object_object_add(body, consumers[i],
		    consumer_json(p, allocation_json(rp, usage[i]), NULL));
	rc = placement_call(p, "POST", "/allocations", body, &r, e);
	http_set_timeout(p->http, p->timeout_ms);
	json_object_put(body);
	if (rc < 0)
		return rc;
	if (r.status == 204 || r.status == 200)
		return 0;
	if (r.status == 409)
		return err_set(e, -EEXIST, "placement: POST allocations: 409");
	return answer_err(&r, "POST allocations", e);
}

int
placement_allocation_put(struct placement *p, const char *rp,
    const char *consumer, const int64_t usage[NODE_N_RC], struct err *e)
{
	struct json_object *gen = NULL; /* null: a new consumer */
	char path[128];
	int rc;

	(void)snprintf(path, sizeof(path), "/allocations/%s", consumer);
	for (int attempt = 0; attempt < PLACEMENT_RETRIES; attempt++) {
		_cleanup_(http_resp_clear) struct http_resp r = {0};
		struct json_object *body =
		    consumer_json(p, allocation_json(rp, usage), gen);

		gen = NULL;
		rc = placement_call(p, "PUT", path, body, &r, e);
		json_object_put(body);
		if (rc < 0)
			return rc;
		if (r.status == 204 || r.status == 200)
			return 0;
		if (!is_conflict(&r))
			return answer_err(&r, "PUT allocations", e);
		/* a consumer generation conflict (the consumer exists, or
		 * changed since it was read), or the provider's generation
		 * moved under the claim: read and try again */
		if ((rc = consumer_generation(p, consumer, &gen, e)) < 0)
			return rc;
	}
	if (gen)
		json_object_put(gen);
	return err_set(e, -EIO,
	    "placement: PUT allocations %s: %d generation conflicts in a row",
	    consumer, PLACEMENT_RETRIES);
}

int
placement_allocation_delete(
    struct placement *p, const char *consumer, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	char path[128];
	int rc;

	(void)snprintf(path, sizeof(path), "/allocations/%s", consumer);
	if ((rc = placement_call(p, "DELETE", path, NULL, &r, e)) < 0)
		return rc;
	if (r.status == 204 || r.status == 404)
		return 0;
	return answer_err(&r, "DELETE allocations", e);
}

int
placement_provider_allocations(struct placement *p, const char *rp,
    struct placement_alloc **ret, size_t *ret_n, struct err *e)
{
	_cleanup_(http_resp_clear) struct http_resp r = {0};
	struct json_object *allocs;
	struct placement_alloc *v = NULL;
	char path[128];
	size_t n = 0;
	int rc;

	(void)snprintf(
	    path, sizeof(path), "/resource_providers/%s/allocations", rp);
	/* every instance's allocation in one answer: Placement takes about
	 * a second per few thousand */
	http_set_timeout(p->http, p->timeout_ms * PLACEMENT_BIG_FACTOR);
	rc = placement_call(p, "GET", path, NULL, &r, e);
	http_set_timeout(p->http, p->timeout_ms);
	if (rc < 0)
		return rc;
	if (r.status != 200)
		return answer_err(&r, "GET provider allocations", e);
	if (!r.json ||
	    !json_object_object_get_ex(r.json, "allocations", &allocs) ||
	    !json_object_is_type(allocs, json_type_object))
		return err_set(e, -EIO, "placement: allocations: bad answer");
	(void)get_int64(r.json, "resource_provider_generation", &p->generation);
	if (json_object_object_length(allocs) > 0 &&
	    (v = calloc((size_t)json_object_object_length(allocs),
		 sizeof(*v))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	json_object_object_foreach(allocs, consumer, a)
	{
		struct json_object *res;

		if (strlen(consumer) >= sizeof(v[n].consumer))
			continue;
		memcpy(v[n].consumer, consumer, strlen(consumer) + 1);
		if (json_object_object_get_ex(a, "resources", &res))
			for (int i = 0; i < NODE_N_RC; i++)
				(void)get_int64(
				    res, node_rc_name(i), &v[n].usage[i]);
		n++;
	}
	*ret = v;
	*ret_n = n;
	return 0;
}
