/*
 * struct sota_flash on Zephyr's flash_area API, one per partition (model_a, model_b,
 * storage). On native_sim the factory model is copied from the .wasm_model array into the
 * simulated model_a on first boot; on hardware the ELF section is model_a itself.
 */
#include <string.h>

#include <zephyr/drivers/flash.h>
#include <zephyr/logging/log.h>
#include <zephyr/storage/flash_map.h>

#include "app.h"

LOG_MODULE_REGISTER(app_flash, LOG_LEVEL_INF);

struct za_flash {
	struct sota_flash f;
	const struct flash_area *fa;
};

static struct za_flash parts[3];

static int za_read(const struct sota_flash *f, uint32_t off, void *buf, size_t len)
{
	return flash_area_read(((const struct za_flash *)f->ctx)->fa, off, buf, len);
}

static int za_write(const struct sota_flash *f, uint32_t off, const void *buf, size_t len)
{
	return flash_area_write(((const struct za_flash *)f->ctx)->fa, off, buf, len);
}

static int za_erase(const struct sota_flash *f, uint32_t off, size_t len)
{
	return flash_area_erase(((const struct za_flash *)f->ctx)->fa, off, len);
}

static int open_part(struct za_flash *p, uint8_t id)
{
	struct flash_pages_info info;
	int rc = flash_area_open(id, &p->fa);
	if (rc != 0) {
		return rc;
	}
	const struct device *dev = flash_area_get_device(p->fa);
	rc = flash_get_page_info_by_offs(dev, p->fa->fa_off, &info);
	if (rc != 0) {
		return rc;
	}
	p->f.read = za_read;
	p->f.write = za_write;
	p->f.erase = za_erase;
	p->f.size = p->fa->fa_size;
	p->f.erase_size = info.size;
	p->f.write_block = flash_get_write_block_size(dev);
	p->f.ctx = p;
	if (p->f.write_block > SOTA_WRITE_BLOCK_MAX) {
		LOG_ERR("write block %u > %u", p->f.write_block, SOTA_WRITE_BLOCK_MAX);
		return -ENOTSUP;
	}
	return 0;
}

#if defined(CONFIG_ARCH_POSIX)
extern const uint8_t wasm_model_slot[];

/* First boot of a native_sim flash file: model_a still erased, provision the factory model. */
static int provision_model_a(struct za_flash *a)
{
	uint8_t head[8];
	int rc = flash_area_read(a->fa, 0, head, sizeof(head));
	if (rc != 0 || head[0] != 0xff) {
		return rc;
	}
	LOG_INF("provisioning model_a from the .wasm_model section");
	rc = flash_area_erase(a->fa, 0, a->fa->fa_size);
	return rc ? rc : flash_area_write(a->fa, 0, wasm_model_slot, a->fa->fa_size);
}
#endif

int init_flash_partitions(struct model_platform *platform)
{
	int rc = open_part(&parts[0], FIXED_PARTITION_ID(model_a_partition));
	rc = rc ? rc : open_part(&parts[1], FIXED_PARTITION_ID(model_b_partition));
	rc = rc ? rc : open_part(&parts[2], FIXED_PARTITION_ID(storage_partition));
	if (rc != 0) {
		LOG_ERR("model partitions: %d (check the board overlay)", rc);
		return rc;
	}
#if defined(CONFIG_ARCH_POSIX)
	rc = provision_model_a(&parts[0]);
	if (rc != 0) {
		return rc;
	}
#endif
	platform->slot[0] = &parts[0].f;
	platform->slot[1] = &parts[1].f;
	platform->storage = &parts[2].f;
	return 0;
}
