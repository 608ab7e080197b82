/*
 * SOTA package verification (docs/sota-format.md): package header, COSE_Sign1 manifest,
 * signature, payload hash, version, Wasm checks. The error codes carry the same names as the
 * reasons of ota.sota.verify_package, and are checked in the same order. The CBOR decoding is
 * zcbor's, generated from sota_manifest.cddl; hashes and signatures are PSA Crypto's.
 */
#ifndef SOTA_SOTA_H
#define SOTA_SOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sota/crypto.h"

#define SOTA_HEADER_LEN 12
#define SOTA_MANIFEST_MAX 16384u
#define SOTA_NAME_MAX 64
#define SOTA_VERSION_MAX 32
#define SOTA_SECTION_MAX 64
#define SOTA_EXPORTS_MAX 16
#define SOTA_EXPORT_NAME_MAX 64
#define SOTA_SELFTEST_MAX 64
#define SOTA_KID_LEN 8

/* The one COSE algorithm this core verifies: ES256 (ECDSA P-256 with SHA-256). Packages signed
 * with EdDSA (-8, Ed25519: not in mbed TLS) are refused with SOTA_ERR_SIGNATURE. */
#define SOTA_ALG_ES256 (-7)

enum sota_err {
	SOTA_OK = 0,
	SOTA_ERR_FORMAT,    /* magic, version, lengths, CBOR structure, types, trailing bytes */
	SOTA_ERR_OVERSIZE,  /* payload larger than slot_size or than the receiver's slot */
	SOTA_ERR_SIGNATURE, /* unknown alg, kid mismatch, signature does not verify */
	SOTA_ERR_HASH,      /* payload SHA-256 differs from the manifest */
	SOTA_ERR_DOWNGRADE, /* version not greater than the installed one */
	SOTA_ERR_WASM,      /* not a Wasm module, forbidden import, missing export */
	SOTA_ERR_SELFTEST,  /* self-test input does not give the expected class */
	SOTA_ERR_FLASH,     /* the flash driver failed (device side only) */
	SOTA_ERR_STATE,     /* call out of order (device side only) */
	SOTA_ERR_CRYPTO,    /* the crypto library failed (device side only) */
};

/* The reason name shared with ota.sota ("format", "signature", ...). */
const char *sota_err_name(enum sota_err err);
/* Object 9 Update Result (/9/x/9) for a failure, per docs/sota-format.md. */
int sota_err_update_result(enum sota_err err);

struct sota_version {
	uint32_t major, minor, patch;
};

/* Parse "MAJOR.MINOR.PATCH" (decimal numbers, no sign, no leading '+'); 0 or -1. */
int sota_version_parse(const char *s, size_t len, struct sota_version *out);
/* <0, 0, >0 like memcmp. */
int sota_version_cmp(const struct sota_version *a, const struct sota_version *b);

struct sota_manifest {
	char name[SOTA_NAME_MAX + 1];
	char version[SOTA_VERSION_MAX + 1];
	struct sota_version ver;
	char section[SOTA_SECTION_MAX + 1];
	uint64_t slot_size;
	uint32_t payload_size;
	uint8_t sha256[SOTA_SHA256_LEN];
	uint8_t n_exports;
	char exports[SOTA_EXPORTS_MAX][SOTA_EXPORT_NAME_MAX + 1];
	bool has_selftest;
	uint8_t selftest_len;
	float selftest_input[SOTA_SELFTEST_MAX];
	uint32_t selftest_expected;
	bool has_created;
	uint64_t created;
};

/* The parts of a COSE_Sign1 structure, pointing into the caller's buffer. */
struct sota_cose {
	const uint8_t *protected_hdr;
	size_t protected_len;
	const uint8_t *payload;
	size_t payload_len;
	const uint8_t *signature;
	size_t signature_len;
	int64_t alg;
	bool has_kid;
	const uint8_t *kid;
	size_t kid_len;
};

/* The trusted signing key compiled into the device. */
struct sota_trust {
	int64_t alg;        /* SOTA_ALG_ES256 */
	const uint8_t *key; /* P-256: 65-byte uncompressed point */
	size_t key_len;
};

/* Raw key length for an alg (65 for ES256; 0 for others) and the alg for a raw key length
 * (ES256 for 65; 0, which no package has, for others such as a 32-byte Ed25519 key). */
size_t sota_trust_key_len(int64_t alg);
int64_t sota_trust_alg_for_key_len(size_t key_len);

/* What the receiver knows: its slot capacity and, optionally, the installed version. */
struct sota_policy {
	uint32_t slot_capacity;               /* 0: no receiver limit */
	const struct sota_version *installed; /* NULL: no downgrade check */
	const char *const *import_allowlist;  /* "module.field" strings; NULL: no imports */
	size_t n_import_allowlist;
};

/* Package header: manifest length, or SOTA_ERR_FORMAT. */
enum sota_err sota_header_parse(const uint8_t hdr[SOTA_HEADER_LEN], uint32_t *manifest_len);
/* COSE_Sign1 structure and its protected header; SOTA_ERR_FORMAT when malformed or followed
 * by other bytes. */
enum sota_err sota_cose_decode(const uint8_t *buf, size_t len, struct sota_cose *out);
/* Manifest map from the COSE payload; SOTA_ERR_FORMAT when malformed or with unknown keys. */
enum sota_err sota_manifest_decode(const uint8_t *buf, size_t len, struct sota_manifest *out);
/* Size checks between manifest, package and receiver: SOTA_ERR_OVERSIZE or SOTA_OK. */
enum sota_err sota_manifest_check_size(const struct sota_manifest *m, uint32_t slot_capacity);
/* Signature and kid against the trusted key: SOTA_ERR_SIGNATURE or SOTA_OK. */
enum sota_err sota_cose_verify(const struct sota_cose *cose, const struct sota_trust *trust);
/* Version against the installed one: SOTA_ERR_DOWNGRADE or SOTA_OK. */
enum sota_err sota_manifest_check_version(const struct sota_manifest *m,
					  const struct sota_policy *policy);

/*
 * Whole-package verification in the order of docs/sota-format.md (steps 1-6; the self-test
 * needs a Wasm runtime and is run by the caller). On success *manifest is filled and
 * *payload points at the payload inside pkg.
 */
enum sota_err sota_verify_package(const uint8_t *pkg, size_t len, const struct sota_trust *trust,
				  const struct sota_policy *policy, struct sota_manifest *manifest,
				  const uint8_t **payload);

#endif
