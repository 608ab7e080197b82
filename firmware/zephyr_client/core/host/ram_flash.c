/*
 * RAM-backed NOR flash with power-cut injection. The operation that loses power is left
 * half done (the first half of a write lands; an erase leaves its second half untouched and
 * scrambles the first), which is what a real cut mid-operation can leave behind.
 */
#include "ram_flash.h"

#include <string.h>

void ram_flash_dev_init(struct ram_flash_dev *d, uint8_t *mem, size_t size, uint32_t erase_size,
			uint32_t write_block)
{
	memset(d, 0, sizeof(*d));
	d->mem = mem;
	d->size = size;
	d->erase_size = erase_size;
	d->write_block = write_block;
	d->cut_at = -1;
	memset(mem, 0xff, size);
}

void ram_flash_reboot(struct ram_flash_dev *d)
{
	d->dead = false;
	d->cut_at = -1;
}

static struct ram_flash_part *part_of(const struct sota_flash *f)
{
	return (struct ram_flash_part *)f->ctx;
}

static bool in_range(const struct sota_flash *f, uint32_t off, size_t len)
{
	return off <= f->size && len <= f->size - off;
}

/* Count the operation; true when it may run in full, false when power fails now or earlier. */
static bool power(struct ram_flash_dev *d, bool *partial)
{
	*partial = false;
	if (d->dead) {
		return false;
	}
	if (d->ops++ == d->cut_at) {
		d->dead = true;
		*partial = true;
		return false;
	}
	return true;
}

static int rf_read(const struct sota_flash *f, uint32_t off, void *buf, size_t len)
{
	struct ram_flash_part *p = part_of(f);
	if (!in_range(f, off, len)) {
		return -1;
	}
	memcpy(buf, p->dev->mem + p->offset + off, len);
	return 0;
}

static int rf_write(const struct sota_flash *f, uint32_t off, const void *buf, size_t len)
{
	struct ram_flash_part *p = part_of(f);
	bool partial;
	if (!in_range(f, off, len) || off % f->write_block || len % f->write_block) {
		return -1;
	}
	uint8_t *dst = p->dev->mem + p->offset + off;
	for (size_t i = 0; i < len; i++) {
		if ((dst[i] & ((const uint8_t *)buf)[i]) != ((const uint8_t *)buf)[i]) {
			return -1; /* NOR flash cannot set bits without an erase: a core bug */
		}
	}
	if (!power(p->dev, &partial)) {
		if (partial) {
			size_t half = len / 2;
			for (size_t i = 0; i < half; i++) {
				dst[i] &= ((const uint8_t *)buf)[i];
			}
		}
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		dst[i] &= ((const uint8_t *)buf)[i];
	}
	return 0;
}

static int rf_erase(const struct sota_flash *f, uint32_t off, size_t len)
{
	struct ram_flash_part *p = part_of(f);
	bool partial;
	if (!in_range(f, off, len) || off % f->erase_size || len % f->erase_size) {
		return -1;
	}
	uint8_t *dst = p->dev->mem + p->offset + off;
	if (!power(p->dev, &partial)) {
		if (partial) {
			for (size_t i = 0; i < len / 2; i++) {
				dst[i] = (uint8_t)(dst[i] ^ 0x5a); /* neither old nor erased */
			}
		}
		return -1;
	}
	memset(dst, 0xff, len);
	return 0;
}

void ram_flash_part_init(struct ram_flash_part *p, struct ram_flash_dev *d, uint32_t offset,
			 uint32_t size)
{
	p->dev = d;
	p->offset = offset;
	p->flash.read = rf_read;
	p->flash.write = rf_write;
	p->flash.erase = rf_erase;
	p->flash.size = size;
	p->flash.erase_size = d->erase_size;
	p->flash.write_block = d->write_block;
	p->flash.ctx = p;
}
