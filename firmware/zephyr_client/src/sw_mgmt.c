/*
 * Object 9 instance 0 carries SOTA packages (docs/sota-format.md): Package (push, block1) or
 * Package URI (pull, block2) stream into model_update_write; the end of the download runs the
 * verification (DELIVERED, result 3); Install loads the module and runs its self-test
 * (INSTALLED, result 2); Activate records the new slot and swaps the running module.
 * Refusals set Update Result from the core's reason (sota_err_update_result); the detail
 * goes to 33100/0/11 Last Error.
 */
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/lwm2m.h>

#include "app.h"

LOG_MODULE_REGISTER(app_sw_mgmt, LOG_LEVEL_INF);

#define SWMGMT_INST 0
#define RES_PKG_NAME 0
#define RES_PKG_VERSION 1
#define RES_UPDATE_STATE 7
#define RES_UPDATE_RESULT 9
#define STATE_INITIAL 0
#define STATE_DELIVERED 3
#define RESULT_DELIVERED 3

static enum sota_err pending_err;
static void verify_work_fn(struct k_work *work);
static void result_work_fn(struct k_work *work);
static K_WORK_DEFINE(verify_work, verify_work_fn);
static K_WORK_DEFINE(result_work, result_work_fn);

#define SW_PATH(res_id) (&LWM2M_OBJ(LWM2M_OBJECT_SOFTWARE_MANAGEMENT_ID, SWMGMT_INST, res_id))

static void report_failure(enum sota_err e)
{
	const struct model_stats *st = model_manager_stats();
	LOG_WRN("model package refused: %s (%s)", sota_err_name(e), st->update_error);
	lwm2m_set_string(&LWM2M_OBJ(33100, 0, 11), st->update_error);
	lwm2m_set_u8(SW_PATH(RES_UPDATE_STATE), STATE_INITIAL);
	lwm2m_set_u8(SW_PATH(RES_UPDATE_RESULT), (uint8_t)sota_err_update_result(e));
}

/* Runs after the engine finished its own state change for the failed write. */
static void result_work_fn(struct k_work *work)
{
	ARG_UNUSED(work);
	report_failure(pending_err);
}

/* End of download: verify outside the engine thread, then DELIVERED or the failure. */
static void verify_work_fn(struct k_work *work)
{
	ARG_UNUSED(work);
	enum sota_err e = model_update_finish();
	if (e != SOTA_OK) {
		report_failure(e);
		return;
	}
	const struct sota_manifest *m = model_update_manifest();
	lwm2m_set_string(SW_PATH(RES_PKG_NAME), m->name);
	lwm2m_set_string(SW_PATH(RES_PKG_VERSION), m->version);
	lwm2m_set_u8(SW_PATH(RES_UPDATE_STATE), STATE_DELIVERED);
	lwm2m_set_u8(SW_PATH(RES_UPDATE_RESULT), RESULT_DELIVERED);
}

static int errno_for(enum sota_err e)
{
	switch (e) {
	case SOTA_ERR_OVERSIZE: return -ENOSPC;    /* engine: 50 */
	case SOTA_ERR_SIGNATURE:
	case SOTA_ERR_HASH: return -EFAULT;        /* engine: 53 */
	default: return -EINVAL;                   /* corrected to the right code by result_work */
	}
}

static int package_write_cb(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			    uint8_t *data, uint16_t data_len, bool last_block, size_t total_size,
			    size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	if (data == NULL) { /* the engine reports a failed download this way */
		model_update_abort();
		return 0;
	}
	if (offset == 0) {
		model_update_begin();
	}
	enum sota_err e = model_update_write(data, data_len);
	if (e != SOTA_OK) {
		pending_err = e;
		k_work_submit(&result_work);
		return errno_for(e);
	}
	/* A single (non-block) write arrives whole: last_block false, total_size 0. */
	if (last_block || total_size == 0) {
		k_work_submit(&verify_work);
	}
	return 0;
}

static int install_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(args); ARG_UNUSED(args_len);
	enum sota_err e = model_update_install();
	if (e != SOTA_OK) {
		lwm2m_set_string(&LWM2M_OBJ(33100, 0, 11), model_manager_stats()->update_error);
	}
	/* INSTALLED / result 2, or stays DELIVERED with result 58 */
	return lwm2m_swmgmt_install_completed(obj_inst_id, e == SOTA_OK ? 0 : -EINVAL);
}

static int activate_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	enum sota_err e = model_update_activate();
	if (e != SOTA_OK) {
		report_failure(e);
		return -EINVAL;
	}
	LOG_INF("model slot %d active, no reboot", model_manager_record()->active);
	model_object_refresh();
	return 0; /* the engine sets Activation State true */
}

static int delete_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	model_update_abort();
	return 0;
}

int init_sw_mgmt(void)
{
	int rc = lwm2m_create_object_inst(&LWM2M_OBJ(LWM2M_OBJECT_SOFTWARE_MANAGEMENT_ID,
						     SWMGMT_INST));
	if (rc < 0 && rc != -EEXIST) {
		return rc;
	}
	lwm2m_swmgmt_set_write_package_cb(SWMGMT_INST, package_write_cb);
	lwm2m_swmgmt_set_install_package_cb(SWMGMT_INST, install_cb);
	lwm2m_swmgmt_set_activate_cb(SWMGMT_INST, activate_cb);
	lwm2m_swmgmt_set_delete_package_cb(SWMGMT_INST, delete_cb);
	const struct sota_slot_record *rec = model_manager_record();
	lwm2m_set_string(SW_PATH(RES_PKG_NAME), rec->slot[rec->active].name);
	lwm2m_set_string(SW_PATH(RES_PKG_VERSION), rec->slot[rec->active].version);
	return 0;
}
