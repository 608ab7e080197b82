# MCUboot is built from its own sources against the board's default partitions, which differ
# from this application's (boards/<board>.overlay: slot0/slot1 of 400 KiB, then the model
# partitions). Give MCUboot the application's board overlay so that both agree on where
# slot0 and slot1 are; otherwise MCUboot would look for the update in the wrong place.
# EXTRA_: on top of MCUboot's own app.overlay, which keeps it in boot_partition.
string(REPLACE "/" "_" tinyml_board_file "${BOARD}${BOARD_QUALIFIERS}")
set(tinyml_board_overlay ${APP_DIR}/boards/${tinyml_board_file}.overlay)
if(SB_CONFIG_BOOTLOADER_MCUBOOT AND EXISTS ${tinyml_board_overlay})
  set(mcuboot_EXTRA_DTC_OVERLAY_FILE ${tinyml_board_overlay} CACHE INTERNAL
      "MCUboot uses the application's partition layout")
endif()

