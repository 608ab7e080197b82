/* The Zephyr glue's parts, one init_*() each (LwM2M object by object), called from main.c. */
#ifndef APP_H
#define APP_H

#include "model_manager.h"

/* struct sota_flash over the devicetree partitions model_a, model_b and storage. */
int init_flash_partitions(struct model_platform *platform);
/* Object 33100: the model object, its Run execute and the periodic inference. */
int init_model_object(void);
/* Refresh 33100 resources from the model manager (after boot, swap, inference). */
void model_object_refresh(void);
/* Object 9 instance 0: SOTA packages through the model manager. */
int init_sw_mgmt(void);
/* Object 5: full firmware images into MCUboot's slot1 (CONFIG_APP_FOTA_MCUBOOT). */
int init_firmware_update(void);
/* Confirm a freshly swapped MCUboot image once it has registered. */
void firmware_update_confirm(void);

#endif
