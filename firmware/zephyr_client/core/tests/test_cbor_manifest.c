/* CBOR reader, versions, COSE and manifest decoding, one-shot package verification. */
#include <stdlib.h>
#include <string.h>

#include "sota/cbor.h"
#include "sota/sota.h"
#include "unit.h"

static void cbor_reader(void)
{
	struct sota_cbor c;
	uint64_t u;
	int64_t i;
	float f;
	size_t n;
	const uint8_t *b;

	static const uint8_t ints[] = {0x18, 0xff, 0x39, 0x01, 0x00, 0x1b, 0, 0, 0, 1, 0, 0, 0, 0};
	sota_cbor_init(&c, ints, sizeof(ints));
	CHECK(sota_cbor_uint(&c, &u) && u == 255);
	CHECK(sota_cbor_int(&c, &i) && i == -257);
	CHECK(sota_cbor_uint(&c, &u) && u == 4294967296ull);
	CHECK(sota_cbor_at_end(&c));

	/* A byte string longer than the buffer, and truncated heads, are errors. */
	static const uint8_t longstr[] = {0x45, 1, 2};
	sota_cbor_init(&c, longstr, sizeof(longstr));
	CHECK(!sota_cbor_bstr(&c, &b, &n) && c.err);
	static const uint8_t trunc[] = {0x19, 0x01};
	sota_cbor_init(&c, trunc, sizeof(trunc));
	CHECK(!sota_cbor_uint(&c, &u));
	/* Indefinite lengths are refused. */
	static const uint8_t indef[] = {0x9f, 0x01, 0xff};
	sota_cbor_init(&c, indef, sizeof(indef));
	CHECK(!sota_cbor_array(&c, &n));
	/* A map claiming more entries than bytes left. */
	static const uint8_t bigmap[] = {0xb8, 0x20, 0x01};
	sota_cbor_init(&c, bigmap, sizeof(bigmap));
	CHECK(!sota_cbor_map(&c, &n));
	/* Floats: half 1.5, single 0.25, double -2.0, and an integer. */
	static const uint8_t floats[] = {0xf9, 0x3e, 0x00, 0xfa, 0x3e, 0x80, 0x00, 0x00,
					 0xfb, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0x03};
	sota_cbor_init(&c, floats, sizeof(floats));
	CHECK(sota_cbor_float(&c, &f) && f == 1.5f);
	CHECK(sota_cbor_float(&c, &f) && f == 0.25f);
	CHECK(sota_cbor_float(&c, &f) && f == -2.0f);
	CHECK(sota_cbor_float(&c, &f) && f == 3.0f);
	/* Skip over nested containers; too deep nesting is an error, not a stack overflow. */
	static const uint8_t nested[] = {0x82, 0xa1, 0x01, 0x81, 0x40, 0x63, 'a', 'b', 'c', 0x07};
	sota_cbor_init(&c, nested, sizeof(nested));
	CHECK(sota_cbor_skip(&c) && sota_cbor_uint(&c, &u) && u == 7);
	uint8_t deep[64];
	memset(deep, 0x81, sizeof(deep));
	sota_cbor_init(&c, deep, sizeof(deep));
	CHECK(!sota_cbor_skip(&c));
}

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
	struct sota_trust trust = {SOTA_ALG_EDDSA, key, 32};
	struct sota_trust wrong = {SOTA_ALG_EDDSA, other, 32};
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
	struct sota_trust trust = {SOTA_ALG_EDDSA, key, 32};
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

static void es256_from_ota(void)
{
	size_t len, klen, elen;
	uint8_t *pkg = unit_read_vector("es256.sota", &len);
	uint8_t *p256 = unit_read_vector("p256.raw", &klen);
	uint8_t *ed = unit_read_vector("key.raw", &elen);
	struct sota_trust trust = {SOTA_ALG_ES256, p256, klen};
	struct sota_trust ed_trust = {SOTA_ALG_EDDSA, ed, elen};
	struct sota_manifest m;
	CHECK_EQ(klen, 65);
	CHECK_EQ(sota_trust_alg_for_key_len(klen), SOTA_ALG_ES256);
	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_OK);
	CHECK_EQ(sota_verify_package(pkg, len, &ed_trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	/* A flipped bit in the signature (r or s) or in the key is refused. */
	size_t sig_at = len - m.payload_size - 64;
	for (size_t i = 0; i < 64; i += 9) {
		pkg[sig_at + i] ^= 0x10;
		CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
		pkg[sig_at + i] ^= 0x10;
	}
	p256[40] ^= 0x01; /* no longer a curve point */
	CHECK_EQ(sota_verify_package(pkg, len, &trust, NULL, &m, NULL), SOTA_ERR_SIGNATURE);
	free(pkg);
	free(p256);
	free(ed);
}

static void manifest_maps(void)
{
	struct sota_manifest m;
	/* {1:"n", 2:"1.0.0", 3:".w", 4:10, 5:1, 6:h'00'*32, 7:[]} */
	uint8_t good[128];
	size_t n = 0;
	static const uint8_t head[] = {0xa7, 0x01, 0x61, 'n', 0x02, 0x65, '1', '.', '0', '.', '0',
				       0x03, 0x62, '.', 'w', 0x04, 0x0a, 0x05, 0x01, 0x06, 0x58, 0x20};
	memcpy(good, head, sizeof(head));
	n = sizeof(head);
	memset(good + n, 0, 32);
	n += 32;
	good[n++] = 0x07;
	good[n++] = 0x80;
	CHECK_EQ(sota_manifest_decode(good, n, &m), SOTA_OK);
	CHECK_EQ(m.slot_size, 10);

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
	CHECK(strcmp(sota_err_name((enum sota_err)99), "unknown") == 0);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_OVERSIZE), 50);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_FORMAT), 54);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_HASH), 53);
	CHECK_EQ(sota_err_update_result(SOTA_ERR_SELFTEST), 58);
}

void test_cbor_manifest(void)
{
	cbor_reader();
	versions();
	manifest_from_ota();
	es256_from_ota();
	fuzz_packages();
	manifest_maps();
	headers_and_names();
}
