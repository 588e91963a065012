/*
 * domaddr: reads /domain/devices/disk and /domain/devices/interface of a
 * domain's XML with libxml2's tree parser (no network, no entities, no
 * DTD), keeping what the config drive's device metadata needs: the target
 * dev and bus, the serial, the MAC and the address libvirt assigned.
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "domaddr.h"

#define DOMADDR_MAX_DEVS 4096

struct domaddr *
domaddr_free(struct domaddr *a)
{
	if (a == NULL)
		return NULL;
	for (size_t i = 0; i < a->n; i++) {
		struct domaddr_dev *d = &a->devs[i];

		free(d->target_dev);
		free(d->target_bus);
		free(d->device);
		free(d->serial);
		free(d->mac);
		free(d->addr_type);
		free(d->address);
	}
	free(a->devs);
	free(a);
	return NULL;
}

static bool
named(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE &&
	    strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *
child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n->children; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* An attribute's value (owned) into *ret; NULL when absent. -ENOMEM. */
static int
attr(const xmlNode *n, const char *name, char **ret)
{
	xmlChar *v;

	*ret = NULL;
	if (n == NULL ||
	    (v = xmlGetProp((xmlNode *)n, (const xmlChar *)name)) == NULL)
		return 0;
	*ret = strdup((const char *)v);
	xmlFree(v);
	return *ret ? 0 : -ENOMEM;
}

static int
text(const xmlNode *n, char **ret)
{
	xmlChar *v;

	*ret = NULL;
	if (n == NULL || (v = xmlNodeGetContent(n)) == NULL)
		return 0;
	*ret = strdup((const char *)v);
	xmlFree(v);
	return *ret ? 0 : -ENOMEM;
}

/* "0x00" -> "00"; other forms as they are */
static const char *
hex(const char *s)
{
	return s && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0)
	    ? s + 2
	    : s;
}

/* The address in Nova's form (domaddr.h) into d. */
static int
address(const xmlNode *addr, struct domaddr_dev *d)
{
	char *f[4] = {0};
	static const char *const pci[] = {"domain", "bus", "slot", "function"};
	static const char *const drive[] = {
	    "controller", "bus", "target", "unit"};
	const char *const *names;
	int rc = 0, n = 0;

	if (addr == NULL)
		return 0;
	if ((rc = attr(addr, "type", &d->addr_type)) < 0 || !d->addr_type)
		return rc;
	if (STREQ(d->addr_type, "pci"))
		names = pci;
	else if (STREQ(d->addr_type, "drive"))
		names = drive;
	else
		return 0;
	for (int i = 0; i < 4 && rc == 0; i++)
		rc = attr(addr, names[i], &f[i]);
	if (rc == 0 && f[0] && f[1] && f[2] && f[3]) {
		if (names == pci)
			n = asprintf(&d->address, "%s:%s:%s.%s", hex(f[0]),
			    hex(f[1]), hex(f[2]), hex(f[3]));
		else
			n = asprintf(
			    &d->address, "%s:%s:%s:%s", f[0], f[1], f[2], f[3]);
		if (n < 0) {
			d->address = NULL;
			rc = -ENOMEM;
		}
	}
	for (int i = 0; i < 4; i++)
		free(f[i]);
	return rc;
}

static int
disk(const xmlNode *n, struct domaddr_dev *d)
{
	const xmlNode *t = child(n, "target");
	int rc;

	d->kind = DOMADDR_DISK;
	if ((rc = attr(n, "device", &d->device)) < 0 ||
	    (rc = attr(t, "dev", &d->target_dev)) < 0 ||
	    (rc = attr(t, "bus", &d->target_bus)) < 0 ||
	    (rc = text(child(n, "serial"), &d->serial)) < 0)
		return rc;
	return address(child(n, "address"), d);
}

static int
nic(const xmlNode *n, struct domaddr_dev *d)
{
	int rc;

	d->kind = DOMADDR_NIC;
	if ((rc = attr(child(n, "target"), "dev", &d->target_dev)) < 0 ||
	    (rc = attr(child(n, "mac"), "address", &d->mac)) < 0)
		return rc;
	for (char *c = d->mac; c && *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return address(child(n, "address"), d);
}

static void
doc_freep(xmlDoc **p)
{
	if (*p)
		xmlFreeDoc(*p);
}

int
domaddr_parse(const char *xml, struct domaddr **ret, struct err *e)
{
	_cleanup_(doc_freep) xmlDoc *doc = NULL;
	_cleanup_(domaddr_freep) struct domaddr *a = NULL;
	const xmlNode *root, *devs;
	size_t n = 0;
	int rc = 0;

	if (xml == NULL)
		return err_set(e, -EINVAL, "no domain XML");
	doc = xmlReadMemory(xml, (int)strnlen(xml, 16 << 20), "domain.xml",
	    NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	if (doc == NULL || (root = xmlDocGetRootElement(doc)) == NULL ||
	    !named(root, "domain"))
		return err_set(e, -EINVAL, "not a domain's XML");
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	if ((devs = child(root, "devices")) == NULL) {
		*ret = TAKE_PTR(a);
		return 0;
	}
	for (const xmlNode *c = devs->children; c; c = c->next)
		if (named(c, "disk") || named(c, "interface"))
			n++;
	if (n > DOMADDR_MAX_DEVS)
		return err_set(e, -EINVAL, "domain XML: %zu devices", n);
	if (n && (a->devs = calloc(n, sizeof(*a->devs))) == NULL)
		return err_set(e, -ENOMEM, "out of memory");
	for (const xmlNode *c = devs->children; c && rc == 0; c = c->next) {
		if (named(c, "disk"))
			rc = disk(c, &a->devs[a->n++]);
		else if (named(c, "interface"))
			rc = nic(c, &a->devs[a->n++]);
	}
	if (rc < 0)
		return err_set(e, rc, "out of memory");
	*ret = TAKE_PTR(a);
	return 0;
}

const struct domaddr_dev *
domaddr_disk(const struct domaddr *a, const char *dev)
{
	for (size_t i = 0; a && dev && i < a->n; i++)
		if (a->devs[i].kind == DOMADDR_DISK && a->devs[i].target_dev &&
		    STREQ(a->devs[i].target_dev, dev))
			return &a->devs[i];
	return NULL;
}

const struct domaddr_dev *
domaddr_nic(const struct domaddr *a, const char *mac)
{
	for (size_t i = 0; a && mac && i < a->n; i++)
		if (a->devs[i].kind == DOMADDR_NIC && a->devs[i].mac &&
		    strcasecmp(a->devs[i].mac, mac) == 0)
			return &a->devs[i];
	return NULL;
}
