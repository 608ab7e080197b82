/*
 * Object 33100, TinyML Model (objects/33100.xml), on the LwM2M engine's object API: active
 * slot and per-slot name/version/SHA-256 from the slot record, inference statistics, Execute
 * Run (argument: comma-separated features) and the periodic inference (resource 9).
 * Inference runs on the system work queue, never in the engine thread.
 */
#include <stdio.h>
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/lwm2m.h>

#include "app.h"
#include "lwm2m_object.h"
#include "lwm2m_engine.h"
#include "lwm2m_registry.h"

LOG_MODULE_REGISTER(app_model_obj, LOG_LEVEL_INF);

#define MODEL_OBJECT_ID 33100
#define RES_ACTIVE_SLOT 0
#define RES_SLOT_NAME 1
#define RES_SLOT_VERSION 2
#define RES_SLOT_SHA256 3
#define RES_INFERENCES 4
#define RES_LATENCY 5
#define RES_OUTPUT 6
#define RES_SCORE 7
#define RES_RUN 8
#define RES_PERIOD 9
#define RES_RUNTIME 10
#define RES_LAST_ERROR 11
#define RES_COUNT 12
#define RES_INST_COUNT (RES_COUNT - 1 + 3) /* Run has none; 1, 2, 3 have two */

static const float SAMPLE_INPUT[4] = {1.0f, 0.5f, 0.2f, 0.1f};

static struct lwm2m_engine_obj model_obj;
static struct lwm2m_engine_obj_field fields[] = {
	OBJ_FIELD_DATA(RES_ACTIVE_SLOT, R, S32),   OBJ_FIELD_DATA(RES_SLOT_NAME, R, STRING),
	OBJ_FIELD_DATA(RES_SLOT_VERSION, R, STRING), OBJ_FIELD_DATA(RES_SLOT_SHA256, R, STRING),
	OBJ_FIELD_DATA(RES_INFERENCES, R, S32),    OBJ_FIELD_DATA(RES_LATENCY, R, S32),
	OBJ_FIELD_DATA(RES_OUTPUT, R, S32),        OBJ_FIELD_DATA(RES_SCORE, R, FLOAT),
	OBJ_FIELD_EXECUTE(RES_RUN),                OBJ_FIELD_DATA(RES_PERIOD, RW, S32),
	OBJ_FIELD_DATA(RES_RUNTIME, R, STRING),    OBJ_FIELD_DATA(RES_LAST_ERROR, R, STRING),
};
static struct lwm2m_engine_obj_inst inst;
static struct lwm2m_engine_res res[RES_COUNT];
static struct lwm2m_engine_res_inst res_inst[RES_INST_COUNT];

static int32_t active_slot, inferences, latency_us, last_output;
static double last_score;
static int32_t period_s = CONFIG_APP_INFERENCE_PERIOD;
static char slot_name[2][SOTA_RECORD_NAME_MAX + 1];
static char slot_version[2][SOTA_RECORD_VERSION_MAX + 1];
static char slot_sha[2][2 * SOTA_SHA256_LEN + 1];
static char runtime[] = "WAMR interpreter";
static char last_error[96];

static float run_input[MODEL_RT_MAX_INPUT];
static size_t run_n;
static void run_work_fn(struct k_work *work);
static void period_work_fn(struct k_work *work);
static K_WORK_DEFINE(run_work, run_work_fn);
static K_WORK_DELAYABLE_DEFINE(period_work, period_work_fn);

#define PATH(res_id) (&LWM2M_OBJ(MODEL_OBJECT_ID, 0, res_id))

static void publish_result(int rc)
{
	const struct model_stats *st = model_manager_stats();
	lwm2m_registry_lock();
	lwm2m_set_s32(PATH(RES_INFERENCES), (int32_t)st->inferences);
	if (rc == 0) {
		lwm2m_set_s32(PATH(RES_LATENCY), (int32_t)st->last.latency_us);
		lwm2m_set_s32(PATH(RES_OUTPUT), st->last.cls);
		lwm2m_set_f64(PATH(RES_SCORE), (double)st->last.score);
	}
	lwm2m_set_string(PATH(RES_LAST_ERROR), st->last_error);
	lwm2m_registry_unlock();
}

static void run_work_fn(struct k_work *work)
{
	struct model_rt_result r;
	ARG_UNUSED(work);
	publish_result(model_run(run_input, run_n, &r));
}

static void period_work_fn(struct k_work *work)
{
	struct model_rt_result r;
	ARG_UNUSED(work);
	publish_result(model_run(SAMPLE_INPUT, ARRAY_SIZE(SAMPLE_INPUT), &r));
	if (period_s > 0) {
		k_work_reschedule(&period_work, K_SECONDS(period_s));
	}
}

/* Execute Run: no argument runs the sample input; "0='1.0,0.5,...'" (or the bare list)
 * runs the given features. A malformed list is refused with 4.00. */
static int run_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	const char *text = (const char *)args;
	size_t len = args_len;
	ARG_UNUSED(obj_inst_id);
	if (args == NULL || args_len == 0) {
		memcpy(run_input, SAMPLE_INPUT, sizeof(SAMPLE_INPUT));
		run_n = ARRAY_SIZE(SAMPLE_INPUT);
	} else {
		if (len >= 2 && text[0] == '0' && text[1] == '=') {
			text += 2;
			len -= 2;
		}
		if (len >= 2 && text[0] == '\'' && text[len - 1] == '\'') {
			text++;
			len -= 2;
		}
		int n = model_parse_input(text, len, run_input, ARRAY_SIZE(run_input));
		if (n <= 0) {
			lwm2m_set_string(PATH(RES_LAST_ERROR), "Run: argument 0 must be numbers "
							       "separated by commas");
			return -EINVAL;
		}
		run_n = (size_t)n;
	}
	k_work_submit(&run_work);
	return 0;
}

