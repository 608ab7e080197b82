/*
 * SOTA package verification: header, COSE_Sign1 decode and signature, manifest map, sizes,
 * version order. Pure functions over caller buffers; the streaming writer (writer.c) and the
 * one-shot sota_verify_package() share them so both report the same reasons. The CBOR
 * structure is checked by the zcbor decoder generated from sota_manifest.cddl; what CDDL
 * cannot say (version syntax, finite numbers, text without NUL) is checked here.
 */
#include "sota/sota.h"

#include <math.h>
#include <string.h>

#include "sota/wasm_check.h"
#include "sota_manifest_decode.h"

static const char *const ERR_NAMES[] = {
	[SOTA_OK] = "ok",
	[SOTA_ERR_FORMAT] = "format",
	[SOTA_ERR_OVERSIZE] = "oversize",
	[SOTA_ERR_SIGNATURE] = "signature",
	[SOTA_ERR_HASH] = "hash",
	[SOTA_ERR_DOWNGRADE] = "downgrade",
	[SOTA_ERR_WASM] = "wasm",
	[SOTA_ERR_SELFTEST] = "selftest",
	[SOTA_ERR_FLASH] = "flash",
	[SOTA_ERR_STATE] = "state",
	[SOTA_ERR_CRYPTO] = "crypto",
};

const char *sota_err_name(enum sota_err err)
{
	if ((unsigned)err >= sizeof(ERR_NAMES) / sizeof(ERR_NAMES[0])) {
		return "unknown";
	}
	return ERR_NAMES[err];
}

int sota_err_update_result(enum sota_err err)
{
	switch (err) {
	case SOTA_OK: return 0;
	case SOTA_ERR_OVERSIZE: return 50;
	case SOTA_ERR_FORMAT: return 54;
	case SOTA_ERR_SIGNATURE:
	case SOTA_ERR_HASH: return 53;
	default: return 58;
	}
}

int sota_version_parse(const char *s, size_t len, struct sota_version *out)
{
	uint32_t part[3] = {0, 0, 0};
	size_t i = 0;
	for (int k = 0; k < 3; k++) {
		size_t digits = 0;
		uint64_t v = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (uint64_t)(s[i] - '0');
			if (v > UINT32_MAX) {
				return -1;
			}
			i++;
			digits++;
		}
		if (digits == 0 || (digits > 1 && s[i - digits] == '0')) {
			return -1; /* empty, or a leading zero (as ota.version refuses) */
		}
		part[k] = (uint32_t)v;
		if (k < 2) {
			if (i >= len || s[i] != '.') {
				return -1;
			}
			i++;
		}
	}
	if (i != len) {
		return -1;
	}
	out->major = part[0];
	out->minor = part[1];
	out->patch = part[2];
	return 0;
}

