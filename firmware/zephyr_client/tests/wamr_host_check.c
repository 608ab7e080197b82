/*
 * Host check of the WAMR glue: the device's model manager (core + model_runtime.c) linked
 * against WAMR built for Linux, on RAM flash. Boots the factory model, then applies each
 * package through the Object 9 flow (stream, verify, install with self-test, activate) while
 * a second thread keeps running inferences, and prints what happened for the test to compare
 * with wasmtime:
 *
 *   wamr_host_check PUBKEY.raw FACTORY.wasm [PACKAGE EXPECTED_REASON]...
 *
 * Output lines: "boot ...", "package N reason=R", "run class=C score=S", "swap-race ...".
 * Exit status 0 when every package gave its expected reason and no inference failed.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_manager.h"
#include "model_runtime.h"
#include "ram_flash.h"
#include "wasm_export.h"

#define SLOT_SIZE 65536u
#define SECTOR 4096u

static uint8_t flash_mem[2 * SLOT_SIZE + 2 * SECTOR];
static struct ram_flash_dev dev;
static struct ram_flash_part parts[3];
static atomic_int stop, runs, failures;
static const float SAMPLE[4] = {1.0f, 0.5f, 0.2f, 0.1f};

static uint8_t *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		exit(2);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void *inference_loop(void *arg)
{
	(void)arg;
	/* Every thread that calls into WAMR needs its thread environment. */
	wasm_runtime_init_thread_env();
	while (!atomic_load(&stop)) {
		struct model_rt_result r;
		if (model_run(SAMPLE, 4, &r) != 0) {
			atomic_fetch_add(&failures, 1);
		}
		atomic_fetch_add(&runs, 1);
	}
	wasm_runtime_destroy_thread_env();
	return NULL;
}

static void print_run(const char *tag)
{
	static const float ZERO[4] = {0, 0, 0, 0};
	struct model_rt_result r, z;
	if (model_run(SAMPLE, 4, &r) != 0 || model_run(ZERO, 4, &z) != 0) {
		printf("%s run failed: %s\n", tag, model_manager_stats()->last_error);
		atomic_fetch_add(&failures, 1);
		return;
	}
	const struct sota_slot_record *rec = model_manager_record();
	printf("%s run class=%d score=%.6f zero_class=%d zero_score=%.6f slot=%d version=%s\n", tag,
	       (int)r.cls, (double)r.score, (int)z.cls, (double)z.score, rec->active,
	       rec->slot[rec->active].version);
}

/* Waits until the inference thread has finished one more inference, as happens between two
 * blocks on the device (blocks arrive at network pace). On a busy host a short update could
 * otherwise run while that thread is not scheduled at all. An inference that cannot finish
 * within 5 s means the update blocks inference: counted as a failure. */
static void await_inference(void)
{
	struct timespec t0, now;
	int seen = atomic_load(&runs);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (atomic_load(&runs) == seen) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > 5) {
			printf("inference blocked during the update\n");
			atomic_fetch_add(&failures, 1);
			return;
		}
		sched_yield();
	}
}

static enum sota_err apply(const uint8_t *pkg, size_t len)
{
	enum sota_err e = model_update_begin();
	for (size_t off = 0; off < len && e == SOTA_OK; off += 64) {
		e = model_update_write(pkg + off, len - off < 64 ? len - off : 64);
		await_inference();
	}
	if (e == SOTA_OK) {
		e = model_update_finish();
		await_inference();
	}
	if (e == SOTA_OK) {
		e = model_update_install();
		await_inference();
	}
	if (e == SOTA_OK) {
		e = model_update_activate();
	}
	return e;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (argc - 3) % 2 != 0) {
		fprintf(stderr, "usage: wamr_host_check PUBKEY.raw FACTORY.wasm [PACKAGE REASON]...\n");
		return 2;
	}
	size_t klen, flen;
	uint8_t *key = read_all(argv[1], &klen);
	uint8_t *factory = read_all(argv[2], &flen);
	ram_flash_dev_init(&dev, flash_mem, sizeof(flash_mem), SECTOR, 8);
	ram_flash_part_init(&parts[0], &dev, 0, SLOT_SIZE);
	ram_flash_part_init(&parts[1], &dev, SLOT_SIZE, SLOT_SIZE);
	ram_flash_part_init(&parts[2], &dev, 2 * SLOT_SIZE, 2 * SECTOR);
	memcpy(flash_mem, factory, flen); /* the ELF's .wasm_model section, 0xFF padded */

	struct model_platform plat = {
		{&parts[0].flash, &parts[1].flash}, &parts[2].flash, key, klen,
	};
	if (model_rt_init(NULL, 0) != 0) {
		printf("boot wasm_runtime_full_init failed\n");
		return 1;
	}
	enum sota_err e = model_manager_init(&plat);
	printf("boot reason=%s\n", sota_err_name(e));
	if (e != SOTA_OK) {
		return 1;
	}
	print_run("boot");

	int mismatches = 0;
	for (int i = 3; i < argc; i += 2) {
		size_t plen;
		uint8_t *pkg = read_all(argv[i], &plen);
		pthread_t t;
		atomic_store(&stop, 0);
		atomic_store(&runs, 0);
		pthread_create(&t, NULL, inference_loop, NULL);
		int before = atomic_load(&runs);
		e = apply(pkg, plen);
		int during = atomic_load(&runs) - before;
		atomic_store(&stop, 1);
		pthread_join(t, NULL);
		printf("package %d reason=%s expected=%s inferences-during-update=%d\n", (i - 3) / 2,
		       sota_err_name(e), argv[i + 1], during);
		if (e != SOTA_OK) {
			printf("package %d update_error=%s\n", (i - 3) / 2,
			       model_manager_stats()->update_error);
		}
		mismatches += strcmp(sota_err_name(e), argv[i + 1]) != 0;
		print_run("after");
		free(pkg);
	}

	/* Reboot: the record and the slots decide, as after a power cycle. */
	e = model_manager_init(&plat);
	printf("reboot reason=%s\n", sota_err_name(e));
	print_run("reboot");

	/* Bad input and a wrong feature count give errors, not crashes. */
	struct model_rt_result r;
	float three[3] = {1, 2, 3};
	int bad = model_run(three, 3, &r);
	printf("bad-input rc=%d error=%s\n", bad, model_manager_stats()->last_error);
	float parsed[8];
	printf("parse \"1.0, 0.5,0.2,0.1\" -> %d, \"1,,2\" -> %d\n",
	       model_parse_input("1.0, 0.5,0.2,0.1", 16, parsed, 8),
	       model_parse_input("1,,2", 4, parsed, 8));
	printf("failures=%d mismatches=%d\n", atomic_load(&failures), mismatches);
	free(key);
	free(factory);
	return atomic_load(&failures) == 0 && mismatches == 0 && bad == -1 ? 0 : 1;
}
