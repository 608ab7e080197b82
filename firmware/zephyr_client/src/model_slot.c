/*
 * The factory model: the model_a partition's bytes, as one initialised array in the
 * .wasm_model section (docs/sota-format.md, "Model section in the firmware ELF"): the Wasm
 * module from offset 0, 0xFF up to the section end. CMake pads the module and generates the
 * include; wasm_model.ld places the section at the partition's address.
 */
#include <stdint.h>

__attribute__((section(".wasm_model"), used, aligned(4)))
const uint8_t wasm_model_slot[MODEL_SLOT_SIZE] = {
#include "model_slot.inc"
};