int sota_version_cmp(const struct sota_version *a, const struct sota_version *b)
{
	if (a->major != b->major) {
		return a->major < b->major ? -1 : 1;
	}
	if (a->minor != b->minor) {
		return a->minor < b->minor ? -1 : 1;
	}
	if (a->patch != b->patch) {
		return a->patch < b->patch ? -1 : 1;
	}
	return 0;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

enum sota_err sota_header_parse(const uint8_t hdr[SOTA_HEADER_LEN], uint32_t *manifest_len)
{
	if (memcmp(hdr, "SOTA", 4) != 0 || hdr[4] != 1 || hdr[5] || hdr[6] || hdr[7]) {
		return SOTA_ERR_FORMAT;
	}
	uint32_t m = le32(hdr + 8);
	if (m < 1 || m > SOTA_MANIFEST_MAX) {
		return SOTA_ERR_FORMAT;
	}
	*manifest_len = m;
	return SOTA_OK;
}

/* zcbor's verdict on a whole buffer: decoded, and nothing after the item. (The caller keeps
 * the call and the check apart: argument evaluation order is unspecified in C.) */
static bool whole(int zcbor_rc, size_t used, size_t len)
{
	return zcbor_rc == ZCBOR_SUCCESS && used == len;
}

enum sota_err sota_cose_decode(const uint8_t *buf, size_t len, struct sota_cose *out)
{
	struct SOTA_COSE_Sign1_r cose;
	struct SOTA_Protected prot;
	size_t used = 0;
	memset(out, 0, sizeof(*out));
	int rc = cbor_decode_SOTA_COSE_Sign1(buf, len, &cose, &used);
	if (!whole(rc, used, len)) {
		return SOTA_ERR_FORMAT;
	}
	const struct SOTA_COSE_Sign1_Untagged *s =
		cose.SOTA_COSE_Sign1_choice == SOTA_COSE_Sign1_Tagged_m_c
			? &cose.SOTA_COSE_Sign1_Tagged_m
			: &cose.SOTA_COSE_Sign1_Untagged_m;
	out->protected_hdr = s->protected.value;
	out->protected_len = s->protected.len;
	out->payload = s->payload.value;
	out->payload_len = s->payload.len;
	out->signature = s->signature.value;
	out->signature_len = s->signature.len;
	out->has_kid = s->unprotected.SOTA_kid_m_present;
	if (out->has_kid) {
		out->kid = s->unprotected.SOTA_kid_m.SOTA_kid_m.SOTA_kid.value;
		out->kid_len = s->unprotected.SOTA_kid_m.SOTA_kid_m.SOTA_kid.len;
	}
	/* The protected header is a CBOR encoding inside the byte string: exactly {1: alg}. */
	rc = cbor_decode_SOTA_Protected(out->protected_hdr, out->protected_len, &prot, &used);
	if (!whole(rc, used, out->protected_len)) {
		return SOTA_ERR_FORMAT;
	}
	out->alg = prot.SOTA_alg_m.SOTA_alg;
	return SOTA_OK;
}

/* A decoded text into a C string; false when it holds a NUL (it would read as shorter). */
static bool copy_text(const struct zcbor_string *t, char *dst, size_t cap)
{
	if (t->len == 0 || t->len > cap || memchr(t->value, '\0', t->len) != NULL) {
		return false;
	}
	memcpy(dst, t->value, t->len);
	dst[t->len] = '\0';
	return true;
}

static bool copy_selftest(const struct SOTA_selftest_r *st, struct sota_manifest *m)
{
	const struct SOTA_input_r *in = &st->SOTA_input_m;
	if (in->SOTA_feature_m_count == 0 || in->SOTA_feature_m_count > SOTA_SELFTEST_MAX) {
		return false;
	}
	for (size_t i = 0; i < in->SOTA_feature_m_count; i++) {
		const struct SOTA_feature_r *f = &in->SOTA_feature_m[i];
		double v = f->SOTA_feature_choice == SOTA_feature_int_c ? (double)f->Int : f->Float;
		/* ota.sota.SelfTest refuses what does not give a finite number: so does the device */
		if (!isfinite(v) || !isfinite((float)v)) {
			return false;
		}
		m->selftest_input[i] = (float)v;
	}
	m->selftest_len = (uint8_t)in->SOTA_feature_m_count;
	m->selftest_expected = st->SOTA_expected_m.SOTA_expected;
	return true;
}

enum sota_err sota_manifest_decode(const uint8_t *buf, size_t len, struct sota_manifest *m)
{
	/* zcbor's result holds every export and self-test number: static, it would make the
	 * decoder non-reentrant; on the stack it is about 1.3 KiB on a 32-bit MCU. */
	struct SOTA_Manifest d;
	size_t used = 0;
	memset(m, 0, sizeof(*m));
	int rc = cbor_decode_SOTA_Manifest(buf, len, &d, &used);
	if (!whole(rc, used, len)) {
		return SOTA_ERR_FORMAT; /* wrong types, missing, unknown, repeated or unordered keys */
	}
	if (!copy_text(&d.SOTA_name_m.SOTA_name, m->name, SOTA_NAME_MAX) ||
	    !copy_text(&d.SOTA_version_m.SOTA_version, m->version, SOTA_VERSION_MAX) ||
	    sota_version_parse(m->version, strlen(m->version), &m->ver) != 0 ||
	    !copy_text(&d.SOTA_section_m.SOTA_section, m->section, SOTA_SECTION_MAX)) {
		return SOTA_ERR_FORMAT;
	}
	m->slot_size = d.SOTA_slot_size_m.SOTA_slot_size;
	m->payload_size = d.SOTA_payload_size_m.SOTA_payload_size;
	memcpy(m->sha256, d.SOTA_sha256_m.SOTA_sha256.value, SOTA_SHA256_LEN);
	const struct SOTA_exports_r *ex = &d.SOTA_exports_m;
	if (ex->SOTA_export_m_count > SOTA_EXPORTS_MAX) {
		return SOTA_ERR_FORMAT;
	}
	for (size_t i = 0; i < ex->SOTA_export_m_count; i++) {
		if (!copy_text(&ex->SOTA_export_m[i], m->exports[i], SOTA_EXPORT_NAME_MAX)) {
			return SOTA_ERR_FORMAT;
		}
	}
	m->n_exports = (uint8_t)ex->SOTA_export_m_count;
	if (d.SOTA_selftest_m_present) {
		if (!copy_selftest(&d.SOTA_selftest_m.SOTA_selftest_m, m)) {
			return SOTA_ERR_FORMAT;
		}
		m->has_selftest = true;
	}
	if (d.SOTA_created_m_present) {
		m->has_created = true;
		m->created = d.SOTA_created_m.SOTA_created_m;
	}
	return SOTA_OK;
}

enum sota_err sota_manifest_check_size(const struct sota_manifest *m, uint32_t slot_capacity)
{
	if (m->payload_size > m->slot_size) {
		return SOTA_ERR_OVERSIZE;
	}
	if (slot_capacity != 0 && m->payload_size > slot_capacity) {
		return SOTA_ERR_OVERSIZE;
	}
	return SOTA_OK;
}

/* CBOR head of a byte string of length n (RFC 8949 section 3: major type 2, shortest form). */
static size_t bstr_head(uint8_t out[9], uint64_t n)
{
	if (n < 24) {
		out[0] = (uint8_t)(0x40 | n);
		return 1;
	}
	size_t bytes = n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffffu ? 4 : 8;
	out[0] = (uint8_t)(0x40 | (bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27));
	for (size_t i = 0; i < bytes; i++) {
		out[1 + i] = (uint8_t)(n >> (8 * (bytes - 1 - i)));
	}
	return 1 + bytes;
}

enum sota_err sota_cose_verify(const struct sota_cose *cose, const struct sota_trust *trust)
{
	if (cose->alg != SOTA_ALG_ES256 || trust->alg != SOTA_ALG_ES256 ||
	    cose->signature_len != SOTA_ES256_SIG_LEN || trust->key_len != SOTA_P256_KEY_LEN) {
		return SOTA_ERR_SIGNATURE; /* EdDSA or an unknown alg, or a key of another kind */
	}
	uint8_t digest[SOTA_SHA256_LEN];
	if (cose->has_kid) {
		if (sota_sha256(trust->key, trust->key_len, digest) != 0) {
			return SOTA_ERR_CRYPTO;
		}
		if (cose->kid_len != SOTA_KID_LEN || memcmp(cose->kid, digest, SOTA_KID_LEN) != 0) {
			return SOTA_ERR_SIGNATURE;
		}
	}
	/* Sig_structure = ["Signature1", protected, h'', payload], hashed in place: the CBOR
	 * encoding of that array is these six pieces, so it never sits in RAM in one piece. */
	static const uint8_t context[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e',
					  '1'};
	static const uint8_t empty_aad = 0x40;
	uint8_t prot_head[9], payload_head[9];
	const struct sota_piece sig_structure[] = {
		{context, sizeof(context)},
		{prot_head, bstr_head(prot_head, cose->protected_len)},
		{cose->protected_hdr, cose->protected_len},
		{&empty_aad, 1},
		{payload_head, bstr_head(payload_head, cose->payload_len)},
		{cose->payload, cose->payload_len},
	};
	if (sota_sha256_pieces(sig_structure, sizeof(sig_structure) / sizeof(sig_structure[0]),
			       digest) != 0) {
		return SOTA_ERR_CRYPTO;
	}
	return sota_es256_verify(trust->key, digest, cose->signature) == 0 ? SOTA_OK
									      : SOTA_ERR_SIGNATURE;
}

size_t sota_trust_key_len(int64_t alg)
{
	return alg == SOTA_ALG_ES256 ? SOTA_P256_KEY_LEN : 0;
}

int64_t sota_trust_alg_for_key_len(size_t key_len)
{
	return key_len == SOTA_P256_KEY_LEN ? SOTA_ALG_ES256 : 0;
}

enum sota_err sota_manifest_check_version(const struct sota_manifest *m,
					  const struct sota_policy *policy)
{
	if (policy != NULL && policy->installed != NULL &&
	    sota_version_cmp(&m->ver, policy->installed) <= 0) {
		return SOTA_ERR_DOWNGRADE;
	}
	return SOTA_OK;
}

enum sota_err sota_verify_package(const uint8_t *pkg, size_t len, const struct sota_trust *trust,
				  const struct sota_policy *policy, struct sota_manifest *manifest,
				  const uint8_t **payload)
{
	uint32_t mlen;
	struct sota_cose cose;
	enum sota_err err;

	/* 1. format */
	if (len < SOTA_HEADER_LEN) {
		return SOTA_ERR_FORMAT;
	}
	err = sota_header_parse(pkg, &mlen);
	if (err == SOTA_OK && len - SOTA_HEADER_LEN < mlen) {
		err = SOTA_ERR_FORMAT;
	}
	if (err == SOTA_OK) {
		err = sota_cose_decode(pkg + SOTA_HEADER_LEN, mlen, &cose);
	}
	if (err == SOTA_OK) {
		err = sota_manifest_decode(cose.payload, cose.payload_len, manifest);
	}
	if (err == SOTA_OK && len - SOTA_HEADER_LEN - mlen != manifest->payload_size) {
		err = SOTA_ERR_FORMAT; /* truncated, or bytes after the payload */
	}
	if (err != SOTA_OK) {
		return err;
	}
	/* 2. oversize */
	err = sota_manifest_check_size(manifest, policy ? policy->slot_capacity : 0);
	if (err != SOTA_OK) {
		return err;
	}
	/* 3. signature */
	err = sota_cose_verify(&cose, trust);
	if (err != SOTA_OK) {
		return err;
	}
	/* 4. hash */
	const uint8_t *body = pkg + SOTA_HEADER_LEN + mlen;
	uint8_t digest[SOTA_SHA256_LEN];
	if (sota_sha256(body, manifest->payload_size, digest) != 0) {
		return SOTA_ERR_CRYPTO;
	}
	if (memcmp(digest, manifest->sha256, SOTA_SHA256_LEN) != 0) {
		return SOTA_ERR_HASH;
	}
	/* 5. downgrade */
	err = sota_manifest_check_version(manifest, policy);
	if (err != SOTA_OK) {
		return err;
	}
	/* 6. wasm */
	err = sota_wasm_check_manifest(body, manifest->payload_size, manifest, policy);
	if (err != SOTA_OK) {
		return err;
	}
	if (payload != NULL) {
		*payload = body;
	}
	return SOTA_OK;
}
