/*
 * WAMR embedding for the model ABI; see model_runtime.h. The only OS services used are a
 * mutex and a microsecond clock, from Zephyr's kernel or from POSIX on a host.
 */
#include "model_runtime.h"

#include <stdio.h>
#include <string.h>

#include "wasm_export.h"

#ifdef __ZEPHYR__
#include <zephyr/kernel.h>
static K_MUTEX_DEFINE(rt_lock);
static void lock(void) { k_mutex_lock(&rt_lock, K_FOREVER); }
static void unlock(void) { k_mutex_unlock(&rt_lock); }
static uint32_t stamp(void) { return k_cycle_get_32(); }
static uint32_t elapsed_us(uint32_t start) { return k_cyc_to_us_floor32(k_cycle_get_32() - start); }
#else
#include <pthread.h>
#include <time.h>
static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static void lock(void) { pthread_mutex_lock(&rt_lock); }
static void unlock(void) { pthread_mutex_unlock(&rt_lock); }
static uint32_t stamp(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u);
}
static uint32_t elapsed_us(uint32_t start) { return stamp() - start; }
#endif

#define WASM_STACK 8192 /* interpreter operand stack; the model's C stack is in its memory */

struct instance {
	wasm_module_t module;
	wasm_module_inst_t inst;
	wasm_exec_env_t env;
	wasm_function_inst_t input_buffer, input_size, infer, output_score;
	int buf; /* which RAM buffer backs the module */
};

static uint8_t buffers[2][MODEL_RT_MAX_MODEL] __attribute__((aligned(8)));
static struct instance active_i, staged_i;
static struct instance *active, *staged;

