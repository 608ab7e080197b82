/*
 * Object 9 (LwM2M Software Management) instance 0, our own implementation on the engine's
 * object API: it carries SOTA packages (docs/sota-format.md) into the model manager.
 *
 * Why not Zephyr's Object 9 (CONFIG_LWM2M_SWMGMT_OBJ_SUPPORT): up to v4.2 it does not compile
 * (write_package_cb is called without the block offset, fixed by Zephyr PR 97162 for 4.3),
 * its Package resource 9/0/2 has no buffer (4.04), its push handler raises the "package URI
 * written" event for every block, so every block after the first is refused (-EINVAL, 5.00)
 * and the state sticks until reboot, and PkgName/PkgVersion only exist once written.
 *
 * Package (9/0/2, push, block1) and Package URI (9/0/3, pull over CoAP block2 with the engine's
 * pull context) both stream into model_update_write. End of download: verification on the
 * system work queue, then DELIVERED with Update Result 3. Install (9/0/4) loads the module and
 * runs its self-test: INSTALLED, result 2. Activate (9/0/10) records the new slot and swaps
 * the running module without a reboot. Refusals set Update Result from the core's reason
 * (sota_err_update_result) and Status Reason 9/0/16 (and 33100/0/11) from the detail.
 */
#include <stdio.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/lwm2m.h>

#include "app.h"
#include "lwm2m_engine.h"
#include "lwm2m_object.h"
#include "lwm2m_pull_context.h"
#include "lwm2m_registry.h"

LOG_MODULE_REGISTER(app_sw_mgmt, LOG_LEVEL_INF);

#define SW_OBJECT_ID LWM2M_OBJECT_SOFTWARE_MANAGEMENT_ID
#define RES_PKG_NAME 0
#define RES_PKG_VERSION 1
#define RES_PACKAGE 2
#define RES_PACKAGE_URI 3
#define RES_INSTALL 4
#define RES_UNINSTALL 6
#define RES_UPDATE_STATE 7
#define RES_UPDATE_RESULT 9
#define RES_ACTIVATE 10
#define RES_DEACTIVATE 11
#define RES_ACTIVATION_STATE 12
#define RES_STATUS_REASON 16
#define RES_COUNT 12
#define RES_INST_COUNT (RES_COUNT - 4) /* the four Executes have no instance */

enum { ST_INITIAL, ST_DOWNLOAD_STARTED, ST_DOWNLOADED, ST_DELIVERED, ST_INSTALLED };
#define SW_RESULT_INITIAL 0
#define SW_RESULT_DOWNLOADING 1
#define SW_RESULT_INSTALLED 2
#define SW_RESULT_DELIVERED 3
#define SW_RESULT_CONNECTION_LOST 52
#define SW_RESULT_INVALID_URI 56

static struct lwm2m_engine_obj sw_obj;
static struct lwm2m_engine_obj_field fields[] = {
	OBJ_FIELD_DATA(RES_PKG_NAME, R, STRING),
	OBJ_FIELD_DATA(RES_PKG_VERSION, R, STRING),
	OBJ_FIELD_DATA(RES_PACKAGE, W, OPAQUE),
	OBJ_FIELD_DATA(RES_PACKAGE_URI, W, STRING),
	OBJ_FIELD_EXECUTE(RES_INSTALL),
	OBJ_FIELD_EXECUTE(RES_UNINSTALL),
	OBJ_FIELD_DATA(RES_UPDATE_STATE, R, U8),
	OBJ_FIELD_DATA(RES_UPDATE_RESULT, R, U8),
	OBJ_FIELD_EXECUTE(RES_ACTIVATE),
	OBJ_FIELD_EXECUTE(RES_DEACTIVATE),
	OBJ_FIELD_DATA(RES_ACTIVATION_STATE, R, BOOL),
	OBJ_FIELD_DATA(RES_STATUS_REASON, R, STRING),
};
static struct lwm2m_engine_obj_inst inst;
static struct lwm2m_engine_res res[RES_COUNT];
static struct lwm2m_engine_res_inst res_inst[RES_INST_COUNT];

