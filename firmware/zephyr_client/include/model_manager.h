/*
 * The device side of model updates and inference, between the portable core (verification,
 * slots, streaming writer) and the WAMR glue (model_runtime.h). The Zephyr LwM2M callbacks
 * (Object 9, Object 33100) call only these functions; so does the host check.
 *
 * Object 9 flow: model_update_begin, model_update_write per block, model_update_finish at the
 * end of the download (DELIVERED), model_update_install (load + self-test: INSTALLED),
 * model_update_activate (record flip + module swap, no reboot). Any failure leaves the running
 * model as it was; the sota_err says which Update Result to report.
 *
 * Threads: update calls come from one thread (the LwM2M engine's or a work queue); model_run
 * may be called from any thread.
 */
#ifndef MODEL_MANAGER_H
#define MODEL_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "model_runtime.h"
#include "sota/slots.h"
#include "sota/sota.h"

struct model_platform {
	const struct sota_flash *slot[2]; /* model_a, model_b */
	const struct sota_flash *storage; /* holds the active-slot record */
	const uint8_t *public_key;        /* P-256 (65 bytes, uncompressed point): ES256 only */
	size_t public_key_len;
};

struct model_stats {
	uint32_t inferences;
	struct model_rt_result last;
	char last_error[96];   /* of the last inference ("" after a good one) */
	char update_error[96]; /* why the last update step failed */
};

/* Select the model at boot (slot record, hash check, factory fallback) and start it. */
enum sota_err model_manager_init(const struct model_platform *platform);
/* The slot record in force: active slot and per-slot name, version, SHA-256. */
const struct sota_slot_record *model_manager_record(void);
const struct model_stats *model_manager_stats(void);

enum sota_err model_update_begin(void);
enum sota_err model_update_write(const uint8_t *data, size_t len);
enum sota_err model_update_finish(void);
enum sota_err model_update_install(void);
enum sota_err model_update_activate(void);
void model_update_abort(void);
/* The manifest of the package being installed (valid after model_update_finish). */
const struct sota_manifest *model_update_manifest(void);

/* One inference on the active model; updates the stats. 0 or -1 (stats.last_error says why). */
int model_run(const float *in, size_t n, struct model_rt_result *out);
/* Parse "1.0,0.5,0.2" into floats; the count, or -1 on a malformed list. */
int model_parse_input(const char *text, size_t len, float *out, size_t cap);

#endif
