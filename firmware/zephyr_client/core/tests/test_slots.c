/* Slot record (two copies, sequence, CRC) and boot-time slot selection. */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "sota/slots.h"
#include "unit.h"

static struct test_device T;

static void record_roundtrip(void)
{
	struct sota_slot_record r, back;
	uint8_t buf[SOTA_RECORD_LEN];
	memset(&r, 0, sizeof(r));
	r.seq = 7;
	r.active = 1;
	r.slot[1].valid = true;
	r.slot[1].size = 1043;
	memset(r.slot[1].sha256, 0xab, 32);
	strcpy(r.slot[1].name, "classifier");
	strcpy(r.slot[1].version, "2.0.0");
	sota_record_encode(&r, buf);
	CHECK_EQ(sota_record_decode(buf, &back), 0);
	CHECK(back.seq == 7 && back.active == 1 && back.slot[1].valid && !back.slot[0].valid);
	CHECK(back.slot[1].size == 1043 && strcmp(back.slot[1].version, "2.0.0") == 0);
	CHECK(memcmp(back.slot[1].sha256, r.slot[1].sha256, 32) == 0);
	/* Any flipped bit breaks the CRC (or the magic). */
	int accepted = 0;
	for (int bit = 0; bit < SOTA_RECORD_LEN * 8; bit++) {
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += sota_record_decode(buf, &back) == 0;
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ(accepted, 0);
	/* The CRC is zlib's CRC-32. */
	CHECK_EQ(sota_crc32(0, "123456789", 9), 0xcbf43926u);
}

static void record_store_alternates(void)
{
	struct sota_slot_record r, got;
	test_device_init(&T, NULL, 0);
	const struct sota_flash *st = T.slots.storage;
	CHECK_EQ(sota_record_load(st, &got), -1);
	memset(&r, 0, sizeof(r));
	for (uint8_t i = 0; i < 5; i++) {
		r.active = i & 1;
		CHECK_EQ(sota_record_store(st, &r), SOTA_OK);
		CHECK_EQ(sota_record_load(st, &got), 0);
		CHECK(got.seq == i + 1u && got.active == (i & 1));
	}
	/* The newest copy corrupted: the previous one is used. */
	uint8_t *copy1 = T.mem + 2 * DEV_SLOT_SIZE + DEV_SECTOR; /* seq 4 in copy 1, seq 5 in 0 */
	uint8_t *copy0 = T.mem + 2 * DEV_SLOT_SIZE;
	copy0[20] ^= 0xff;
	CHECK_EQ(sota_record_load(st, &got), 0);
	CHECK_EQ(got.seq, 4);
	copy1[20] ^= 0xff;
	CHECK_EQ(sota_record_load(st, &got), -1);
	/* Sequence numbers wrap around. */
	test_device_init(&T, NULL, 0);
	memset(&r, 0, sizeof(r));
	CHECK_EQ(sota_record_store(st, &r), SOTA_OK);
	uint8_t buf[SOTA_RECORD_LEN];
	r.seq = 0xffffffffu;
	sota_record_encode(&r, buf);
	memcpy(copy0, buf, sizeof(buf));
	CHECK_EQ(sota_record_store(st, &r), SOTA_OK); /* seq 0 into copy 1 */
	CHECK_EQ(sota_record_load(st, &got), 0);
	CHECK_EQ(got.seq, 0);
}

static void boot_selection(void)
{
	size_t len1, len2, n;
	uint8_t *v1 = unit_read_vector("v1.wasm", &len1);
	uint8_t *v2 = unit_read_vector("v2.wasm", &len2);

	/* Factory: no record, the module in slot A. */
	test_device_init(&T, v1, len1);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == len1 && memcmp(T.ram, v1, len1) == 0 && T.slots.rec.active == SOTA_SLOT_A);
	CHECK(!T.slots.have_record && T.slots.rec.slot[0].valid);

	/* Record names B with the right hash: B runs. */
	struct sota_manifest m;
	memset(&m, 0, sizeof(m));
	m.payload_size = (uint32_t)len2;
	sota_sha256(v2, len2, m.sha256);
	strcpy(m.name, "classifier");
	strcpy(m.version, "2.0.0");
	memcpy(T.mem + DEV_SLOT_SIZE, v2, len2);
	CHECK_EQ(sota_slots_activate(&T.slots, SOTA_SLOT_B, &m), SOTA_OK);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == len2 && memcmp(T.ram, v2, len2) == 0 && T.slots.rec.active == SOTA_SLOT_B);
	CHECK(strcmp(T.slots.rec.slot[1].version, "2.0.0") == 0);
	CHECK(T.slots.rec.slot[0].valid); /* the factory slot is kept as fallback */

	/* B damaged afterwards: A (hash from the record) runs instead. */
	T.mem[DEV_SLOT_SIZE + 100] ^= 0x01;
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == len1 && memcmp(T.ram, v1, len1) == 0 && T.slots.rec.active == SOTA_SLOT_A);

	/* Both slots differ from their recorded hashes, even though slot A holds a module that
	 * passes the Wasm check (v2 where the record expects v1): nothing unverified runs. */
	memcpy(T.mem, v2, len2);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_ERR_HASH);

	/* Empty device: no model. */
	test_device_init(&T, NULL, 0);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_ERR_WASM);
	free(v1);
	free(v2);
}

void test_slots(void)
{
	record_roundtrip();
	record_store_alternates();
	boot_selection();
}
