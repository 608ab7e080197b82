/*
 * WAMR glue: runs the model ABI (docs/model-abi.md) on the active module and swaps modules
 * without stopping. A new module is loaded from the spare RAM buffer into a staged instance,
 * can be run there (self-test), and is then committed: the active pointer switches under a
 * mutex and the old instance is unloaded. Two RAM buffers, because wasm_runtime_load needs a
 * writable buffer that lives as long as the module.
 *
 * No Zephyr headers here: the same file builds on Zephyr and against WAMR on a Linux host.
 */
#ifndef MODEL_RUNTIME_H
#define MODEL_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef MODEL_RT_MAX_MODEL
#define MODEL_RT_MAX_MODEL 65536 /* bytes of one RAM copy of a module */
#endif
#ifndef MODEL_RT_MAX_INPUT
#define MODEL_RT_MAX_INPUT 64 /* float32 features */
#endif

struct model_rt_result {
	int32_t cls;
	float score;
	bool has_score;
	uint32_t latency_us;
};

/* wasm_runtime_full_init; pool (may be NULL: system allocator) backs WAMR's own memory. */
int model_rt_init(void *pool, size_t pool_size);
/* The buffer the next module must be copied (or read back from flash) into. */
uint8_t *model_rt_spare_buffer(size_t *cap);
/* Load and instantiate len bytes of the spare buffer as the staged module; 0 or -1 + err. */
int model_rt_stage(size_t len, char *err, size_t err_len);
/* Run one inference on the staged module (the self-test); 0 or -1 + err. */
int model_rt_run_staged(const float *in, size_t n, struct model_rt_result *out, char *err,
			size_t err_len);
/* Make the staged module active; the previous one is unloaded. 0, or -1 when none staged. */
int model_rt_commit(void);
/* Drop the staged module (failed verification or self-test). */
void model_rt_discard(void);
/* One inference on the active module; 0 or -1 + err (no model, bad input, trap). */
int model_rt_infer(const float *in, size_t n, struct model_rt_result *out, char *err,
		   size_t err_len);
/* Features the active model reads (input_size()), 0 without a model. */
size_t model_rt_input_size(void);
bool model_rt_has_model(void);
/* WAMR pool use: high-water mark and size in bytes (sizes CONFIG_APP_WAMR_POOL_SIZE); 0, or
 * -1 when WAMR runs on the system allocator. */
int model_rt_pool_usage(size_t *peak, size_t *total);

#endif
