/*
 * Versions, COSE and manifest decoding (zcbor, generated from sota_manifest.cddl), one-shot
 * package verification with ES256 packages built by ota.
 */
#include <stdlib.h>
#include <string.h>

#include "sota/sota.h"
#include "unit.h"

#define KEY_LEN SOTA_P256_KEY_LEN

static void versions(void)
{
	struct sota_version a, b;
	CHECK_EQ(sota_version_parse("1.2.3", 5, &a), 0);
	CHECK(a.major == 1 && a.minor == 2 && a.patch == 3);
	CHECK_EQ(sota_version_parse("1.10.0", 6, &b), 0);
	CHECK(sota_version_cmp(&a, &b) < 0 && sota_version_cmp(&b, &a) > 0);
	CHECK_EQ(sota_version_cmp(&a, &a), 0);
	CHECK_EQ(sota_version_parse("1.2", 3, &a), -1);
	CHECK_EQ(sota_version_parse("1.2.3.4", 7, &a), -1);
	CHECK_EQ(sota_version_parse("1..3", 4, &a), -1);
	CHECK_EQ(sota_version_parse("1.2.x", 5, &a), -1);
	CHECK_EQ(sota_version_parse("01.2.3", 6, &a), -1);
	CHECK_EQ(sota_version_parse("4294967296.0.0", 14, &a), -1);
}

static void manifest_from_ota(void)
{
	size_t len, klen;
	uint8_t *pkg = unit_read_vector("v1.sota", &len);
	uint8_t *key = unit_read_vector("key.raw", &klen);
	uint8_t *other = unit_read_vector("other.raw", &klen);
	struct sota_trust trust = {SOTA_ALG_ES256, key, KEY_LEN};
	struct sota_trust wrong = {SOTA_ALG_ES256, other, KEY_LEN};
	struct sota_manifest m;
	const uint8_t *payload = NULL;

	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, &payload), SOTA_OK);
	CHECK(strcmp(m.name, "classifier") == 0 && strcmp(m.version, "1.0.0") == 0);
	CHECK(strcmp(m.section, ".wasm_model") == 0);
	CHECK_EQ(m.slot_size, 65536);
	CHECK(payload == pkg + len - m.payload_size);
	const size_t header_and_manifest = len - m.payload_size;
	CHECK_EQ(m.n_exports, 4);
	CHECK(m.has_selftest && m.selftest_len == 4 && m.selftest_expected == 1);
	CHECK(m.selftest_input[0] == 1.0f && m.selftest_input[1] == 0.5f);
	CHECK(m.has_created && m.created == 1700000000u);

	CHECK_EQ(sota_verify_package(pkg, len, &wrong, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	struct sota_version installed = {1, 0, 0};
	struct sota_policy pol = {0};
	pol.installed = &installed;
	CHECK_EQ(sota_verify_package(pkg, len, &trust, &pol, &m, NULL), SOTA_ERR_DOWNGRADE);
	pol.installed = NULL;
	pol.slot_capacity = 512;
	CHECK_EQ(sota_verify_package(pkg, len, &trust, &pol, &m, NULL), SOTA_ERR_OVERSIZE);
	/* Every truncation is a format error, never a crash. */
	int wrong_reason = 0;
	for (size_t cut = 0; cut < len; cut++) {
		wrong_reason += sota_verify_package(pkg, cut, &trust, NULL, &m, NULL) != SOTA_ERR_FORMAT;
	}
	CHECK_EQ(wrong_reason, 0);
	/* A flipped bit never yields OK: every byte of header and manifest, every 7th after. */
	int accepted = 0;
	for (size_t i = 0; i < len; i += i < header_and_manifest ? 1 : 7) {
		pkg[i] ^= 0x01;
		accepted += sota_verify_package(pkg, len, &trust, NULL, &m, NULL) == SOTA_OK;
		pkg[i] ^= 0x01;
	}
	CHECK_EQ(accepted, 0);
	free(pkg);
	free(key);
	free(other);
}

/* Random byte changes in header and manifest, random lengths: never OK, never a crash
 * (the sanitizers watch every read). */
static void fuzz_packages(void)
{
	size_t len, klen;
	uint8_t *pkg = unit_read_vector("v2.sota", &len);
	uint8_t *key = unit_read_vector("key.raw", &klen);
	uint8_t *work = malloc(len);
	struct sota_trust trust = {SOTA_ALG_ES256, key, KEY_LEN};
	struct sota_manifest m;
	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_OK);
	size_t head = len - m.payload_size;
	unsigned state = 0x2545f491u;
	int accepted = 0;
	for (int i = 0; i < 300; i++) {
		memcpy(work, pkg, len);
		int changes = 1 + (int)(unit_rand(&state) % 4);
		for (int c = 0; c < changes; c++) {
			work[unit_rand(&state) % head] = (uint8_t)unit_rand(&state);
		}
		size_t wlen = unit_rand(&state) % 8 == 0 ? unit_rand(&state) % len : len;
		if (memcmp(work, pkg, wlen) == 0 && wlen == len) {
			continue; /* the mutation changed nothing */
		}
		accepted += sota_verify_package(work, wlen, &trust, NULL, &m, NULL) == SOTA_OK;
	}
	CHECK_EQ(accepted, 0);
	free(work);
	free(pkg);
	free(key);
}

