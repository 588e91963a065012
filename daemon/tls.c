/*
 * tls: GnuTLS for the API's HTTPS (the only daemon file besides
 * api_images.c's hashing that includes it). The certificate and key are
 * not handed to MHD as memory, which it would load once for good, but
 * served by MHD's certificate callback from the current "pair"; a reload
 * (SIGHUP) loads a new pair and makes it current under tls_lock. A pair
 * once served is never freed before tls_free: GnuTLS keeps using the
 * pointers the callback returned for the rest of that handshake. Each
 * reload therefore keeps a few KiB until the daemon stops.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>

#include "tls.h"

#define TLS_MAX_CHAIN 16

struct tls_pair {
	struct tls_pair *older;
	gnutls_pcert_st pcert[TLS_MAX_CHAIN];
	unsigned n_pcert;
	gnutls_privkey_t key;
};

struct tls {
	char *cert_file, *key_file;
	struct tls_pair *pairs; /* the current one first; guarded by tls_lock */
};

/* GnuTLS' callback has no pointer of ours: the one struct tls. */
static pthread_mutex_t tls_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls *tls_current; /* guarded by tls_lock */

/* Checks a GnuTLS priority string (see tls.h). */
int
tls_priorities_check(const char *priorities, struct err *e)
{
	gnutls_priority_t p;
	const char *pos = NULL;
	int rc;

	rc = gnutls_priority_init(&p, priorities, &pos);
	if (rc < 0)
		return err_set(e, -EINVAL,
		    "tls_priorities: GnuTLS refuses it at '%.40s': %s",
		    pos ? pos : priorities, gnutls_strerror(rc));
	gnutls_priority_deinit(p);
	return 0;
}

static void
pair_free(struct tls_pair *p)
{
	unsigned i;

	for (i = 0; i < p->n_pcert; i++)
		gnutls_pcert_deinit(&p->pcert[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	free(p);
}

static int
load_file(const char *path, gnutls_datum_t *d, struct err *e)
{
	int rc = gnutls_load_file(path, d);

	if (rc < 0)
		return err_set(e, rc == GNUTLS_E_FILE_ERROR ? -ENOENT : -ENOMEM,
		    "%s: cannot read it", path);
	return 0;
}

/* Loads t's files as a new pair (not yet current). */
static int
pair_load(const struct tls *t, struct tls_pair **ret, struct err *e)
{
	gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
	gnutls_certificate_credentials_t check = NULL;
	struct tls_pair *p;
	int rc;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((rc = load_file(t->cert_file, &cert, e)) < 0 ||
	    (rc = load_file(t->key_file, &key, e)) < 0)
		goto out;
	/* What MHD would have done with them: parse both and check that
	 * the key is the certificate's. */
	if (gnutls_certificate_allocate_credentials(&check) < 0) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = gnutls_certificate_set_x509_key_mem(
		 check, &cert, &key, GNUTLS_X509_FMT_PEM)) < 0) {
		rc = err_set(e, -EINVAL, "%s, %s: %s", t->cert_file,
		    t->key_file, gnutls_strerror(rc));
		goto out;
	}
	p->n_pcert = TLS_MAX_CHAIN;
	if ((rc = gnutls_pcert_list_import_x509_raw(
		 p->pcert, &p->n_pcert, &cert, GNUTLS_X509_FMT_PEM, 0)) < 0) {
		p->n_pcert = 0;
		rc = err_set(
		    e, -EINVAL, "%s: %s", t->cert_file, gnutls_strerror(rc));
		goto out;
	}
	if ((rc = gnutls_privkey_init(&p->key)) < 0 ||
	    (rc = gnutls_privkey_import_x509_raw(
		 p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		rc = err_set(
		    e, -EINVAL, "%s: %s", t->key_file, gnutls_strerror(rc));
		goto out;
	}
	rc = 0;
out:
	if (check)
		gnutls_certificate_free_credentials(check);
	gnutls_free(cert.data);
	if (key.data) {
		explicit_bzero(key.data, key.size);
		gnutls_free(key.data);
	}
	if (rc < 0)
		pair_free(p);
	else
		*ret = p;
	return rc;
}

/* Loads the pair and makes t the one struct tls (see tls.h). */
int
tls_new(const char *cert_file, const char *key_file, struct tls **ret,
    struct err *e)
{
	struct tls *t = calloc(1, sizeof(*t));
	struct tls_pair *p = NULL;
	int rc;

	if (t == NULL || !(t->cert_file = strdup(cert_file)) ||
	    !(t->key_file = strdup(key_file))) {
		rc = err_set(e, -ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = pair_load(t, &p, e)) < 0)
		goto fail;
	t->pairs = p;
	pthread_mutex_lock(&tls_lock);
	if (tls_current) {
		pthread_mutex_unlock(&tls_lock);
		rc = err_set(e, -EBUSY, "TLS credentials exist already");
		goto fail;
	}
	tls_current = t;
	pthread_mutex_unlock(&tls_lock);
	*ret = t;
	return 0;
fail:
	(void)tls_free(t);
	return rc;
}

/* Loads the files again and serves the new pair (see tls.h). */
int
tls_reload(struct tls *t, struct err *e)
{
	struct tls_pair *p;
	int rc;

	if ((rc = pair_load(t, &p, e)) < 0)
		return rc;
	pthread_mutex_lock(&tls_lock);
	p->older = t->pairs;
	t->pairs = p;
	pthread_mutex_unlock(&tls_lock);
	return 0;
}

/* gnutls_certificate_retrieve_function2: the current pair, whatever the
 * client asked for (there is one). */
static int
cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn,
    int nreqs, const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *pkey)
{
	int rc = -1;

	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	pthread_mutex_lock(&tls_lock);
	if (tls_current && tls_current->pairs) {
		*pcert = tls_current->pairs->pcert;
		*pcert_length = tls_current->pairs->n_pcert;
		*pkey = tls_current->pairs->key;
		rc = 0;
	}
	pthread_mutex_unlock(&tls_lock);
	return rc;
}

/* The certificate callback for MHD (see tls.h). */
void *
tls_cert_callback(void)
{
	gnutls_certificate_retrieve_function2 *f = cert_callback;

	return (void *)f;
}

/* Frees t and every pair (see tls.h). */
struct tls *
tls_free(struct tls *t)
{
	struct tls_pair *p;

	if (t == NULL)
		return NULL;
	pthread_mutex_lock(&tls_lock);
	if (tls_current == t)
		tls_current = NULL;
	pthread_mutex_unlock(&tls_lock);
	while ((p = t->pairs)) {
		t->pairs = p->older;
		pair_free(p);
	}
	free(t->cert_file);
	free(t->key_file);
	free(t);
	return NULL;
}
