/* Wasm model checks: the example model, hand-made modules, padding walk (module extent). */
#include <stdlib.h>
#include <string.h>

#include "sota/wasm_check.h"
#include "unit.h"

#define DEF SOTA_DEFAULT_EXPORTS, SOTA_N_DEFAULT_EXPORTS

/* (type () -> i32) (import "env" "f" (func (type 0))) */
static const uint8_t WITH_IMPORT[] = {0x00, 'a', 's', 'm', 1, 0, 0, 0, 0x01, 0x05, 0x01, 0x60,
				      0x00, 0x01, 0x7f, 0x02, 0x09, 0x01, 0x03, 'e', 'n', 'v',
				      0x01, 'f', 0x00, 0x00};

/* (type () -> f32) (func (type 0) f32.const 0) (export "infer" (func 0)): wrong signature. */
static const uint8_t BAD_SIG[] = {0x00, 'a', 's', 'm', 1, 0, 0, 0,
				  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7d,
				  0x03, 0x02, 0x01, 0x00,
				  0x07, 0x09, 0x01, 0x05, 'i', 'n', 'f', 'e', 'r', 0x00, 0x00,
				  0x0a, 0x09, 0x01, 0x07, 0x00, 0x43, 0, 0, 0, 0, 0x0b};

void test_wasm(void)
{
	size_t len;
	uint8_t *mod = unit_read_vector("v1.wasm", &len);

	CHECK_EQ(sota_wasm_check(mod, len, DEF, NULL, 0), SOTA_OK);
	const char *with_score[] = {"infer", "output_score", "memory"};
	CHECK_EQ(sota_wasm_check(mod, len, with_score, 3, NULL, 0), SOTA_OK);
	const char *missing[] = {"infer", "train"};
	CHECK_EQ(sota_wasm_check(mod, len, missing, 2, NULL, 0), SOTA_ERR_WASM);
	const char *right_kinds[] = {"input_size", "memory"};
	CHECK_EQ(sota_wasm_check(mod, len, right_kinds, 2, NULL, 0), SOTA_OK);

	/* Truncations fail cleanly, except a cut exactly before trailing custom sections
	 * (ota.wasm accepts those too: the module is complete without them). */
	int wrongly_accepted = 0;
	for (size_t cut = 0; cut < len; cut++) {
		if (sota_wasm_check(mod, cut, DEF, NULL, 0) == SOTA_OK) {
			wrongly_accepted += mod[cut] != 0x00; /* 0: a custom section starts here */
		}
	}
	CHECK_EQ(wrongly_accepted, 0);

	/* Not a module, and a wrong version. */
	CHECK_EQ(sota_wasm_check((const uint8_t *)"hello world!", 12, DEF, NULL, 0), SOTA_ERR_WASM);
	mod[4] = 2;
	CHECK_EQ(sota_wasm_check(mod, len, DEF, NULL, 0), SOTA_ERR_WASM);
	mod[4] = 1;

	/* Imports: refused unless allowlisted by name or by module.* */
	CHECK_EQ(sota_wasm_check(WITH_IMPORT, sizeof(WITH_IMPORT), NULL, 0, NULL, 0), SOTA_ERR_WASM);
	const char *allow_exact[] = {"env.f"};
	const char *allow_mod[] = {"env.*"};
	const char *allow_other[] = {"env.g", "wasi.f"};
	CHECK_EQ(sota_wasm_check(WITH_IMPORT, sizeof(WITH_IMPORT), NULL, 0, allow_exact, 1), SOTA_OK);
	CHECK_EQ(sota_wasm_check(WITH_IMPORT, sizeof(WITH_IMPORT), NULL, 0, allow_mod, 1), SOTA_OK);
	CHECK_EQ(sota_wasm_check(WITH_IMPORT, sizeof(WITH_IMPORT), NULL, 0, allow_other, 2),
		 SOTA_ERR_WASM);

	/* An ABI export with the wrong signature. */
	const char *infer[] = {"infer"};
	CHECK_EQ(sota_wasm_check(BAD_SIG, sizeof(BAD_SIG), NULL, 0, NULL, 0), SOTA_ERR_WASM);
	CHECK_EQ(sota_wasm_check(BAD_SIG, sizeof(BAD_SIG), infer, 1, NULL, 0), SOTA_ERR_WASM);

	/* Random byte changes anywhere: the checker answers, it never reads out of bounds. */
	uint8_t *work = malloc(len);
	unsigned state = 0x9e3779b9u;
	int answers = 0;
	for (int i = 0; i < 3000; i++) {
		memcpy(work, mod, len);
		for (int c = 0; c < 3; c++) {
			unsigned r = unit_rand(&state);
			work[r % len] = (uint8_t)(r >> 8);
		}
		enum sota_err e = sota_wasm_check(work, len, DEF, NULL, 0);
		answers += e == SOTA_OK || e == SOTA_ERR_WASM;
		(void)sota_wasm_extent(work, len);
	}
	CHECK_EQ(answers, 3000);
	free(work);

	/* Extent: the module inside a 0xFF-padded slot; garbage gives 0. */
	uint8_t *slot = malloc(4096);
	memset(slot, 0xff, 4096);
	memcpy(slot, mod, len);
	CHECK_EQ(sota_wasm_extent(slot, 4096), len);
	CHECK_EQ(sota_wasm_extent(slot, len), len);
	CHECK_EQ(sota_wasm_check(slot, 4096, DEF, NULL, 0), SOTA_ERR_WASM); /* padding is no module */
	memset(slot, 0xff, 4096);
	CHECK_EQ(sota_wasm_extent(slot, 4096), 0);
	memcpy(slot, mod, len);
	slot[len] = 0x42; /* section id 66 after the module */
	CHECK_EQ(sota_wasm_extent(slot, 4096), 0);
	free(slot);
	free(mod);
}
