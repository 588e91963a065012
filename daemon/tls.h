/*
 * tls: the HTTPS side of the API that needs GnuTLS itself: checking a
 * priority string, and the server's certificate and key, loaded from
 * their files and served to libmicrohttpd through its certificate
 * callback, so that SIGHUP can swap them for new connections while the
 * daemon runs (MHD cannot replace its own credentials).
 */
#ifndef HYPERLET_TLS_H
#define HYPERLET_TLS_H

#include "err.h"

struct tls;

/* Checks a GnuTLS priority string. Returns 0, or -EINVAL with e naming
 * the part GnuTLS did not accept. */
int tls_priorities_check(const char *priorities, struct err *e);

/*
 * Loads the PEM certificate (chain) and private key from their files and
 * checks that they belong together. Only one struct tls may exist at a
 * time (GnuTLS' certificate callback carries no pointer of ours). Returns
 * 0 with *ret owned (tls_free), -EINVAL (unparsable, mismatched), -ENOENT
 * / -EACCES (unreadable), -EBUSY (one exists already), -ENOMEM.
 */
int tls_new(const char *cert_file, const char *key_file, struct tls **ret,
    struct err *e);

/* Loads the files again; on success new handshakes get the new pair, on
 * failure the old one stays. Returns as tls_new. */
int tls_reload(struct tls *t, struct err *e);

/* The callback to pass as MHD_OPTION_HTTPS_CERT_CALLBACK (a
 * gnutls_certificate_retrieve_function2 *). */
void *tls_cert_callback(void);

/* Frees t (and every pair it served: a handshake may still hold one until
 * the daemon stops). Call after MHD stopped. Accepts NULL; returns
 * NULL. */
struct tls *tls_free(struct tls *t);

#endif