static void es256_tampering(void)
{
	size_t len, klen, elen;
	uint8_t *pkg = unit_read_vector("v2.sota", &len);
	uint8_t *key = unit_read_vector("key.raw", &klen);
	uint8_t *ed = unit_read_vector("ed25519.sota", &elen);
	struct sota_trust trust = {SOTA_ALG_ES256, key, klen};
	struct sota_manifest m;
	CHECK_EQ(klen, KEY_LEN);
	CHECK_EQ(sota_trust_alg_for_key_len(klen), SOTA_ALG_ES256);
	CHECK_EQ(sota_trust_alg_for_key_len(32), 0); /* an Ed25519 key is nothing to this core */
	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_OK);
	/* A package signed with Ed25519 (alg -8) is well formed, but its signature is refused. */
	CHECK_EQ(sota_verify_package(ed, elen, &trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	struct sota_trust ed_trust = {-8, key, 32};
	CHECK_EQ(sota_verify_package(ed, elen, &ed_trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	/* A flipped bit in the signature (r or s) or in the key is refused. */
	size_t sig_at = len - m.payload_size - 64;
	for (size_t i = 0; i < 64; i += 9) {
		pkg[sig_at + i] ^= 0x10;
		CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
		pkg[sig_at + i] ^= 0x10;
	}
	key[40] ^= 0x01; /* no longer a curve point */
	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	free(pkg);
	free(key);
	free(ed);
}

/* {1:"n", 2:"1.0.0", 3:".w", 4:10, 5:1, 6:h'00'*32, 7:[]}: the smallest valid manifest. */
static size_t good_manifest(uint8_t *out)
{
	static const uint8_t head[] = {0xa7, 0x01, 0x61, 'n', 0x02, 0x65, '1', '.', '0', '.', '0',
				       0x03, 0x62, '.', 'w', 0x04, 0x0a, 0x05, 0x01, 0x06, 0x58, 0x20};
	size_t n = sizeof(head);
	memcpy(out, head, n);
	memset(out + n, 0, 32);
	n += 32;
	out[n++] = 0x07;
	out[n++] = 0x80;
	return n;
}

/* The good manifest with a self-test {1: [input...], 2: 1} appended (8 entries). */
static size_t with_selftest(uint8_t *out, const uint8_t *input, size_t input_len)
{
	size_t n = good_manifest(out);
	out[0] = 0xa8;
	out[n++] = 0x08;
	out[n++] = 0xa2;
	out[n++] = 0x01;
	memcpy(out + n, input, input_len);
	n += input_len;
	out[n++] = 0x02;
	out[n++] = 0x01;
	return n;
}

static void selftest_numbers(void)
{
	struct sota_manifest m;
	uint8_t buf[160];
	/* Half 1.5, single 0.25, double -2.0 and the integer 3 are all numbers. */
	static const uint8_t mixed[] = {0x84, 0xf9, 0x3e, 0x00, 0xfa, 0x3e, 0x80, 0x00, 0x00, 0xfb,
					0xc0, 0, 0, 0, 0, 0, 0, 0, 0x03};
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, mixed, sizeof(mixed)), &m), SOTA_OK);
	CHECK(m.has_selftest && m.selftest_len == 4 && m.selftest_expected == 1);
	CHECK(m.selftest_input[0] == 1.5f && m.selftest_input[1] == 0.25f);
	CHECK(m.selftest_input[2] == -2.0f && m.selftest_input[3] == 3.0f);
	/* NaN, infinity, a double beyond float, text and an empty input are refused. */
	static const uint8_t nan[] = {0x81, 0xf9, 0x7e, 0x00};
	static const uint8_t inf[] = {0x81, 0xfa, 0x7f, 0x80, 0x00, 0x00};
	static const uint8_t huge[] = {0x81, 0xfb, 0x7f, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	static const uint8_t text[] = {0x81, 0x61, 'x'};
	static const uint8_t empty[] = {0x80};
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, nan, sizeof(nan)), &m),
		 SOTA_ERR_FORMAT);
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, inf, sizeof(inf)), &m),
		 SOTA_ERR_FORMAT);
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, huge, sizeof(huge)), &m),
		 SOTA_ERR_FORMAT);
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, text, sizeof(text)), &m),
		 SOTA_ERR_FORMAT);
	CHECK_EQ(sota_manifest_decode(buf, with_selftest(buf, empty, sizeof(empty)), &m),
		 SOTA_ERR_FORMAT);
}

