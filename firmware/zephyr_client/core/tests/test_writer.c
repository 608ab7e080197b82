/*
 * Streaming writer with packages built by ota, and the power-loss test: a swap (stream into
 * the inactive slot, verify, flip the record) is cut at every single flash write and erase;
 * after each "reboot" the device must run a complete model, the old one, never a mix.
 */
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "sota/writer.h"
#include "unit.h"

static struct test_device T;
static struct sota_writer W;
static uint8_t KEY[SOTA_P256_KEY_LEN], OTHER[SOTA_P256_KEY_LEN];

static enum sota_err stream(const uint8_t *pkg, size_t len, size_t chunk, const uint8_t *key,
			    const struct sota_version *installed, uint32_t capacity)
{
	struct sota_trust trust = {SOTA_ALG_ES256, key, SOTA_P256_KEY_LEN};
	struct sota_policy pol = {0};
	pol.installed = installed;
	pol.slot_capacity = capacity;
	uint8_t slot = sota_slots_inactive(&T.slots);
	sota_writer_init(&W, T.slots.slot[slot], &trust, &pol);
	enum sota_err e = SOTA_OK;
	for (size_t off = 0; off < len && e == SOTA_OK; off += chunk) {
		e = sota_writer_write(&W, pkg + off, len - off < chunk ? len - off : chunk);
	}
	return e != SOTA_OK ? e : sota_writer_finish(&W, T.ram, sizeof(T.ram));
}

/* One whole update as the firmware runs it: stream, verify, activate. */
static enum sota_err update(const uint8_t *pkg, size_t len)
{
	uint8_t slot = sota_slots_inactive(&T.slots);
	enum sota_err e = stream(pkg, len, 100, KEY, NULL, 0);
	return e != SOTA_OK ? e : sota_slots_activate(&T.slots, slot, &W.manifest);
}

static void streaming(const uint8_t *v1, size_t l1, const uint8_t *p2, size_t lp2,
		      const uint8_t *v2, size_t l2)
{
	size_t n;
	static const size_t chunks[] = {1, 7, 64, 1000, 100000};
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		test_device_init(&T, v1, l1);
		CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
		CHECK_EQ(stream(p2, lp2, chunks[i], KEY, NULL, 0), SOTA_OK);
		CHECK(memcmp(T.mem + DEV_SLOT_SIZE, v2, l2) == 0);
		CHECK(T.mem[DEV_SLOT_SIZE + l2] == 0xff); /* padding stays erased */
		CHECK(strcmp(W.manifest.version, "2.0.0") == 0);
	}
	/* Activate, reboot: the new model runs. */
	CHECK_EQ(sota_slots_activate(&T.slots, SOTA_SLOT_B, &W.manifest), SOTA_OK);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == l2 && memcmp(T.ram, v2, l2) == 0);
	/* A write after the verified end is refused. */
	CHECK_EQ(sota_writer_write(&W, p2, 1), SOTA_ERR_STATE);
}

static void refusals(const uint8_t *v1, size_t l1, uint8_t *p2, size_t lp2)
{
	size_t n;
	struct sota_version installed = {2, 0, 0};
	test_device_init(&T, v1, l1);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK_EQ(stream(p2, lp2, 50, OTHER, NULL, 0), SOTA_ERR_SIGNATURE);
	CHECK_EQ(stream(p2, lp2, 50, KEY, &installed, 0), SOTA_ERR_DOWNGRADE);
	CHECK_EQ(stream(p2, lp2, 50, KEY, NULL, 1024), SOTA_ERR_OVERSIZE);
	CHECK_EQ(stream(p2, lp2 - 1, 50, KEY, NULL, 0), SOTA_ERR_FORMAT);
	uint8_t *longer = malloc(lp2 + 1);
	memcpy(longer, p2, lp2);
	longer[lp2] = 0;
	CHECK_EQ(stream(longer, lp2 + 1, 50, KEY, NULL, 0), SOTA_ERR_FORMAT);
	free(longer);
	p2[lp2 - 10] ^= 0x40;
	CHECK_EQ(stream(p2, lp2, 50, KEY, NULL, 0), SOTA_ERR_HASH);
	p2[lp2 - 10] ^= 0x40;
	p2[0] = 'X';
	CHECK_EQ(stream(p2, lp2, 50, KEY, NULL, 0), SOTA_ERR_FORMAT);
	p2[0] = 'S';
	/* The writer's failure is sticky. */
	CHECK_EQ(sota_writer_write(&W, p2, 1), SOTA_ERR_FORMAT);
	/* None of this touched the running model. */
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == l1 && memcmp(T.ram, v1, l1) == 0);
}