static char pkg_name[SOTA_NAME_MAX + 1];
static char pkg_version[SOTA_VERSION_MAX + 1];
static uint8_t pkg_block[CONFIG_LWM2M_COAP_BLOCK_SIZE];
static char pkg_uri[CONFIG_LWM2M_SWMGMT_PACKAGE_URI_LEN];
static uint8_t update_state;
static uint8_t update_result;
static bool activation_state;
static char status_reason[96];

static bool pulling;               /* a Package URI download is running */
static enum sota_err write_err;    /* why a write refused the package (SOTA_OK: none) */
static void verify_work_fn(struct k_work *work);
static K_WORK_DEFINE(verify_work, verify_work_fn);

#define SW_PATH(res_id) (&LWM2M_OBJ(SW_OBJECT_ID, 0, res_id))

/* State and result through lwm2m_set_* so that observers of 9/0/7 and 9/0/9 hear of it. */
static void set_state(uint8_t state, uint8_t result)
{
	lwm2m_registry_lock();
	lwm2m_set_u8(SW_PATH(RES_UPDATE_STATE), state);
	lwm2m_set_u8(SW_PATH(RES_UPDATE_RESULT), result);
	lwm2m_registry_unlock();
}

static void set_reason(const char *text)
{
	lwm2m_set_string(SW_PATH(RES_STATUS_REASON), text);
	lwm2m_set_string(&LWM2M_OBJ(33100, 0, 11), text);
}

static void report_failure(enum sota_err e)
{
	const struct model_stats *st = model_manager_stats();
	LOG_WRN("model package refused: %s (%s)", sota_err_name(e), st->update_error);
	model_update_abort();
	set_reason(st->update_error);
	set_state(ST_INITIAL, (uint8_t)sota_err_update_result(e));
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
	lwm2m_registry_lock();
	lwm2m_set_string(SW_PATH(RES_PKG_NAME), m->name);
	lwm2m_set_string(SW_PATH(RES_PKG_VERSION), m->version);
	lwm2m_set_bool(SW_PATH(RES_ACTIVATION_STATE), false);
	lwm2m_registry_unlock();
	set_state(ST_DELIVERED, SW_RESULT_DELIVERED);
	LOG_INF("package %s %s delivered", m->name, m->version);
}

static int begin_download(void)
{
	if (pulling || update_state == ST_DOWNLOADED) {
		return -EBUSY; /* a download is running or being verified */
	}
	model_update_begin();
	write_err = SOTA_OK;
	set_reason("");
	set_state(ST_DOWNLOAD_STARTED, SW_RESULT_DOWNLOADING);
	return 0;
}

static int errno_for(enum sota_err e)
{
	switch (e) {
	case SOTA_ERR_OVERSIZE: return -EFBIG;  /* 4.13 Request Entity Too Large */
	default: return -EINVAL;                /* 4.00 */
	}
}

/* One chunk of the package, from a push block or a pull block; 0 or a negative errno. */
static int package_chunk(uint8_t *data, uint16_t data_len, size_t offset)
{
	if (offset == 0 && !pulling) {
		int rc = begin_download();
		if (rc != 0) {
			return rc;
		}
	} else if (update_state != ST_DOWNLOAD_STARTED) {
		return -EPERM; /* a block of a download that was not started (or already failed) */
	}
	enum sota_err e = model_update_write(data, data_len);
	if (e != SOTA_OK) {
		write_err = e;
		report_failure(e);
		return errno_for(e);
	}
	return 0;
}