static void cose_structure(void)
{
	struct sota_cose c;
	/* 18([h'a10126', {4: h'0102'}, h'a0', h'00']) and the same untagged. */
	static const uint8_t tagged[] = {0xd2, 0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x04, 0x42,
					 0x01, 0x02, 0x41, 0xa0, 0x41, 0x00};
	CHECK_EQ(sota_cose_decode(tagged, sizeof(tagged), &c), SOTA_OK);
	CHECK(c.alg == SOTA_ALG_ES256 && c.has_kid && c.kid_len == 2 && c.payload_len == 1);
	CHECK_EQ(sota_cose_decode(tagged + 1, sizeof(tagged) - 1, &c), SOTA_OK);
	uint8_t bad[sizeof(tagged) + 1];
	/* Another tag (19), a byte after the structure, a protected header with a second
	 * label, an unprotected header with label 5, three items instead of four. */
	memcpy(bad, tagged, sizeof(tagged));
	bad[0] = 0xd3;
	CHECK_EQ(sota_cose_decode(bad, sizeof(tagged), &c), SOTA_ERR_FORMAT);
	memcpy(bad, tagged, sizeof(tagged));
	bad[sizeof(tagged)] = 0x00;
	CHECK_EQ(sota_cose_decode(bad, sizeof(tagged) + 1, &c), SOTA_ERR_FORMAT);
	static const uint8_t two_labels[] = {0x84, 0x45, 0xa2, 0x01, 0x26, 0x04, 0x00, 0xa0,
					     0x41, 0xa0, 0x41, 0x00};
	CHECK_EQ(sota_cose_decode(two_labels, sizeof(two_labels), &c), SOTA_ERR_FORMAT);
	static const uint8_t label5[] = {0x84, 0x43, 0xa1, 0x01, 0x26, 0xa1, 0x05, 0x40,
					 0x41, 0xa0, 0x41, 0x00};
	CHECK_EQ(sota_cose_decode(label5, sizeof(label5), &c), SOTA_ERR_FORMAT);
	static const uint8_t three[] = {0x83, 0x43, 0xa1, 0x01, 0x26, 0xa0, 0x41, 0xa0};
	CHECK_EQ(sota_cose_decode(three, sizeof(three), &c), SOTA_ERR_FORMAT);
	/* A protected header with trailing bytes inside its byte string. */
	static const uint8_t prot_tail[] = {0x84, 0x44, 0xa1, 0x01, 0x26, 0x00, 0xa0,
					    0x41, 0xa0, 0x41, 0x00};
	CHECK_EQ(sota_cose_decode(prot_tail, sizeof(prot_tail), &c), SOTA_ERR_FORMAT);
}

