/*
 * The core's hashes and signature checks, all through the PSA Crypto API (mbed TLS): SHA-256
 * for payloads, slot records and key ids, and ES256 (ECDSA P-256 with SHA-256) for manifests.
 * Verification only; the core holds no private key. On Zephyr this is the same mbed TLS build
 * that serves DTLS; on the host, Debian's libmbedcrypto. No PSA type appears in this header,
 * so the core's users need no mbed TLS include path of their own.
 */
#ifndef SOTA_CRYPTO_H
#define SOTA_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define SOTA_SHA256_LEN 32
#define SOTA_P256_KEY_LEN 65 /* uncompressed point 0x04 || X || Y */
#define SOTA_ES256_SIG_LEN 64 /* r || s, 32 bytes each, big endian (COSE, not DER) */

/* psa_crypto_init(), once; 0 or -1. Every function below calls it first. */
int sota_crypto_init(void);

/* SHA-256 of data; 0, or -1 when the library fails. */
int sota_sha256(const void *data, size_t len, uint8_t out[SOTA_SHA256_LEN]);

/* One piece of a message that is hashed without being copied into one buffer. */
struct sota_piece {
	const void *data;
	size_t len;
};

/* SHA-256 over the concatenation of n pieces (the COSE Sig_structure); 0 or -1. */
int sota_sha256_pieces(const struct sota_piece *pieces, size_t n,
		       uint8_t out[SOTA_SHA256_LEN]);

/* 0 when sig is a valid ES256 signature of the SHA-256 digest under the P-256 key, -1 when
 * not (bad signature, or a key that is not a point of the curve). */
int sota_es256_verify(const uint8_t key[SOTA_P256_KEY_LEN], const uint8_t digest[SOTA_SHA256_LEN],
		      const uint8_t sig[SOTA_ES256_SIG_LEN]);

#endif
