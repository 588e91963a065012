/*
 * libFuzzer target: the create and attach request parsers and the
 * validator behind them (bdm_json_parse_create + bdm_instance_prepare +
 * nic_json_prepare, bdm_json_parse_attach + bdm_prepare_attach,
 * nic_json_parse_attach), on arbitrary bytes. Any
 * crash, leak or undefined behaviour is a finding; refusals are fine.
 * Built by tests/fuzz/run.sh (clang, -fsanitize=fuzzer) and, for the
 * regression files, by make check with tests/fuzz/replay.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "bdm.h"
#include "bdm_json.h"
#include "err.h"
#include "nic_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct bdm_limits lim = BDM_LIMITS_DEFAULT;
	struct instance *inst = NULL;
	struct err e = {0};
	struct bdm b = {0};

	if (bdm_json_parse_create((const char *)data, size, &inst, &e) == 0) {
		struct err e2 = {0};

		if (bdm_instance_prepare(inst, &lim, &e2) == 0 &&
		    nic_json_prepare(
			&inst->guest, inst->name, inst->uuid, &e2) == 0) {
			/* A volume attach against what was just prepared. */
			struct err e3 = {0};

			if (bdm_json_parse_attach(
				(const char *)data, size, &b, &e3) == 0) {
				(void)bdm_prepare_attach(inst, &b, &lim, &e3);
				bdm_clear(&b);
			}
		}
		instance_free(inst);
	}
	e = (struct err){0};
	if (bdm_json_parse_attach((const char *)data, size, &b, &e) == 0)
		bdm_clear(&b);
	{
		struct nic n = {0};

		e = (struct err){0};
		if (nic_json_parse_attach((const char *)data, size, &n, &e) ==
		    0)
			nic_clear(&n);
	}
	return 0;
}