static void manifest_maps(void)
{
	struct sota_manifest m;
	uint8_t good[128];
	size_t n = good_manifest(good);
	CHECK_EQ(sota_manifest_decode(good, n, &m), SOTA_OK);
	CHECK_EQ(m.slot_size, 10);
	CHECK(!m.has_selftest && !m.has_created && m.n_exports == 0);

	uint8_t bad[132];
	/* An unknown key (10) is refused. */
	memcpy(bad, good, n);
	bad[0] = 0xa8;
	bad[n] = 0x0a;
	bad[n + 1] = 0x00;
	CHECK_EQ(sota_manifest_decode(bad, n + 2, &m), SOTA_ERR_FORMAT);
	/* A missing required key (7) is refused. */
	memcpy(bad, good, n - 2);
	bad[0] = 0xa6;
	CHECK_EQ(sota_manifest_decode(bad, n - 2, &m), SOTA_ERR_FORMAT);
	/* A bad version string is a format error. */
	memcpy(bad, good, n);
	bad[8] = 'x';
	CHECK_EQ(sota_manifest_decode(bad, n, &m), SOTA_ERR_FORMAT);
	/* Bytes after the map. */
	memcpy(bad, good, n);
	bad[n] = 0x00;
	CHECK_EQ(sota_manifest_decode(bad, n + 1, &m), SOTA_ERR_FORMAT);
	/* Keys out of order (2 before 1), and a repeated key, are refused. */
	memcpy(bad, good, n);
	memcpy(bad + 1, good + 4, 7);
	memcpy(bad + 8, good + 1, 3);
	CHECK_EQ(sota_manifest_decode(bad, n, &m), SOTA_ERR_FORMAT);
	memcpy(bad, good, n);
	bad[4] = 0x01; /* key 2 becomes a second key 1 */
	CHECK_EQ(sota_manifest_decode(bad, n, &m), SOTA_ERR_FORMAT);
	/* A 33-byte sha256, a text name with a NUL, a name longer than 64 bytes. */
	memcpy(bad, good, n);
	bad[21] = 0x21;
	bad[n] = 0x00;
	CHECK_EQ(sota_manifest_decode(bad, n + 1, &m), SOTA_ERR_FORMAT);
	memcpy(bad, good, n);
	bad[3] = '\0';
	CHECK_EQ(sota_manifest_decode(bad, n, &m), SOTA_ERR_FORMAT);
	uint8_t longname[200];
	longname[0] = 0xa7;
	longname[1] = 0x01;
	longname[2] = 0x78;
	longname[3] = 65;
	memset(longname + 4, 'n', 65);
	memcpy(longname + 69, good + 4, n - 4);
	CHECK_EQ(sota_manifest_decode(longname, 69 + n - 4, &m), SOTA_ERR_FORMAT);
	longname[3] = 64;
	memmove(longname + 68, longname + 69, n - 4);
	CHECK_EQ(sota_manifest_decode(longname, 68 + n - 4, &m), SOTA_OK);
	/* Indefinite-length map, as cbor2 (ota's decoder) also reads it. */
	memcpy(bad, good, n);
	bad[0] = 0xbf;
	bad[n] = 0xff;
	CHECK_EQ(sota_manifest_decode(bad, n + 1, &m), SOTA_OK);
	/* payload_size > slot_size is oversize. */
	m.slot_size = 10;
	m.payload_size = 11;
	CHECK_EQ(sota_manifest_check_size(&m, 0), SOTA_ERR_OVERSIZE);
	m.payload_size = 10;
	CHECK_EQ(sota_manifest_check_size(&m, 0), SOTA_OK);
	CHECK_EQ(sota_manifest_check_size(&m, 9), SOTA_ERR_OVERSIZE);
}

static void headers_and_names(void)
{
	uint32_t mlen;
	uint8_t hdr[12] = {'S', 'O', 'T', 'A', 1, 0, 0, 0, 0x10, 0, 0, 0};
	CHECK_EQ(sota_header_parse(hdr, &mlen), SOTA_OK);
	CHECK_EQ(mlen, 16);
	hdr[4] = 2;
	CHECK_EQ(sota_header_parse(hdr, &mlen), SOTA_ERR_FORMAT);
	hdr[4] = 1;
	hdr[9] = 0x40; /* 16400 > 16384 */
	CHECK_EQ(sota_header_parse(hdr, &mlen), SOTA_ERR_FORMAT);
	CHECK(strcmp(sota_err_name(SOTA_ERR_SIGNATURE), "signature") == 0);
	CHECK(strcmp(sota_err_name(SOTA_ERR_CRYPTO), "crypto") == 0);
	CHECK(strcmp(sota_err_name((enum sota_err)99), "unknown") == 0);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_OVERSIZE), 50);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_FORMAT), 54);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_HASH), 53);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_SELFTEST), 58);
}

void test_cbor_manifest(void)
{
	versions();
	manifest_from_ota();
	es256_tampering();
	fuzz_packages();
	manifest_maps();
	selftest_numbers();
	cose_structure();
	headers_and_names();
}
