/*
 * Model slots A and B and the active-slot record.
 *
 * The record lives twice in the storage partition (one erase sector per copy) with a sequence
 * number and a CRC-32; a new record always overwrites the older copy, so a power cut at any
 * point leaves at least one valid copy. At boot the newest valid copy names the active slot,
 * and the slot's content is checked against the SHA-256 the record holds before it is used:
 * a half-written slot is never run.
 */
#ifndef SOTA_SLOTS_H
#define SOTA_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sota/flash.h"
#include "sota/sota.h"

#define SOTA_SLOT_A 0
#define SOTA_SLOT_B 1
#define SOTA_RECORD_MAGIC 0x534c4f54u /* "SLOT" */
#define SOTA_RECORD_NAME_MAX 47
#define SOTA_RECORD_VERSION_MAX 23
#define SOTA_RECORD_LEN 256 /* serialized size, CRC included */

struct sota_slot_info {
	bool valid;
	uint32_t size;
	uint8_t sha256[SOTA_SHA256_LEN];
	char name[SOTA_RECORD_NAME_MAX + 1];
	char version[SOTA_RECORD_VERSION_MAX + 1];
};

struct sota_slot_record {
	uint32_t seq;
	uint8_t active;
	struct sota_slot_info slot[2];
};

void sota_record_encode(const struct sota_slot_record *r, uint8_t out[SOTA_RECORD_LEN]);
/* 0 when buf holds a record with the right magic and CRC, -1 otherwise. */
int sota_record_decode(const uint8_t buf[SOTA_RECORD_LEN], struct sota_slot_record *r);
/* Newest valid copy in storage: 0 and *r filled, or -1 when neither copy is valid. */
int sota_record_load(const struct sota_flash *storage, struct sota_slot_record *r);
/* Write r (its seq is set to newest + 1) over the older copy; SOTA_OK or SOTA_ERR_FLASH. */
enum sota_err sota_record_store(const struct sota_flash *storage, struct sota_slot_record *r);

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32). */
uint32_t sota_crc32(uint32_t crc, const void *data, size_t len);

struct sota_slots {
	const struct sota_flash *slot[2];
	const struct sota_flash *storage;
	struct sota_slot_record rec; /* the record in force (synthesised on a factory boot) */
	bool have_record;            /* rec was read from flash */
};

/*
 * Choose the model to run at boot and copy it into ram: the record's active slot when its
 * content matches the record's hash, else the other slot when it does (SOTA_ERR_HASH when
 * neither does); with no record at all (first boot), the factory model at the start of slot A
 * (the ELF's .wasm_model section: module, then 0xFF padding; its length from the section
 * walk) when it passes the Wasm check, else SOTA_ERR_WASM. SOTA_OK with *model_len set;
 * SOTA_ERR_FLASH on a driver error.
 */
enum sota_err sota_slots_boot(struct sota_slots *s, uint8_t *ram, size_t ram_cap,
			      size_t *model_len);
/* The slot a new package goes to. */
uint8_t sota_slots_inactive(const struct sota_slots *s);
/* Make slot active with the verified manifest's metadata; one record write. */
enum sota_err sota_slots_activate(struct sota_slots *s, uint8_t slot,
				  const struct sota_manifest *m);
/* Read len bytes of a slot into ram and compare their SHA-256; SOTA_OK, _HASH or _FLASH. */
enum sota_err sota_slot_read_checked(const struct sota_flash *f, uint32_t len,
				     const uint8_t sha256[SOTA_SHA256_LEN], uint8_t *ram,
				     size_t ram_cap);

#endif