static int period_written(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			  uint8_t *data, uint16_t data_len, bool last_block, size_t total_size,
			  size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id); ARG_UNUSED(data);
	ARG_UNUSED(data_len); ARG_UNUSED(last_block); ARG_UNUSED(total_size); ARG_UNUSED(offset);
	if (period_s < 0) {
		period_s = 0;
	}
	if (period_s > 0) {
		k_work_reschedule(&period_work, K_SECONDS(period_s));
	} else {
		k_work_cancel_delayable(&period_work);
	}
	return 0;
}

void model_object_refresh(void)
{
	const struct sota_slot_record *rec = model_manager_record();
	lwm2m_registry_lock();
	lwm2m_set_s32(PATH(RES_ACTIVE_SLOT), rec->active);
	for (int s = 0; s < 2; s++) {
		const struct sota_slot_info *info = &rec->slot[s];
		char hex[2 * SOTA_SHA256_LEN + 1];
		for (int i = 0; i < SOTA_SHA256_LEN; i++) {
			snprintf(&hex[2 * i], 3, "%02x", info->sha256[i]);
		}
		lwm2m_set_string(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_NAME, s),
				 info->valid ? info->name : "");
		lwm2m_set_string(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_VERSION, s),
				 info->valid ? info->version : "");
		lwm2m_set_string(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_SHA256, s),
				 info->valid ? hex : "");
	}
	lwm2m_registry_unlock();
}

static struct lwm2m_engine_obj_inst *model_create(uint16_t obj_inst_id)
{
	int i = 0, j = 0;
	init_res_instance(res_inst, ARRAY_SIZE(res_inst));
	INIT_OBJ_RES_DATA(RES_ACTIVE_SLOT, res, i, res_inst, j, &active_slot, sizeof(active_slot));
	INIT_OBJ_RES_MULTI_OPTDATA(RES_SLOT_NAME, res, i, res_inst, j, 2, true);
	INIT_OBJ_RES_MULTI_OPTDATA(RES_SLOT_VERSION, res, i, res_inst, j, 2, true);
	INIT_OBJ_RES_MULTI_OPTDATA(RES_SLOT_SHA256, res, i, res_inst, j, 2, true);
	INIT_OBJ_RES_DATA(RES_INFERENCES, res, i, res_inst, j, &inferences, sizeof(inferences));
	INIT_OBJ_RES_DATA(RES_LATENCY, res, i, res_inst, j, &latency_us, sizeof(latency_us));
	INIT_OBJ_RES_DATA(RES_OUTPUT, res, i, res_inst, j, &last_output, sizeof(last_output));
	INIT_OBJ_RES_DATA(RES_SCORE, res, i, res_inst, j, &last_score, sizeof(last_score));
	INIT_OBJ_RES_EXECUTE(RES_RUN, res, i, run_cb);
	INIT_OBJ_RES_DATA(RES_PERIOD, res, i, res_inst, j, &period_s, sizeof(period_s));
	/* A string's data length counts its NUL (the engine answers data_len - 1 characters).
	 * Last Error starts empty: with the buffer size as its length it read as 95 NUL bytes. */
	INIT_OBJ_RES_DATA(RES_RUNTIME, res, i, res_inst, j, runtime, sizeof(runtime));
	INIT_OBJ_RES_DATA_LEN(RES_LAST_ERROR, res, i, res_inst, j, last_error, sizeof(last_error),
			      0);
	inst.resources = res;
	inst.resource_count = i;
	ARG_UNUSED(obj_inst_id);
	return &inst;
}

int init_model_object(void)
{
	struct lwm2m_engine_obj_inst *obj_inst = NULL;
	model_obj.obj_id = MODEL_OBJECT_ID;
	model_obj.version_major = 1;
	model_obj.version_minor = 0;
	model_obj.is_core = false;
	model_obj.fields = fields;
	model_obj.field_count = ARRAY_SIZE(fields);
	model_obj.max_instance_count = 1U;
	model_obj.create_cb = model_create;
	lwm2m_register_obj(&model_obj);
	int rc = lwm2m_create_obj_inst(MODEL_OBJECT_ID, 0, &obj_inst);
	if (rc < 0) {
		LOG_ERR("cannot create 33100/0: %d", rc);
		return rc;
	}
	/* One buffer per slot for the multi-instance string resources. */
	for (uint16_t s = 0; s < 2; s++) {
		lwm2m_set_res_buf(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_NAME, s), slot_name[s],
				  sizeof(slot_name[s]), 0, 0);
		lwm2m_set_res_buf(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_VERSION, s),
				  slot_version[s], sizeof(slot_version[s]), 0, 0);
		lwm2m_set_res_buf(&LWM2M_OBJ(MODEL_OBJECT_ID, 0, RES_SLOT_SHA256, s), slot_sha[s],
				  sizeof(slot_sha[s]), 0, 0);
	}
	lwm2m_register_post_write_callback(PATH(RES_PERIOD), period_written);
	model_object_refresh();
	if (period_s > 0) {
		k_work_schedule(&period_work, K_SECONDS(period_s));
	}
	return 0;
}
