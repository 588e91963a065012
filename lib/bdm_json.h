/*
 * JSON <-> model: the create request (Nova's server-create body with
 * block_device_mapping_v2), the attach request, and the JSON the API
 * answers with (instances, BDMs with serial and by_id, block_device_info).
 * Strict types for hyperlet's own fields; Nova's BDM fields boot_index,
 * volume_size and delete_on_termination take Nova's types (digit strings,
 * Nova's boolean strings: jfield_value_nova_int/_bool), nothing else is
 * coerced. Unknown keys are refused.
 */
#ifndef HYPERLET_BDM_JSON_H
#define HYPERLET_BDM_JSON_H

#include <stddef.h>

#include "bdm.h"
#include "blockinfo.h"
#include "err.h"

struct json_object;
struct jwriter;

#define BDM_JSON_MAX_DEPTH 8
#define BDM_JSON_MAX_STRING 1024

/*
 * Parses a create body (len bytes, not necessarily NUL-terminated) into a
 * new instance: fields as given, nothing defaulted or validated beyond
 * types, shapes and string limits (bdm_instance_prepare does the rules).
 * Returns 0 and *ret_inst (owned), or -EINVAL with the field named in e.
 */
int bdm_json_parse_create(
    const char *body, size_t len, struct instance **ret_inst, struct err *e);

/* Parses an attach body ({"volume_id", "connection_info", "device_name"?,
 * "disk_bus"?, "bdm_uuid"?, "tag"?, "delete_on_termination"?}) into *ret,
 * which must be zeroed or hold a BDM (bdm_clear'ed on success; untouched
 * on failure). Source and destination are volume. Returns 0, or -EINVAL
 * with the field named in e. */
int bdm_json_parse_attach(
    const char *body, size_t len, struct bdm *ret, struct err *e);

/* Reads a BDM's connection_info JSON text: driver_volume_type ("file" or
 * "block") and data.device_path (a valid absolute path). Returns 0 with
 * both owned, or -EINVAL naming the field (prefix, e.g.
 * "block_device_mapping_v2[3].connection_info"). */
int bdm_json_conn_source(const char *connection_info, const char *prefix,
    char **ret_type, char **ret_path, struct err *e);

/* New JSON objects (owned; json_object_put them), NULL on OOM (and for
 * an index out of range, or a NULL bi for format_blockinfo). bi may be
 * NULL elsewhere, then serial and by_id are null. format_bdm: one BDM;
 * format_bdms: {"block_device_mappings": [...]}; format_instance: the
 * instance with its BDMs; format_blockinfo: block_device_info
 * ({"root_device_name", "local_root" (absent when booting from a volume),
 * "ephemerals", "swap" (null when none), "block_device_mapping"}), each
 * entry a Nova DriverBlockDevice dict plus bdm_uuid, serial, by_id, kind. */
struct json_object *bdm_json_format_bdm(
    const struct instance *inst, size_t index, const struct blockinfo *bi);
struct json_object *bdm_json_format_bdms(
    const struct instance *inst, const struct blockinfo *bi);
struct json_object *bdm_json_format_instance(
    const struct instance *inst, const struct blockinfo *bi);
struct json_object *bdm_json_format_blockinfo(
    const struct instance *inst, const struct blockinfo *bi);

/* Writes the instance as one JSON value into w, the very text
 * bdm_json_format_instance's object prints as (with
 * JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE): for responses
 * too large for a tree (the instance list). bi as there. Errors (OOM)
 * stick in w (jwriter_finish). */
void bdm_json_write_instance(
    struct jwriter *w, const struct instance *inst, const struct blockinfo *bi);

#endif
