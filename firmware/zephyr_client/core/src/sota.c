/*
 * SOTA package verification: header, COSE_Sign1 decode and signature, manifest map, sizes,
 * version order. Pure functions over caller buffers; the streaming writer (writer.c) and the
 * one-shot sota_verify_package() share them so both report the same reasons.
 */
#include "sota/sota.h"

#include <math.h>
#include <string.h>

#include "sota/cbor.h"
#include "sota/ed25519.h"
#include "sota/p256.h"
#include "sota/wasm_check.h"

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

enum sota_err sota_cose_decode(const uint8_t *buf, size_t len, struct sota_cose *out)
{
	struct sota_cbor c;
	size_t n;
	memset(out, 0, sizeof(*out));
	sota_cbor_init(&c, buf, len);
	if (sota_cbor_peek(&c) == SOTA_CBOR_TAG) {
		uint64_t tag;
		if (!sota_cbor_tag(&c, &tag) || tag != 18) {
			return SOTA_ERR_FORMAT;
		}
	}
	if (!sota_cbor_array(&c, &n) || n != 4) {
		return SOTA_ERR_FORMAT;
	}
	if (!sota_cbor_bstr(&c, &out->protected_hdr, &out->protected_len)) {
		return SOTA_ERR_FORMAT;
	}
	/* Unprotected header: at most {4: kid}. */
	if (!sota_cbor_map(&c, &n) || n > 1) {
		return SOTA_ERR_FORMAT;
	}
	if (n == 1) {
		int64_t label;
		if (!sota_cbor_int(&c, &label) || label != 4 ||
		    !sota_cbor_bstr(&c, &out->kid, &out->kid_len)) {
			return SOTA_ERR_FORMAT;
		}
		out->has_kid = true;
	}
	if (!sota_cbor_bstr(&c, &out->payload, &out->payload_len) ||
	    !sota_cbor_bstr(&c, &out->signature, &out->signature_len) || !sota_cbor_at_end(&c)) {
		return SOTA_ERR_FORMAT;
	}
	/* Protected header: the encoding of exactly {1: alg}. */
	struct sota_cbor p;
	int64_t label;
	sota_cbor_init(&p, out->protected_hdr, out->protected_len);
	if (!sota_cbor_map(&p, &n) || n != 1 || !sota_cbor_int(&p, &label) || label != 1 ||
	    !sota_cbor_int(&p, &out->alg) || !sota_cbor_at_end(&p)) {
		return SOTA_ERR_FORMAT;
	}
	return SOTA_OK;
}

static bool copy_text(struct sota_cbor *c, char *dst, size_t cap)
{
	const char *s;
	size_t n;
	if (!sota_cbor_tstr(c, &s, &n) || n == 0 || n > cap) {
		return false;
	}
	memcpy(dst, s, n);
	dst[n] = '\0';
	return memchr(s, '\0', n) == NULL;
}

static bool read_u32(struct sota_cbor *c, uint32_t *v)
{
	uint64_t x;
	if (!sota_cbor_uint(c, &x) || x > UINT32_MAX) {
		return false;
	}
	*v = (uint32_t)x;
	return true;
}

static bool decode_selftest(struct sota_cbor *c, struct sota_manifest *m)
{
	size_t n, k;
	bool have_input = false, have_expected = false;
	if (!sota_cbor_map(c, &n)) {
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key;
		if (!sota_cbor_uint(c, &key)) {
			return false;
		}
		if (key == 1 && !have_input) {
			if (!sota_cbor_array(c, &k) || k == 0 || k > SOTA_SELFTEST_MAX) {
				return false;
			}
			for (size_t j = 0; j < k; j++) {
				if (!sota_cbor_float(c, &m->selftest_input[j]) ||
				    !isfinite(m->selftest_input[j])) {
					return false;
				}
			}
			m->selftest_len = (uint8_t)k;
			have_input = true;
		} else if (key == 2 && !have_expected) {
			if (!read_u32(c, &m->selftest_expected)) {
				return false;
			}
			have_expected = true;
		} else {
			return false;
		}
	}
	return have_input && have_expected;
}

