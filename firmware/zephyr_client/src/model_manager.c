/*
 * Model updates and inference on the device; see model_manager.h. Portable C: flash comes
 * through struct sota_flash, WAMR through model_runtime.h.
 */
#include "model_manager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sota/writer.h"

enum update_phase { UPD_IDLE, UPD_WRITING, UPD_DELIVERED, UPD_INSTALLED };

static const struct model_platform *plat;
static struct sota_slots slots;
static struct sota_writer writer;
static struct sota_trust trust;
static struct sota_version installed;
static enum update_phase phase;
static uint8_t target_slot;
static struct model_stats stats;

static void note(char *dst, size_t cap, const char *what, const char *detail)
{
	snprintf(dst, cap, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

static void note_error(const char *what, const char *detail)
{
	note(stats.update_error, sizeof(stats.update_error), what, detail);
}

static enum sota_err start_active(size_t len)
{
	char err[64];
	if (model_rt_stage(len, err, sizeof(err)) != 0) {
		note_error("boot model", err);
		return SOTA_ERR_WASM;
	}
	model_rt_commit();
	return SOTA_OK;
}

enum sota_err model_manager_init(const struct model_platform *platform)
{
	size_t cap, len;
	plat = platform;
	memset(&slots, 0, sizeof(slots));
	slots.slot[0] = platform->slot[0];
	slots.slot[1] = platform->slot[1];
	slots.storage = platform->storage;
	trust.alg = sota_trust_alg_for_key_len(platform->public_key_len);
	trust.key = platform->public_key;
	trust.key_len = platform->public_key_len;
	phase = UPD_IDLE;
	uint8_t *ram = model_rt_spare_buffer(&cap);
	enum sota_err e = sota_slots_boot(&slots, ram, cap, &len);
	if (e != SOTA_OK) {
		note_error("no valid model in either slot", sota_err_name(e));
		return e;
	}
	return start_active(len);
}

const struct sota_slot_record *model_manager_record(void) { return &slots.rec; }

const struct model_stats *model_manager_stats(void) { return &stats; }

enum sota_err model_update_begin(void)
{
	size_t cap;
	struct sota_policy policy = {0};
	const struct sota_slot_info *cur = &slots.rec.slot[slots.rec.active];

	model_update_abort();
	(void)model_rt_spare_buffer(&cap);
	policy.slot_capacity = (uint32_t)cap;
	if (sota_version_parse(cur->version, strlen(cur->version), &installed) == 0) {
		policy.installed = &installed; /* the factory model has no version: no check */
	}
	stats.update_error[0] = '\0';
	target_slot = sota_slots_inactive(&slots);
	sota_writer_init(&writer, slots.slot[target_slot], &trust, &policy);
	phase = UPD_WRITING;
	return SOTA_OK;
}

enum sota_err model_update_write(const uint8_t *data, size_t len)
{
	if (phase != UPD_WRITING) {
		return SOTA_ERR_STATE;
	}
	enum sota_err e = sota_writer_write(&writer, data, len);
	if (e != SOTA_OK) {
		note_error("package refused", sota_err_name(e));
		phase = UPD_IDLE;
	}
	return e;
}

enum sota_err model_update_finish(void)
{
	size_t cap;
	if (phase != UPD_WRITING) {
		return SOTA_ERR_STATE;
	}
	uint8_t *ram = model_rt_spare_buffer(&cap);
	enum sota_err e = sota_writer_finish(&writer, ram, cap);
	if (e != SOTA_OK) {
		note_error("package refused", sota_err_name(e));
		phase = UPD_IDLE;
		return e;
	}
	phase = UPD_DELIVERED;
	return SOTA_OK;
}

enum sota_err model_update_install(void)
{
	char err[64];
	const struct sota_manifest *m = &writer.manifest;
	if (phase != UPD_DELIVERED) {
		return SOTA_ERR_STATE;
	}
	if (model_rt_stage(m->payload_size, err, sizeof(err)) != 0) {
		note_error("new model does not load", err);
		phase = UPD_IDLE;
		return SOTA_ERR_WASM;
	}
	if (m->has_selftest) {
		struct model_rt_result r;
		if (model_rt_run_staged(m->selftest_input, m->selftest_len, &r, err, sizeof(err)) != 0) {
			note_error("self-test failed", err);
			model_rt_discard();
			phase = UPD_IDLE;
			return SOTA_ERR_SELFTEST;
		}
		if ((uint32_t)r.cls != m->selftest_expected) {
			snprintf(err, sizeof(err), "class %d, expected %u", (int)r.cls,
				 (unsigned)m->selftest_expected);
			note_error("self-test failed", err);
			model_rt_discard();
			phase = UPD_IDLE;
			return SOTA_ERR_SELFTEST;
		}
	}
	phase = UPD_INSTALLED;
	return SOTA_OK;
}

enum sota_err model_update_activate(void)
{
	if (phase != UPD_INSTALLED) {
		return SOTA_ERR_STATE;
	}
	/* Record first: if power fails after it, the next boot runs the new model anyway. */
	enum sota_err e = sota_slots_activate(&slots, target_slot, &writer.manifest);
	if (e != SOTA_OK) {
		note_error("slot record write failed", sota_err_name(e));
		model_rt_discard();
		phase = UPD_IDLE;
		return e;
	}
	model_rt_commit();
	phase = UPD_IDLE;
	return SOTA_OK;
}

void model_update_abort(void)
{
	if (phase == UPD_INSTALLED) {
		model_rt_discard();
	}
	phase = UPD_IDLE;
}

const struct sota_manifest *model_update_manifest(void) { return &writer.manifest; }

int model_run(const float *in, size_t n, struct model_rt_result *out)
{
	char err[64];
	if (model_rt_infer(in, n, out, err, sizeof(err)) != 0) {
		note(stats.last_error, sizeof(stats.last_error), "inference failed", err);
		return -1;
	}
	stats.inferences++;
	stats.last = *out;
	stats.last_error[0] = '\0';
	return 0;
}

int model_parse_input(const char *text, size_t len, float *out, size_t cap)
{
	char buf[32];
	size_t n = 0, i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && text[j] != ',') {
			j++;
		}
		size_t k = j - i;
		if (k == 0 || k >= sizeof(buf) || n == cap) {
			return -1;
		}
		memcpy(buf, text + i, k);
		buf[k] = '\0';
		char *end;
		float v = strtof(buf, &end);
		while (*end == ' ') {
			end++;
		}
		if (end == buf || *end != '\0') {
			return -1;
		}
		out[n++] = v;
		i = j + 1;
		if (j == len - 1 && text[j] == ',') {
			return -1; /* trailing comma */
		}
	}
	return (int)n;
}
