/*
 * Host flash for tests and tools: one RAM array that behaves like NOR flash (erase sets
 * 0xFF, a write may only clear bits), split into partitions, counting every write and erase
 * so a test can cut power at any one of them.
 */
#ifndef SOTA_RAM_FLASH_H
#define SOTA_RAM_FLASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sota/flash.h"

struct ram_flash_dev {
	uint8_t *mem;
	size_t size;
	uint32_t erase_size;
	uint32_t write_block;
	long ops;    /* writes and erases performed so far */
	long cut_at; /* the operation that loses power (-1: never) */
	bool dead;   /* power is off: every later write or erase fails */
};

struct ram_flash_part {
	struct sota_flash flash; /* first member: the core sees only this */
	struct ram_flash_dev *dev;
	uint32_t offset;
};

void ram_flash_dev_init(struct ram_flash_dev *d, uint8_t *mem, size_t size, uint32_t erase_size,
			uint32_t write_block);
void ram_flash_part_init(struct ram_flash_part *p, struct ram_flash_dev *d, uint32_t offset,
			 uint32_t size);
/* Power back on (the content stays as the cut left it). */
void ram_flash_reboot(struct ram_flash_dev *d);

#endif