static int package_write_cb(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			    uint8_t *data, uint16_t data_len, bool last_block, size_t total_size,
			    size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	ARG_UNUSED(total_size);
	if (pulling) {
		return -EBUSY;
	}
	int rc = package_chunk(data, data_len, offset);
	if (rc == 0 && last_block) {
		set_state(ST_DOWNLOADED, SW_RESULT_DOWNLOADING);
		k_work_submit(&verify_work);
	}
	return rc;
}

/* Pull context: the blocks of the Package URI download. */
static int pull_write_cb(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			 uint8_t *data, uint16_t data_len, bool last_block, size_t total_size,
			 size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	ARG_UNUSED(last_block); ARG_UNUSED(total_size);
	return package_chunk(data, data_len, offset);
}

/* Pull context: the download ended (0) or failed (negative errno). */
static void pull_result_cb(uint16_t obj_inst_id, int error_code)
{
	ARG_UNUSED(obj_inst_id);
	pulling = false;
	if (write_err != SOTA_OK) {
		return; /* the package itself was refused: already reported */
	}
	if (error_code == 0) {
		set_state(ST_DOWNLOADED, SW_RESULT_DOWNLOADING);
		k_work_submit(&verify_work);
		return;
	}
	LOG_WRN("package download failed: %d", error_code);
	model_update_abort();
	set_reason("download failed");
	set_state(ST_INITIAL, error_code == -EINVAL || error_code == -ENOTSUP ?
			      SW_RESULT_INVALID_URI : SW_RESULT_CONNECTION_LOST);
}

static int package_uri_write_cb(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
				uint8_t *data, uint16_t data_len, bool last_block,
				size_t total_size, size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	ARG_UNUSED(last_block); ARG_UNUSED(total_size); ARG_UNUSED(offset);
	if (data_len == 0 || strnlen((const char *)data, data_len) == 0) {
		/* An empty URI cancels what was delivered but not yet installed. */
		if (update_state == ST_DELIVERED) {
			model_update_abort();
			set_state(ST_INITIAL, SW_RESULT_INITIAL);
		}
		return 0;
	}
	int rc = begin_download();
	if (rc != 0) {
		return rc;
	}
	struct requesting_object req = {
		.obj_inst_id = 0,
		.is_firmware_uri = true, /* coap:// without a port means 5683 */
		.result_cb = pull_result_cb,
		.write_cb = pull_write_cb,
		.verify_cb = NULL,
	};
	pulling = true;
	rc = lwm2m_pull_context_start_transfer(pkg_uri, req, K_NO_WAIT);
	if (rc != 0) {
		pulling = false;
		set_reason("Package URI not accepted");
		set_state(ST_INITIAL, SW_RESULT_INVALID_URI);
		return 0; /* the write itself succeeded; Update Result says why nothing happens */
	}
	LOG_INF("pulling %s", pkg_uri);
	return 0;
}

static int install_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	if (update_state != ST_DELIVERED) {
		return -EPERM; /* 4.05: nothing delivered to install */
	}
	enum sota_err e = model_update_install();
	if (e != SOTA_OK) {
		/* The package stays delivered; result 58 (or the core's reason) says why. */
		set_reason(model_manager_stats()->update_error);
		set_state(ST_DELIVERED, (uint8_t)sota_err_update_result(e));
		return 0;
	}
	set_state(ST_INSTALLED, SW_RESULT_INSTALLED);
	return 0;
}

static int activate_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	if (update_state != ST_INSTALLED) {
		return -EPERM;
	}
	if (activation_state) {
		return 0; /* already the running model */
	}
	enum sota_err e = model_update_activate();
	if (e != SOTA_OK) {
		set_reason(model_manager_stats()->update_error);
		set_state(ST_INITIAL, (uint8_t)sota_err_update_result(e));
		return 0;
	}
	lwm2m_set_bool(SW_PATH(RES_ACTIVATION_STATE), true);
	size_t peak = 0, total = 0;
	(void)model_rt_pool_usage(&peak, &total);
	LOG_INF("model slot %d active, no reboot (WAMR pool high-water mark %zu of %zu bytes)",
		model_manager_record()->active, peak, total);
	model_object_refresh();
	return 0;
}

