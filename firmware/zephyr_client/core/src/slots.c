/*
 * Active-slot record (two copies, sequence number, CRC-32) and boot-time slot selection.
 * The record is serialised byte by byte (little endian), so its layout does not depend on
 * the compiler's struct padding or the CPU's byte order.
 */
#include "sota/slots.h"

#include <string.h>

#include "sota/wasm_check.h"

#define OFF_MAGIC 0
#define OFF_SEQ 4
#define OFF_ACTIVE 8
#define OFF_SLOTS 9
#define SLOT_INFO_LEN (1 + 4 + SOTA_SHA256_LEN + SOTA_RECORD_NAME_MAX + 1 + SOTA_RECORD_VERSION_MAX + 1)
#define OFF_CRC (SOTA_RECORD_LEN - 4)

uint32_t sota_crc32(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++) {
			crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
		}
	}
	return ~crc;
}

/* Copy a C string into a field of cap + 1 bytes, cut at cap, always terminated. */
static void copy_field(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	n = n < cap ? n : cap;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void sota_record_encode(const struct sota_slot_record *r, uint8_t out[SOTA_RECORD_LEN])
{
	memset(out, 0, SOTA_RECORD_LEN);
	put32(out + OFF_MAGIC, SOTA_RECORD_MAGIC);
	put32(out + OFF_SEQ, r->seq);
	out[OFF_ACTIVE] = r->active;
	for (int i = 0; i < 2; i++) {
		uint8_t *p = out + OFF_SLOTS + i * SLOT_INFO_LEN;
		const struct sota_slot_info *s = &r->slot[i];
		p[0] = s->valid ? 1 : 0;
		put32(p + 1, s->size);
		memcpy(p + 5, s->sha256, SOTA_SHA256_LEN);
		strncpy((char *)p + 5 + SOTA_SHA256_LEN, s->name, SOTA_RECORD_NAME_MAX);
		strncpy((char *)p + 5 + SOTA_SHA256_LEN + SOTA_RECORD_NAME_MAX + 1, s->version,
			SOTA_RECORD_VERSION_MAX);
	}
	put32(out + OFF_CRC, sota_crc32(0, out, OFF_CRC));
}

int sota_record_decode(const uint8_t buf[SOTA_RECORD_LEN], struct sota_slot_record *r)
{
	if (get32(buf + OFF_MAGIC) != SOTA_RECORD_MAGIC ||
	    get32(buf + OFF_CRC) != sota_crc32(0, buf, OFF_CRC) || buf[OFF_ACTIVE] > 1) {
		return -1;
	}
	memset(r, 0, sizeof(*r));
	r->seq = get32(buf + OFF_SEQ);
	r->active = buf[OFF_ACTIVE];
	for (int i = 0; i < 2; i++) {
		const uint8_t *p = buf + OFF_SLOTS + i * SLOT_INFO_LEN;
		struct sota_slot_info *s = &r->slot[i];
		s->valid = p[0] == 1;
		s->size = get32(p + 1);
		memcpy(s->sha256, p + 5, SOTA_SHA256_LEN);
		memcpy(s->name, p + 5 + SOTA_SHA256_LEN, SOTA_RECORD_NAME_MAX);
		memcpy(s->version, p + 5 + SOTA_SHA256_LEN + SOTA_RECORD_NAME_MAX + 1,
		       SOTA_RECORD_VERSION_MAX);
	}
	return 0;
}

/* Sequence numbers wrap: a is newer than b when the signed difference is positive. */
static bool seq_newer(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

/* Index (0/1) of the newest valid copy, or -1; its content in *r. */
static int newest_copy(const struct sota_flash *storage, struct sota_slot_record *r)
{
	uint8_t buf[SOTA_RECORD_LEN];
	struct sota_slot_record c;
	int best = -1;
	for (int i = 0; i < 2; i++) {
		if (storage->read(storage, (uint32_t)i * storage->erase_size, buf, sizeof(buf)) != 0 ||
		    sota_record_decode(buf, &c) != 0) {
			continue;
		}
		if (best < 0 || seq_newer(c.seq, r->seq)) {
			*r = c;
			best = i;
		}
	}
	return best;
}

int sota_record_load(const struct sota_flash *storage, struct sota_slot_record *r)
{
	return newest_copy(storage, r) >= 0 ? 0 : -1;
}

enum sota_err sota_record_store(const struct sota_flash *storage, struct sota_slot_record *r)
{
	struct sota_slot_record cur;
	uint8_t buf[SOTA_RECORD_LEN];
	int k = newest_copy(storage, &cur);
	int target = k == 0 ? 1 : 0;
	uint32_t off = (uint32_t)target * storage->erase_size;

	r->seq = k >= 0 ? cur.seq + 1 : 1;
	sota_record_encode(r, buf);
	if (storage->erase(storage, off, storage->erase_size) != 0 ||
	    storage->write(storage, off, buf, sizeof(buf)) != 0) {
		return SOTA_ERR_FLASH;
	}
	return SOTA_OK;
}

enum sota_err sota_slot_read_checked(const struct sota_flash *f, uint32_t len,
				     const uint8_t sha256[SOTA_SHA256_LEN], uint8_t *ram,
				     size_t ram_cap)
{
	uint8_t digest[SOTA_SHA256_LEN];
	if (len > ram_cap || len > f->size) {
		return SOTA_ERR_OVERSIZE;
	}
	if (f->read(f, 0, ram, len) != 0) {
		return SOTA_ERR_FLASH;
	}
	if (sota_sha256(ram, len, digest) != 0) {
		return SOTA_ERR_CRYPTO;
	}
	return memcmp(digest, sha256, SOTA_SHA256_LEN) == 0 ? SOTA_OK : SOTA_ERR_HASH;
}

enum sota_err sota_slots_boot(struct sota_slots *s, uint8_t *ram, size_t ram_cap,
			      size_t *model_len)
{
	s->have_record = sota_record_load(s->storage, &s->rec) == 0;
	if (s->have_record) {
		uint8_t order[2] = {s->rec.active, (uint8_t)(1 - s->rec.active)};
		for (int i = 0; i < 2; i++) {
			const struct sota_slot_info *info = &s->rec.slot[order[i]];
			if (!info->valid) {
				continue;
			}
			enum sota_err e = sota_slot_read_checked(s->slot[order[i]], info->size,
								 info->sha256, ram, ram_cap);
			if (e == SOTA_ERR_FLASH || e == SOTA_ERR_CRYPTO) {
				return e;
			}
			if (e == SOTA_OK) {
				s->rec.active = order[i];
				*model_len = info->size;
				return SOTA_OK;
			}
		}
		/* Neither slot matches its recorded hash. Slot A may hold an interrupted copy
		 * that happens to parse as Wasm: never run unverified bytes once a record exists. */
		return SOTA_ERR_HASH;
	}
	/* Factory model: the module at the start of slot A, its length from the section walk. */
	const struct sota_flash *a_flash = s->slot[SOTA_SLOT_A];
	size_t probe = a_flash->size < ram_cap ? a_flash->size : ram_cap;
	if (a_flash->read(a_flash, 0, ram, probe) != 0) {
		return SOTA_ERR_FLASH;
	}
	size_t factory_len = sota_wasm_extent(ram, probe);
	if (factory_len == 0 ||
	    sota_wasm_check(ram, factory_len, SOTA_DEFAULT_EXPORTS, SOTA_N_DEFAULT_EXPORTS, NULL,
			    0) != SOTA_OK) {
		return SOTA_ERR_WASM;
	}
	/* First boot: a record in RAM only, written with the first activation. */
	struct sota_slot_info *a = &s->rec.slot[SOTA_SLOT_A];
	memset(&s->rec, 0, sizeof(s->rec));
	s->rec.active = SOTA_SLOT_A;
	a->valid = true;
	a->size = (uint32_t)factory_len;
	if (sota_sha256(ram, factory_len, a->sha256) != 0) {
		return SOTA_ERR_CRYPTO;
	}
	copy_field(a->name, SOTA_RECORD_NAME_MAX, "factory");
	*model_len = factory_len;
	return SOTA_OK;
}

uint8_t sota_slots_inactive(const struct sota_slots *s) { return (uint8_t)(1 - s->rec.active); }

enum sota_err sota_slots_activate(struct sota_slots *s, uint8_t slot,
				  const struct sota_manifest *m)
{
	struct sota_slot_record next = s->rec;
	struct sota_slot_info *info = &next.slot[slot & 1];
	memset(info, 0, sizeof(*info));
	info->valid = true;
	info->size = m->payload_size;
	memcpy(info->sha256, m->sha256, SOTA_SHA256_LEN);
	copy_field(info->name, SOTA_RECORD_NAME_MAX, m->name);
	copy_field(info->version, SOTA_RECORD_VERSION_MAX, m->version);
	next.active = slot & 1;
	enum sota_err e = sota_record_store(s->storage, &next);
	if (e == SOTA_OK) {
		s->rec = next;
		s->have_record = true;
	}
	return e;
}
