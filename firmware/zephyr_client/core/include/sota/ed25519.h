/*
 * Ed25519 signature verification (RFC 8032, pure EdDSA), verify only.
 * Incremental over the message, so a COSE Sig_structure never has to sit in RAM in one piece.
 */
#ifndef SOTA_ED25519_H
#define SOTA_ED25519_H

#include <stddef.h>
#include <stdint.h>

#include "sota/sha2.h"

struct sota_ed25519_verify {
	struct sota_sha512 h;
	uint8_t sig[64];
	uint8_t pk[32];
};

void sota_ed25519_verify_init(struct sota_ed25519_verify *v, const uint8_t sig[64],
			      const uint8_t pk[32]);
void sota_ed25519_verify_update(struct sota_ed25519_verify *v, const void *msg, size_t len);
/* 0 when the signature is valid for the message fed so far, -1 otherwise. */
int sota_ed25519_verify_final(struct sota_ed25519_verify *v);
/* One-shot form of the three calls above. */
int sota_ed25519_verify(const uint8_t sig[64], const uint8_t pk[32], const void *msg,
			size_t len);

#endif
