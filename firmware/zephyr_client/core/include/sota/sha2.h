/*
 * SHA-256 and SHA-512 (FIPS 180-4), incremental, no allocation.
 * SHA-256 checks package payloads and key ids; SHA-512 is the hash inside Ed25519.
 */
#ifndef SOTA_SHA2_H
#define SOTA_SHA2_H

#include <stddef.h>
#include <stdint.h>

#define SOTA_SHA256_LEN 32
#define SOTA_SHA512_LEN 64

struct sota_sha256 {
	uint32_t h[8];
	uint64_t total;
	uint8_t buf[64];
	size_t fill;
};

struct sota_sha512 {
	uint64_t h[8];
	uint64_t total;
	uint8_t buf[128];
	size_t fill;
};

void sota_sha256_init(struct sota_sha256 *s);
void sota_sha256_update(struct sota_sha256 *s, const void *data, size_t len);
void sota_sha256_final(struct sota_sha256 *s, uint8_t out[SOTA_SHA256_LEN]);
void sota_sha256(const void *data, size_t len, uint8_t out[SOTA_SHA256_LEN]);

void sota_sha512_init(struct sota_sha512 *s);
void sota_sha512_update(struct sota_sha512 *s, const void *data, size_t len);
void sota_sha512_final(struct sota_sha512 *s, uint8_t out[SOTA_SHA512_LEN]);

#endif