/*
 * Cut power at every flash operation of one update; after each cut, reboot and check the
 * model is complete and is the old one, then finish the update after the reboot.
 */
static void power_loss(const uint8_t *v1, size_t l1, const uint8_t *pkg, size_t lp,
		       const uint8_t *old, size_t lold, const uint8_t *new_, size_t lnew,
		       const uint8_t *before, size_t lbefore)
{
	size_t n;
	/* Bring the device to the starting state and count the update's operations. */
	test_device_init(&T, v1, l1);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	if (before != NULL) {
		CHECK_EQ(update(before, lbefore), SOTA_OK);
	}
	static uint8_t start[DEV_FLASH_SIZE];
	memcpy(start, T.mem, sizeof(start));
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == lold && memcmp(T.ram, old, lold) == 0);
	long ops0 = T.dev.ops;
	CHECK_EQ(update(pkg, lp), SOTA_OK);
	long total = T.dev.ops - ops0;
	CHECK(total > 3);

	int bad_boots = 0, wrong_model = 0, retry_failed = 0;
	for (long cut = 0; cut < total; cut++) {
		memcpy(T.mem, start, sizeof(start));
		T.dev.ops = 0;
		T.dev.cut_at = cut;
		T.dev.dead = false;
		if (test_device_boot(&T, &n) != SOTA_OK) {
			bad_boots++;
			continue;
		}
		CHECK(update(pkg, lp) != SOTA_OK); /* power fails during it */
		ram_flash_reboot(&T.dev);
		if (test_device_boot(&T, &n) != SOTA_OK) {
			bad_boots++;
			continue;
		}
		if (!(n == lold && memcmp(T.ram, old, lold) == 0)) {
			wrong_model++;
			printf("cut at op %ld of %ld: booted a model of %zu bytes that is not the old one\n",
			       cut, total, n);
		}
		/* The interrupted update can simply be run again. */
		if (update(pkg, lp) != SOTA_OK || test_device_boot(&T, &n) != SOTA_OK ||
		    n != lnew || memcmp(T.ram, new_, lnew) != 0) {
			retry_failed++;
		}
	}
	CHECK_EQ(bad_boots, 0);
	CHECK_EQ(wrong_model, 0);
	CHECK_EQ(retry_failed, 0);
	printf("power-loss: %ld flash operations per update, cut at each one\n", total);
}

void test_writer(void)
{
	size_t l1, l2, lp1, lp2, lp3, kl;
	uint8_t *v1 = unit_read_vector("v1.wasm", &l1);
	uint8_t *v2 = unit_read_vector("v2.wasm", &l2);
	uint8_t *p2 = unit_read_vector("v2.sota", &lp2);
	uint8_t *p3 = unit_read_vector("v3.sota", &lp3);
	uint8_t *p1 = unit_read_vector("v1.sota", &lp1);
	uint8_t *k = unit_read_vector("key.raw", &kl);
	memcpy(KEY, k, SOTA_P256_KEY_LEN);
	free(k);
	k = unit_read_vector("other.raw", &kl);
	memcpy(OTHER, k, SOTA_P256_KEY_LEN);
	free(k);

	streaming(v1, l1, p2, lp2, v2, l2);
	refusals(v1, l1, p2, lp2);
	/* First swap: factory A (no record yet) -> B. */
	power_loss(v1, l1, p2, lp2, v1, l1, v2, l2, NULL, 0);
	/* Second swap: B active with a record -> A (overwrites the factory slot). */
	power_loss(v1, l1, p3, lp3, v2, l2, v1, l1, p2, lp2);
	/* Third swap: the record copy that gets erased is the newest-but-one. */
	test_device_init(&T, v1, l1);
	size_t n;
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK_EQ(update(p1, lp1), SOTA_OK);
	CHECK_EQ(update(p2, lp2), SOTA_OK);
	CHECK_EQ(update(p3, lp3), SOTA_OK);
	CHECK_EQ(test_device_boot(&T, &n), SOTA_OK);
	CHECK(n == l1 && T.slots.rec.active == SOTA_SLOT_B && T.slots.rec.seq == 3);
	free(v1);
	free(v2);
	free(p1);
	free(p2);
	free(p3);
}