static void set_err(char *err, size_t err_len, const char *what, const char *detail)
{
	if (err != NULL && err_len > 0) {
		snprintf(err, err_len, "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
	}
}

int model_rt_init(void *pool, size_t pool_size)
{
	RuntimeInitArgs args;
	memset(&args, 0, sizeof(args));
	if (pool != NULL) {
		args.mem_alloc_type = Alloc_With_Pool;
		args.mem_alloc_option.pool.heap_buf = pool;
		args.mem_alloc_option.pool.heap_size = (uint32_t)pool_size;
	} else {
		args.mem_alloc_type = Alloc_With_System_Allocator;
	}
	return wasm_runtime_full_init(&args) ? 0 : -1;
}

int model_rt_pool_usage(size_t *peak, size_t *total)
{
	mem_alloc_info_t info;
	if (!wasm_runtime_get_mem_alloc_info(&info)) {
		return -1; /* system allocator: no pool to measure */
	}
	*peak = info.highmark_size;
	*total = info.total_size;
	return 0;
}

static int spare_index(void) { return active != NULL ? 1 - active->buf : 0; }

uint8_t *model_rt_spare_buffer(size_t *cap)
{
	*cap = MODEL_RT_MAX_MODEL;
	return buffers[spare_index()];
}

static void unload(struct instance *i)
{
	if (i->env) {
		wasm_runtime_destroy_exec_env(i->env);
	}
	if (i->inst) {
		wasm_runtime_deinstantiate(i->inst);
	}
	if (i->module) {
		wasm_runtime_unload(i->module);
	}
	memset(i, 0, sizeof(*i));
}

int model_rt_stage(size_t len, char *err, size_t err_len)
{
	char msg[128] = "";
	struct instance *s = active == &active_i ? &staged_i : &active_i;
	model_rt_discard();
	if (len > MODEL_RT_MAX_MODEL) {
		set_err(err, err_len, "module larger than the RAM buffer", NULL);
		return -1;
	}
	s->buf = spare_index();
	s->module = wasm_runtime_load(buffers[s->buf], (uint32_t)len, msg, sizeof(msg));
	if (s->module == NULL) {
		set_err(err, err_len, "load failed", msg);
		return -1;
	}
	s->inst = wasm_runtime_instantiate(s->module, WASM_STACK, 0, msg, sizeof(msg));
	if (s->inst == NULL) {
		set_err(err, err_len, "instantiate failed", msg);
		unload(s);
		return -1;
	}
	s->env = wasm_runtime_create_exec_env(s->inst, WASM_STACK);
	s->input_buffer = wasm_runtime_lookup_function(s->inst, "input_buffer");
	s->input_size = wasm_runtime_lookup_function(s->inst, "input_size");
	s->infer = wasm_runtime_lookup_function(s->inst, "infer");
	s->output_score = wasm_runtime_lookup_function(s->inst, "output_score");
	if (s->env == NULL || !s->input_buffer || !s->input_size || !s->infer) {
		set_err(err, err_len, "module lacks the model ABI exports", NULL);
		unload(s);
		return -1;
	}
	staged = s;
	return 0;
}

static int call_i32(struct instance *i, wasm_function_inst_t f, uint32_t *out, char *err,
		    size_t err_len)
{
	uint32_t argv[2] = {0, 0};
	if (!wasm_runtime_call_wasm(i->env, f, 0, argv)) {
		set_err(err, err_len, "trap", wasm_runtime_get_exception(i->inst));
		wasm_runtime_clear_exception(i->inst);
		return -1;
	}
	*out = argv[0];
	return 0;
}

static int run(struct instance *i, const float *in, size_t n, struct model_rt_result *out,
	       char *err, size_t err_len)
{
	uint32_t addr, size, cls, score_bits;
	if (call_i32(i, i->input_size, &size, err, err_len) ||
	    call_i32(i, i->input_buffer, &addr, err, err_len)) {
		return -1;
	}
	if (n != size) {
		char detail[48];
		snprintf(detail, sizeof(detail), "the model reads %u features, got %u",
			 (unsigned)size, (unsigned)n);
		set_err(err, err_len, "bad input", detail);
		return -1;
	}
	if (!wasm_runtime_validate_app_addr(i->inst, addr, (uint64_t)size * 4)) {
		wasm_runtime_clear_exception(i->inst);
		set_err(err, err_len, "input_buffer() points outside the model's memory", NULL);
		return -1;
	}
	float *dst = wasm_runtime_addr_app_to_native(i->inst, addr);
	memcpy(dst, in, n * sizeof(float)); /* Wasm and Cortex-M are both little endian */
	uint32_t t0 = stamp();
	if (call_i32(i, i->infer, &cls, err, err_len)) {
		return -1;
	}
	out->latency_us = elapsed_us(t0);
	out->cls = (int32_t)cls;
	out->has_score = false;
	out->score = 0.0f;
	if (i->output_score && call_i32(i, i->output_score, &score_bits, err, err_len) == 0) {
		memcpy(&out->score, &score_bits, sizeof(float));
		out->has_score = true;
	}
	return 0;
}

int model_rt_run_staged(const float *in, size_t n, struct model_rt_result *out, char *err,
			size_t err_len)
{
	if (staged == NULL) {
		set_err(err, err_len, "no staged model", NULL);
		return -1;
	}
	/* The staged instance is not shared with the inference path: no lock needed. */
	return run(staged, in, n, out, err, err_len);
}

int model_rt_commit(void)
{
	if (staged == NULL) {
		return -1;
	}
	lock();
	struct instance *old = active;
	active = staged;
	staged = NULL;
	unlock();
	if (old != NULL) {
		unload(old);
	}
	return 0;
}

void model_rt_discard(void)
{
	if (staged != NULL) {
		unload(staged);
		staged = NULL;
	}
}

int model_rt_infer(const float *in, size_t n, struct model_rt_result *out, char *err,
		   size_t err_len)
{
	int rc = -1;
	lock();
	if (active == NULL) {
		set_err(err, err_len, "no model", NULL);
	} else {
		rc = run(active, in, n, out, err, err_len);
	}
	unlock();
	return rc;
}

size_t model_rt_input_size(void)
{
	uint32_t size = 0;
	lock();
	if (active == NULL || call_i32(active, active->input_size, &size, NULL, 0) != 0) {
		size = 0;
	}
	unlock();
	return size;
}

bool model_rt_has_model(void) { return active != NULL; }
