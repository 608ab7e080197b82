/*
 * Object 5 with MCUboot (CONFIG_APP_FOTA_MCUBOOT): Package blocks (push through the 5/0/0
 * pre-write buffer, or pull over CoAP block2) go to slot1 with flash_img; Execute Update asks
 * MCUboot for a test swap and reboots; the new image confirms itself once it has registered
 * (firmware_update_confirm), otherwise MCUboot swaps back on the next reset.
 */
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/lwm2m.h>
#include <zephyr/storage/flash_map.h>
#include <zephyr/sys/reboot.h>

#include "app.h"

LOG_MODULE_REGISTER(app_fw_update, LOG_LEVEL_INF);

/*
 * The buffer of 5/0/0. Zephyr's pull context (Package URI of Objects 5 and 9) always copies
 * the blocks it downloads into the buffer of 5/0/0, whichever object asked for them; without
 * one it loops forever on zero-length copies (up to v4.2 at least). So it is always set.
 */
static uint8_t block_buf[CONFIG_LWM2M_COAP_BLOCK_SIZE];

static void *block_buffer(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			  size_t *data_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	*data_len = sizeof(block_buf);
	return block_buf;
}

#if defined(CONFIG_APP_FOTA_MCUBOOT)
#include <zephyr/dfu/flash_img.h>
#include <zephyr/dfu/mcuboot.h>

static struct flash_img_context img;
static void reboot_work_fn(struct k_work *work);
static K_WORK_DELAYABLE_DEFINE(reboot_work, reboot_work_fn);

static int image_write_cb(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			  uint8_t *data, uint16_t data_len, bool last_block, size_t total_size,
			  size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id);
	int rc;
	if (offset == 0) {
		rc = flash_img_init_id(&img, FIXED_PARTITION_ID(slot1_partition));
		if (rc != 0) {
			return -EIO;
		}
		if (total_size > FIXED_PARTITION_SIZE(slot1_partition)) {
			return -ENOSPC; /* engine: Update Result 2, not enough storage */
		}
	}
	rc = flash_img_buffered_write(&img, data, data_len, last_block);
	if (rc != 0) {
		LOG_ERR("slot1 write at %zu: %d", offset, rc);
		return -EIO;
	}
	return 0;
}

static void reboot_work_fn(struct k_work *work)
{
	ARG_UNUSED(work);
	sys_reboot(SYS_REBOOT_WARM);
}

static int update_cb(uint16_t obj_inst_id, uint8_t *args, uint16_t args_len)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(args); ARG_UNUSED(args_len);
	int rc = boot_request_upgrade(BOOT_UPGRADE_TEST);
	if (rc != 0) {
		LOG_ERR("boot_request_upgrade: %d", rc);
		return rc;
	}
	LOG_INF("image in slot1 marked for test; rebooting");
	k_work_schedule(&reboot_work, K_SECONDS(2)); /* let the Execute response go out */
	return 0;
}

int init_firmware_update(void)
{
	lwm2m_register_pre_write_callback(&LWM2M_OBJ(LWM2M_OBJECT_FIRMWARE_ID, 0, 0), block_buffer);
	lwm2m_firmware_set_write_cb(image_write_cb);
	lwm2m_firmware_set_update_cb(update_cb);
	return 0;
}

void firmware_update_confirm(void)
{
	if (!boot_is_img_confirmed()) {
		int rc = boot_write_img_confirmed();
		LOG_INF("new image confirmed: %d", rc);
		lwm2m_set_u8(&LWM2M_OBJ(LWM2M_OBJECT_FIRMWARE_ID, 0, 5), RESULT_SUCCESS);
	}
}
#else
static int image_write_refused(uint16_t obj_inst_id, uint16_t res_id, uint16_t res_inst_id,
			       uint8_t *data, uint16_t data_len, bool last_block,
			       size_t total_size, size_t offset)
{
	ARG_UNUSED(obj_inst_id); ARG_UNUSED(res_id); ARG_UNUSED(res_inst_id); ARG_UNUSED(data);
	ARG_UNUSED(data_len); ARG_UNUSED(last_block); ARG_UNUSED(total_size); ARG_UNUSED(offset);
	LOG_WRN("full firmware updates need overlay-mcuboot.conf");
	/* -EIO: Update Result 8 "firmware update failed" for push and pull alike (the engine's
	 * pull maps -ENOTSUP to 7 "invalid URI", which would send the operator the wrong way). */
	return -EIO;
}

int init_firmware_update(void)
{
	lwm2m_register_pre_write_callback(&LWM2M_OBJ(LWM2M_OBJECT_FIRMWARE_ID, 0, 0), block_buffer);
	lwm2m_firmware_set_write_cb(image_write_refused);
	return 0;
}

void firmware_update_confirm(void) {}
#endif
