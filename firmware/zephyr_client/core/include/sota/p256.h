/*
 * ECDSA P-256 signature verification (FIPS 186-4), verify only: the ES256 alternative to
 * Ed25519 for SOTA manifests. Signatures are r || s (32 bytes each, big endian), public keys
 * the 65-byte uncompressed point 0x04 || X || Y, as ota.keys writes them.
 */
#ifndef SOTA_P256_H
#define SOTA_P256_H

#include <stdint.h>

/* 0 when sig is a valid signature of the SHA-256 digest hash under pk, -1 otherwise. */
int sota_p256_verify(const uint8_t sig[64], const uint8_t pk[65], const uint8_t hash[32]);

#endif
