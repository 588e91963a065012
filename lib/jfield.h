/*
 * Strict typed access to json-c values: a strict parser (whole body, one
 * object, bounded depth, no duplicate keys, every string valid UTF-8
 * text of bounded length), typed getters that check json_object_is_type
 * before reading (json-c coerces "12abc" to 12 and 3.9 to 3), a sorted
 * field table for unknown-key rejection, and small helpers to build
 * response objects. Every error names the full field path, e.g.
 * "block_device_mapping_v2[2].volume_size".
 */
#ifndef HYPERLET_JFIELD_H
#define HYPERLET_JFIELD_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Flags of the getters. Absent keys are an error only with REQUIRED; a
 * JSON null is an error unless NULLABLE (then it counts as absent). */
#define JFIELD_OPTIONAL 0u
#define JFIELD_REQUIRED 1u
#define JFIELD_NULLABLE 2u

#define JFIELD_PATH_MAX ERR_FIELD_MAX

#define JFIELD_LONG_MAX (1u << 20) /* largest jfield_long.max */

/* A string value allowed to be longer than max_string: the value of
 * every key spelt key, at any depth (user_data, a key's data). */
struct jfield_long {
	const char *key;
	size_t max; /* bytes decoded, <= JFIELD_LONG_MAX */
};

/* Parse limits; see jfield_parse. */
struct jfield_limits {
	int max_depth; /* nested containers, the top-level object is 1 */
	size_t max_string; /* bytes of every decoded key and string */
	const struct jfield_long *longs; /* may be NULL when n_longs is 0 */
	size_t n_longs;
};

/*
 * Parses body[0..len) strictly: RFC 8259 grammar only (no single quotes,
 * NaN, comments, leading zeros or trailing commas, all of which json-c
 * tolerates in places), a single top-level object followed by nothing
 * but whitespace, at most lim->max_depth nested containers, no NUL byte,
 * no duplicate key in any object (keys compared after unescaping), every
 * key and string valid UTF-8 without control characters other than tab,
 * newline and carriage return (none at all in keys), at most
 * lim->max_string bytes decoded (lim->max_string <= 2048), or the
 * limit lim->longs gives the value of its key.
 * Returns 0 and *ret (owned: json_object_put), or -EINVAL with the path
 * of the offending value in e, -ENOMEM.
 */
int jfield_parse(const char *body, size_t len, const struct jfield_limits *lim,
    struct json_object **ret, struct err *e);

/* A value jfield_scan picks up: at a dotted key path from the top-level
 * object ("data.device_path"; no arrays on the way). */
struct jfield_want {
	const char *path;
	enum json_type type; /* json_type_string or json_type_object */
	bool found; /* out: the key exists */
	bool type_ok; /* out: its value has that type */
	char *str; /* out: the decoded string (json_type_string), owned */
};

/*
 * Checks text[0..len) exactly as jfield_parse does, without building a
 * tree (about a tenth of the cost), and fills in wants[0..n). Returns 0
 * (each want's str owned by the caller, NULL unless a string was found),
 * or -EINVAL / -ENOMEM with nothing left allocated.
 */
int jfield_scan(const char *text, size_t len, const struct jfield_limits *lim,
    struct jfield_want *wants, size_t n_wants, struct err *e);

/* Writes "prefix.key" (or "key" when prefix is empty, or "prefix" when
 * key is NULL or empty) into buf. Keys over 64 bytes are shown cut, with
 * "..."; the result is truncated to the buffer without splitting a UTF-8
 * sequence. Returns buf. */
char *jfield_path(
    char buf[JFIELD_PATH_MAX], const char *prefix, const char *key);
/* Writes "prefix.key[index]" (or "key[index]"). Returns buf. */
char *jfield_path_index(char buf[JFIELD_PATH_MAX], const char *prefix,
    const char *key, size_t index);

/*
 * Value checkers, for a key known to be present (e.g. inside
 * json_object_object_foreach): v is its value, NULL for a JSON null (as
 * json-c represents it); key and the object's path prefix serve only the
 * message. Each returns 1 and sets *ret for a value of the right type, 0
 * for a null with NULLABLE (and not REQUIRED; *ret untouched), or -EINVAL
 * naming the field ("expected integer", "must not be null", ...).
 * Strings are borrowed from v. Integers must be JSON integers (not 3.0,
 * not "3") within [min, max]; json-c saturates out-of-range literals to
 * INT64_MIN/INT64_MAX, which are therefore always refused.
 */
