/*
 * The flash interface the core writes through: one object per partition (model_a, model_b,
 * storage), offsets relative to the partition. Zephyr implements it with flash_area_*; the
 * host tests with RAM that counts operations and can cut power at any one of them.
 */
#ifndef SOTA_FLASH_H
#define SOTA_FLASH_H

#include <stddef.h>
#include <stdint.h>

struct sota_flash {
	/* Each returns 0 on success, a negative value on failure. */
	int (*read)(const struct sota_flash *f, uint32_t off, void *buf, size_t len);
	int (*write)(const struct sota_flash *f, uint32_t off, const void *buf, size_t len);
	int (*erase)(const struct sota_flash *f, uint32_t off, size_t len);
	uint32_t size;        /* partition size in bytes */
	uint32_t erase_size;  /* erase sector size; a power of two */
	uint32_t write_block; /* write granularity; a power of two, at most SOTA_WRITE_BLOCK_MAX */
	void *ctx;            /* for the implementation */
};

#define SOTA_WRITE_BLOCK_MAX 32u

#endif