enum sota_err sota_manifest_decode(const uint8_t *buf, size_t len, struct sota_manifest *m)
{
	struct sota_cbor c;
	size_t n;
	uint32_t seen = 0;
	const uint32_t required = (1u << 1) | (1u << 2) | (1u << 3) | (1u << 4) | (1u << 5) |
				  (1u << 6) | (1u << 7);
	memset(m, 0, sizeof(*m));
	sota_cbor_init(&c, buf, len);
	if (!sota_cbor_map(&c, &n)) {
		return SOTA_ERR_FORMAT;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t key;
		bool ok;
		if (!sota_cbor_uint(&c, &key) || key < 1 || key > 9 || (seen & (1u << key))) {
			return SOTA_ERR_FORMAT; /* unknown or repeated keys are refused */
		}
		seen |= 1u << key;
		switch (key) {
		case 1: ok = copy_text(&c, m->name, SOTA_NAME_MAX); break;
		case 2:
			ok = copy_text(&c, m->version, SOTA_VERSION_MAX) &&
			     sota_version_parse(m->version, strlen(m->version), &m->ver) == 0;
			break;
		case 3: ok = copy_text(&c, m->section, SOTA_SECTION_MAX); break;
		case 4: ok = sota_cbor_uint(&c, &m->slot_size); break;
		case 5: ok = read_u32(&c, &m->payload_size); break;
		case 6: {
			const uint8_t *h;
			size_t hl;
			ok = sota_cbor_bstr(&c, &h, &hl) && hl == SOTA_SHA256_LEN;
			if (ok) {
				memcpy(m->sha256, h, SOTA_SHA256_LEN);
			}
			break;
		}
		case 7: {
			size_t k;
			ok = sota_cbor_array(&c, &k) && k <= SOTA_EXPORTS_MAX;
			for (size_t j = 0; ok && j < k; j++) {
				ok = copy_text(&c, m->exports[j], SOTA_EXPORT_NAME_MAX);
			}
			m->n_exports = (uint8_t)k;
			break;
		}
		case 8:
			ok = decode_selftest(&c, m);
			m->has_selftest = ok;
			break;
		default: /* 9 */
			ok = sota_cbor_uint(&c, &m->created);
			m->has_created = ok;
			break;
		}
		if (!ok) {
			return SOTA_ERR_FORMAT;
		}
	}
	if (!sota_cbor_at_end(&c) || (seen & required) != required) {
		return SOTA_ERR_FORMAT;
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

/* CBOR head for a byte or text string of length n. */
static size_t cbor_head(uint8_t out[9], uint8_t major, uint64_t n)
{
	uint8_t mt = (uint8_t)(major << 5);
	if (n < 24) {
		out[0] = mt | (uint8_t)n;
		return 1;
	}
	size_t bytes = n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xffffffffu ? 4 : 8;
	out[0] = mt | (uint8_t)(bytes == 1 ? 24 : bytes == 2 ? 25 : bytes == 4 ? 26 : 27);
	for (size_t i = 0; i < bytes; i++) {
		out[1 + i] = (uint8_t)(n >> (8 * (bytes - 1 - i)));
	}
	return 1 + bytes;
}

typedef void (*sink_fn)(void *ctx, const void *data, size_t len);

/* Feed Sig_structure = ["Signature1", protected, h'', payload] (CBOR) to a hash, piece by
 * piece, so it never sits in RAM in one piece. */
static void feed_sig_structure(const struct sota_cose *cose, sink_fn sink, void *ctx)
{
	static const uint8_t context[] = {0x84, 0x6a, 'S', 'i', 'g', 'n', 'a', 't', 'u', 'r', 'e',
					  '1'};
	static const uint8_t empty_aad = 0x40;
	uint8_t hdr[9];
	sink(ctx, context, sizeof(context));
	sink(ctx, hdr, cbor_head(hdr, SOTA_CBOR_BSTR, cose->protected_len));
	sink(ctx, cose->protected_hdr, cose->protected_len);
	sink(ctx, &empty_aad, 1);
	sink(ctx, hdr, cbor_head(hdr, SOTA_CBOR_BSTR, cose->payload_len));
	sink(ctx, cose->payload, cose->payload_len);
}

static void ed25519_sink(void *ctx, const void *data, size_t len)
{
	sota_ed25519_verify_update(ctx, data, len);
}

static void sha256_sink(void *ctx, const void *data, size_t len)
{
	sota_sha256_update(ctx, data, len);
}

enum sota_err sota_cose_verify(const struct sota_cose *cose, const struct sota_trust *trust)
{
	if (cose->alg != trust->alg || cose->signature_len != 64 ||
	    trust->key_len != sota_trust_key_len(trust->alg)) {
		return SOTA_ERR_SIGNATURE; /* unknown alg, or signed for another kind of key */
	}
	if (cose->has_kid) {
		uint8_t digest[SOTA_SHA256_LEN];
		sota_sha256(trust->key, trust->key_len, digest);
		if (cose->kid_len != SOTA_KID_LEN || memcmp(cose->kid, digest, SOTA_KID_LEN) != 0) {
			return SOTA_ERR_SIGNATURE;
		}
	}
	int ok;
	if (trust->alg == SOTA_ALG_EDDSA) {
		struct sota_ed25519_verify v;
		sota_ed25519_verify_init(&v, cose->signature, trust->key);
		feed_sig_structure(cose, ed25519_sink, &v);
		ok = sota_ed25519_verify_final(&v);
	} else {
		struct sota_sha256 h;
		uint8_t digest[SOTA_SHA256_LEN];
		sota_sha256_init(&h);
		feed_sig_structure(cose, sha256_sink, &h);
		sota_sha256_final(&h, digest);
		ok = sota_p256_verify(cose->signature, trust->key, digest);
	}
	return ok == 0 ? SOTA_OK : SOTA_ERR_SIGNATURE;
}

size_t sota_trust_key_len(int64_t alg)
{
	return alg == SOTA_ALG_EDDSA ? 32 : alg == SOTA_ALG_ES256 ? 65 : 0;
}

int64_t sota_trust_alg_for_key_len(size_t key_len)
{
	return key_len == 32 ? SOTA_ALG_EDDSA : key_len == 65 ? SOTA_ALG_ES256 : 0;
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
	sota_sha256(body, manifest->payload_size, digest);
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
