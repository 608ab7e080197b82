/*
 * PSA Crypto calls of the core (see sota/crypto.h). A failure of the library is reported as
 * -1 like a mismatch, so a broken crypto setup can never make a package pass.
 */
#include "sota/crypto.h"

#include <psa/crypto.h>

int sota_crypto_init(void)
{
	/* Idempotent in mbed TLS: after the first success it returns at once. */
	return psa_crypto_init() == PSA_SUCCESS ? 0 : -1;
}

int sota_sha256(const void *data, size_t len, uint8_t out[SOTA_SHA256_LEN])
{
	size_t n = 0;
	if (sota_crypto_init() != 0 ||
	    psa_hash_compute(PSA_ALG_SHA_256, data, len, out, SOTA_SHA256_LEN, &n) != PSA_SUCCESS) {
		return -1;
	}
	return n == SOTA_SHA256_LEN ? 0 : -1;
}

int sota_sha256_pieces(const struct sota_piece *pieces, size_t n,
		       uint8_t out[SOTA_SHA256_LEN])
{
	psa_hash_operation_t op = PSA_HASH_OPERATION_INIT;
	size_t got = 0;
	if (sota_crypto_init() != 0 || psa_hash_setup(&op, PSA_ALG_SHA_256) != PSA_SUCCESS) {
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (psa_hash_update(&op, pieces[i].data, pieces[i].len) != PSA_SUCCESS) {
			psa_hash_abort(&op);
			return -1;
		}
	}
	if (psa_hash_finish(&op, out, SOTA_SHA256_LEN, &got) != PSA_SUCCESS) {
		psa_hash_abort(&op);
		return -1;
	}
	return got == SOTA_SHA256_LEN ? 0 : -1;
}

int sota_es256_verify(const uint8_t key[SOTA_P256_KEY_LEN], const uint8_t digest[SOTA_SHA256_LEN],
		      const uint8_t sig[SOTA_ES256_SIG_LEN])
{
	psa_key_attributes_t attr = psa_key_attributes_init();
	psa_key_id_t id = 0;
	if (sota_crypto_init() != 0) {
		return -1;
	}
	psa_set_key_type(&attr, PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&attr, 256);
	psa_set_key_usage_flags(&attr, PSA_KEY_USAGE_VERIFY_HASH);
	psa_set_key_algorithm(&attr, PSA_ALG_ECDSA(PSA_ALG_SHA_256));
	/* The import checks that the key is a point of the curve. */
	if (psa_import_key(&attr, key, SOTA_P256_KEY_LEN, &id) != PSA_SUCCESS) {
		return -1;
	}
	psa_status_t st = psa_verify_hash(id, PSA_ALG_ECDSA(PSA_ALG_SHA_256), digest,
					  SOTA_SHA256_LEN, sig, SOTA_ES256_SIG_LEN);
	psa_destroy_key(id);
	return st == PSA_SUCCESS ? 0 : -1;
}