int jfield_value_str(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, const char **ret, struct err *e);
int jfield_value_int(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, int64_t min, int64_t max, int64_t *ret, struct err *e);
int jfield_value_bool(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, bool *ret, struct err *e);
/*
 * Nova's lenient types, for Nova's own fields only (hyperlet's fields use
 * the strict getters above). jfield_value_nova_int: a JSON integer, or a
 * string as nova/api/validation/parameter_types.py lets through: digits
 * only ('^[0-9]+$'), or with one leading '-' when neg_ok ('^-?[0-9]+$',
 * boot_index), and, as jsonschema's re.search matches '$' before a final
 * newline, one trailing "\n"; never a float, "1.5", "5x", " 5" or "".
 * The value must lie in [min, max]. jfield_value_nova_bool: a JSON
 * boolean, or exactly one of the strings of parameter_types.boolean:
 * True/TRUE/true/1/ON/On/on/YES/Yes/yes and their false counterparts
 * (not 1 or 0 as JSON numbers). Flags, returns and messages as the
 * strict checkers.
 */
int jfield_value_nova_int(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, bool neg_ok, int64_t min, int64_t max,
    int64_t *ret, struct err *e);
int jfield_value_nova_bool(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, bool *ret, struct err *e);
int jfield_value_obj(struct json_object *v, const char *prefix, const char *key,
    unsigned flags, struct json_object **ret, struct err *e);
int jfield_value_array(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, size_t max_len, struct json_object **ret,
    struct err *e);

/* The same, looking key up in obj first (a borrowed lookup): an absent
 * key returns 0, or -EINVAL "is required" with REQUIRED. */
int jfield_str(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, const char **ret, struct err *e);
int jfield_int(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, int64_t min, int64_t max, int64_t *ret, struct err *e);
int jfield_bool(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, bool *ret, struct err *e);
int jfield_obj(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, struct json_object **ret, struct err *e);
int jfield_array(struct json_object *obj, const char *prefix, const char *key,
    unsigned flags, size_t max_len, struct json_object **ret, struct err *e);

/* As jfield_value_str, and copies the string (owned) into *ret. */
int jfield_value_strdup(struct json_object *v, const char *prefix,
    const char *key, unsigned flags, char **ret, struct err *e);

/*
 * Finds key in names[0..n), which must be sorted by strcmp. Returns its
 * index, or -1.
 */
int jfield_lookup(const char *const *names, size_t n, const char *key);

/* Refuses any key of obj not in the sorted names[0..n): -EINVAL naming
 * "prefix.key" ("unknown field"). Returns 0. */
int jfield_check_keys(struct json_object *obj, const char *prefix,
    const char *const *names, size_t n, struct err *e);

/* Compact JSON text of v (no slash escaping), owned. NULL on OOM. */
char *jfield_to_text(struct json_object *v);

/*
 * Response builders: add key -> value to obj. key must outlive obj (a
 * string literal: json-c keeps the pointer) and be added once per object
 * (it is not looked up). A NULL string adds a JSON null; jfield_add_take
 * steals v (NULL adds null). On failure they set *rc to -ENOMEM; they do
 * nothing after an earlier failure recorded in *rc, so a formatter can
 * call them in a row and test rc once.
 */
void jfield_add_str(
    struct json_object *obj, const char *key, const char *s, int *rc);
void jfield_add_int(
    struct json_object *obj, const char *key, int64_t v, int *rc);
void jfield_add_bool(struct json_object *obj, const char *key, bool v, int *rc);
void jfield_add_take(
    struct json_object *obj, const char *key, struct json_object *v, int *rc);
/* Appends v to the array arr, stealing v. */
void jfield_append_take(
    struct json_object *arr, struct json_object *v, int *rc);

/* For _cleanup_(jfield_putp) struct json_object *o = NULL. */
void jfield_putp(struct json_object **o);

#endif
