/* The simulated device of fixture.h. */
#include "fixture.h"

#include <string.h>


void test_device_init(struct test_device *t, const uint8_t *factory, size_t len)
{
	ram_flash_dev_init(&t->dev, t->mem, sizeof(t->mem), DEV_SECTOR, 8);
	ram_flash_part_init(&t->part[0], &t->dev, 0, DEV_SLOT_SIZE);
	ram_flash_part_init(&t->part[1], &t->dev, DEV_SLOT_SIZE, DEV_SLOT_SIZE);
	ram_flash_part_init(&t->part[2], &t->dev, 2 * DEV_SLOT_SIZE, DEV_STORAGE_SIZE);
	if (factory != NULL) {
		memcpy(t->mem, factory, len);
	}
	memset(&t->slots, 0, sizeof(t->slots));
	t->slots.slot[0] = &t->part[0].flash;
	t->slots.slot[1] = &t->part[1].flash;
	t->slots.storage = &t->part[2].flash;
}

enum sota_err test_device_boot(struct test_device *t, size_t *model_len)
{
	return sota_slots_boot(&t->slots, t->ram, sizeof(t->ram), model_len);
}