/* A model slot cannot be switched off: the device always runs one model. */
static int deactivate_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	return -EPERM;
}

/* Uninstall drops a package that was delivered or installed but not activated. */
static int uninstall_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	if ((update_state != ST_DELIVERED && update_state != ST_INSTALLED) || activation_state) {
		return -EPERM;
	}
	model_update_abort();
	set_state(ST_INITIAL, SW_RESULT_INITIAL);
	return 0;
}

static struct lwm2m_engine_obj_inst *sw_create(uint16_t obj_inst_id)
{
	int i = 0, j = 0;
	init_res_instance(res_inst, ARRAY_SIZE(res_inst));
	INIT_OBJ_RES_DATA_LEN(RES_PKG_NAME, res, i, res_inst, j, pkg_name, sizeof(pkg_name), 0);
	INIT_OBJ_RES_DATA_LEN(RES_PKG_VERSION, res, i, res_inst, j, pkg_version,
			      sizeof(pkg_version), 0);
	INIT_OBJ_RES_LEN(RES_PACKAGE, res, i, res_inst, j, 1U, false, true, pkg_block,
			 sizeof(pkg_block), 0, NULL, NULL, NULL, package_write_cb, NULL);
	INIT_OBJ_RES_LEN(RES_PACKAGE_URI, res, i, res_inst, j, 1U, false, true, pkg_uri,
			 sizeof(pkg_uri), 0, NULL, NULL, NULL, package_uri_write_cb, NULL);
	INIT_OBJ_RES_EXECUTE(RES_INSTALL, res, i, install_cb);
	INIT_OBJ_RES_EXECUTE(RES_UNINSTALL, res, i, uninstall_cb);
	INIT_OBJ_RES_DATA(RES_UPDATE_STATE, res, i, res_inst, j, &update_state,
			  sizeof(update_state));
	INIT_OBJ_RES_DATA(RES_UPDATE_RESULT, res, i, res_inst, j, &update_result,
			  sizeof(update_result));
	INIT_OBJ_RES_EXECUTE(RES_ACTIVATE, res, i, activate_cb);
	INIT_OBJ_RES_EXECUTE(RES_DEACTIVATE, res, i, deactivate_cb);
	INIT_OBJ_RES_DATA(RES_ACTIVATION_STATE, res, i, res_inst, j, &activation_state,
			  sizeof(activation_state));
	INIT_OBJ_RES_DATA_LEN(RES_STATUS_REASON, res, i, res_inst, j, status_reason,
			      sizeof(status_reason), 0);
	inst.resources = res;
	inst.resource_count = i;
	ARG_UNUSED(obj_inst_id);
	return &inst;
}

int init_sw_mgmt(void)
{
	struct lwm2m_engine_obj_inst *obj_inst = NULL;
	sw_obj.obj_id = SW_OBJECT_ID;
	sw_obj.version_major = 1;
	sw_obj.version_minor = 0;
	sw_obj.is_core = false;
	sw_obj.fields = fields;
	sw_obj.field_count = ARRAY_SIZE(fields);
	sw_obj.max_instance_count = 1U;
	sw_obj.create_cb = sw_create;
	lwm2m_register_obj(&sw_obj);
	int rc = lwm2m_create_obj_inst(SW_OBJECT_ID, 0, &obj_inst);
	if (rc < 0) {
		LOG_ERR("cannot create 9/0: %d", rc);
		return rc;
	}
	/* The running model is the installed, active package. */
	const struct sota_slot_record *rec = model_manager_record();
	lwm2m_set_string(SW_PATH(RES_PKG_NAME), rec->slot[rec->active].name);
	lwm2m_set_string(SW_PATH(RES_PKG_VERSION), rec->slot[rec->active].version);
	return 0;
}
