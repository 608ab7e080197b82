/*
 * The core's crypto wrapper over PSA Crypto (mbed TLS): SHA-256 against FIPS 180-4 vectors,
 * whole and in pieces, and ES256 against a signature made by ota.keys, with tampered inputs.
 */
#include <stdlib.h>
#include <string.h>

#include "sota/crypto.h"
#include "unit.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		sscanf(s + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
}

static void sha256_vectors(void)
{
	uint8_t d[32], want[32];
	CHECK_EQ(sota_crypto_init(), 0);
	CHECK_EQ(sota_crypto_init(), 0); /* twice is fine: the core calls it before each use */
	CHECK_EQ(sota_sha256("abc", 3, d), 0);
	hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
	CHECK_EQ(sota_sha256("", 0, d), 0);
	hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
	/* One million 'a' in 1003 uneven pieces (and empty ones): the pieces API. */
	static uint8_t a[997];
	static struct sota_piece pieces[1010];
	memset(a, 'a', sizeof(a));
	size_t left = 1000000, n = 0;
	while (left) {
		size_t k = left < sizeof(a) ? left : sizeof(a);
		pieces[n].data = a;
		pieces[n++].len = k;
		if (n % 300 == 0) {
			pieces[n].data = a;
			pieces[n++].len = 0;
		}
		left -= k;
	}
	CHECK(n <= sizeof(pieces) / sizeof(pieces[0]));
	CHECK_EQ(sota_sha256_pieces(pieces, n, d), 0);
	hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
	/* "abc" in three pieces equals the one-shot digest. */
	const struct sota_piece abc[] = {{"a", 1}, {"", 0}, {"bc", 2}};
	CHECK_EQ(sota_sha256_pieces(abc, 3, d), 0);
	hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
}

static void es256_vectors(void)
{
	size_t kl, dl, sl;
	uint8_t *key = unit_read_vector("key.raw", &kl);
	uint8_t *other = unit_read_vector("other.raw", &kl);
	uint8_t *digest = unit_read_vector("es256.sha256", &dl);
	uint8_t *sig = unit_read_vector("es256.sig", &sl);
	CHECK(kl == SOTA_P256_KEY_LEN && dl == SOTA_SHA256_LEN && sl == SOTA_ES256_SIG_LEN);
	CHECK_EQ(sota_es256_verify(key, digest, sig), 0);
	CHECK_EQ(sota_es256_verify(other, digest, sig), -1);
	/* A flipped bit anywhere in r, s or the digest is refused. */
	int accepted = 0;
	for (int bit = 0; bit < 512; bit += 7) {
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += sota_es256_verify(key, digest, sig) == 0;
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	for (int bit = 0; bit < 256; bit += 5) {
		digest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += sota_es256_verify(key, digest, sig) == 0;
		digest[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ(accepted, 0);
	/* r = 0 and s = n (the group order) are out of range. */
	uint8_t bad[64];
	memcpy(bad, sig, 64);
	memset(bad, 0, 32);
	CHECK_EQ(sota_es256_verify(key, digest, bad), -1);
	memcpy(bad, sig, 64);
	hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", bad + 32, 32);
	CHECK_EQ(sota_es256_verify(key, digest, bad), -1);
	/* A key that is not a point of the curve, or not in uncompressed form. */
	uint8_t off_curve[SOTA_P256_KEY_LEN];
	memcpy(off_curve, key, sizeof(off_curve));
	off_curve[40] ^= 0x01;
	CHECK_EQ(sota_es256_verify(off_curve, digest, sig), -1);
	memcpy(off_curve, key, sizeof(off_curve));
	off_curve[0] = 0x02;
	CHECK_EQ(sota_es256_verify(off_curve, digest, sig), -1);
	free(key);
	free(other);
	free(digest);
	free(sig);
}

void test_crypto(void)
{
	sha256_vectors();
	es256_vectors();
}
