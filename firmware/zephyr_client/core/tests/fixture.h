/* A simulated device for the slot and writer tests: model_a, model_b and storage in one flash. */
#ifndef SOTA_FIXTURE_H
#define SOTA_FIXTURE_H

#include "ram_flash.h"
#include "sota/slots.h"

#define DEV_SLOT_SIZE 65536u
#define DEV_STORAGE_SIZE 8192u
#define DEV_SECTOR 4096u
#define DEV_FLASH_SIZE (2 * DEV_SLOT_SIZE + DEV_STORAGE_SIZE)

struct test_device {
	uint8_t mem[DEV_FLASH_SIZE];
	struct ram_flash_dev dev;
	struct ram_flash_part part[3]; /* model_a, model_b, storage */
	struct sota_slots slots;
	uint8_t ram[DEV_SLOT_SIZE];
};

/* Erased flash with the factory module in model_a (as the ELF's .wasm_model section). */
void test_device_init(struct test_device *t, const uint8_t *factory, size_t len);
/* Boot as the firmware does: select and load the active model into t->ram. */
enum sota_err test_device_boot(struct test_device *t, size_t *model_len);

#endif
