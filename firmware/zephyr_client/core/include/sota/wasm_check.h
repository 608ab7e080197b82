/*
 * Structural checks of a model Wasm module before it is offered to the runtime, the same
 * checks as ota.wasm.inspect_module: header, section ids, order and sizes; type, import,
 * function, memory, export and code sections parsed; imports only from an allowlist; the
 * required exports present with the model ABI's kinds and signatures (docs/model-abi.md);
 * at most SOTA_WASM_MAX_PAGES pages of initial memory.
 */
#ifndef SOTA_WASM_CHECK_H
#define SOTA_WASM_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "sota/sota.h"

#ifndef SOTA_WASM_MAX_PAGES
#define SOTA_WASM_MAX_PAGES 1u
#endif

/* The exports every model needs (docs/model-abi.md). */
#define SOTA_N_DEFAULT_EXPORTS 4
extern const char *const SOTA_DEFAULT_EXPORTS[SOTA_N_DEFAULT_EXPORTS];

/*
 * SOTA_OK or SOTA_ERR_WASM. required: export names that must all be present (at most 32);
 * allowlist: "module.field" or "module.*" import names that are accepted (NULL/0: none).
 */
enum sota_err sota_wasm_check(const uint8_t *mod, size_t len, const char *const *required,
			      size_t n_required, const char *const *allowlist, size_t n_allowlist);

/* Same, with the required exports taken from a manifest and the allowlist from a policy. */
enum sota_err sota_wasm_check_manifest(const uint8_t *mod, size_t len,
				       const struct sota_manifest *m,
				       const struct sota_policy *policy);

/*
 * Length of the module at the start of a model section padded with 0xFF (the section walk of
 * docs/sota-format.md, "Model section in the firmware ELF"); 0 when no valid module is there.
 */
size_t sota_wasm_extent(const uint8_t *slot, size_t len);

#endif
