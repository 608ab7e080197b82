/* SHA-256/512 against FIPS 180-4 vectors; Ed25519 against RFC 8032 and tampered inputs. */
#include <string.h>

#include "sota/ed25519.h"
#include "sota/sha2.h"
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
	sota_sha256("abc", 3, d);
	hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
	sota_sha256("", 0, d);
	hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
	/* One million 'a' in uneven pieces: exercises block boundaries of the incremental API. */
	struct sota_sha256 s;
	uint8_t a[997];
	memset(a, 'a', sizeof(a));
	sota_sha256_init(&s);
	size_t left = 1000000;
	while (left) {
		size_t n = left < sizeof(a) ? left : sizeof(a);
		sota_sha256_update(&s, a, n);
		left -= n;
	}
	sota_sha256_final(&s, d);
	hex("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", want, 32);
	CHECK(memcmp(d, want, 32) == 0);
}

static void sha512_vectors(void)
{
	uint8_t d[64], want[64];
	struct sota_sha512 s;
	sota_sha512_init(&s);
	sota_sha512_update(&s, "abc", 3);
	sota_sha512_final(&s, d);
	hex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	    want, 64);
	CHECK(memcmp(d, want, 64) == 0);
	const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
			"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	sota_sha512_init(&s);
	sota_sha512_update(&s, m, strlen(m));
	sota_sha512_final(&s, d);
	hex("8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018"
	    "501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
	    want, 64);
	CHECK(memcmp(d, want, 64) == 0);
	/* 'a' * n for lengths around the padding boundary (length field in 112..127). */
	static const struct {
		size_t n;
		const char *hex;
	} tail[] = {
		{111, "fa9121c7b32b9e01733d034cfc78cbf67f926c7ed83e82200ef8681819692176"
		     "0b4beff48404df811b953828274461673c68d04e297b0eb7b2b4d60fc6b566a2"},
		{112, "c01d080efd492776a1c43bd23dd99d0a2e626d481e16782e75d54c2503b5dc32"
		     "bd05f0f1ba33e568b88fd2d970929b719ecbb152f58f130a407c8830604b70ca"},
		{119, "130396a75cb483f2eee8c56d8a668bb3d2641f5243212c0bee2bd33da096ad9e"
		     "b8179fe18f9eaacf76e09fae9de4c3f14ba13341e345be05bf76c182cc3468cb"},
		{120, "f241de612b01aa2fa3cf01531d2a8e5e17fc761dfd48a704a834a47f57d6eade"
		     "7804ecc39be42fdef16ec6adeaf7c01c2fd0c4cc97d3860907cfa4a3b36d0c05"},
		{127, "828613968b501dc00a97e08c73b118aa8876c26b8aac93df128502ab360f91ba"
		     "b50a51e088769a5c1eff4782ace147dce3642554199876374291f5d921629502"},
		{128, "b73d1929aa615934e61a871596b3f3b33359f42b8175602e89f7e06e5f658a24"
		     "3667807ed300314b95cacdd579f3e33abdfbe351909519a846d465c59582f321"},
		{239, "52c853cb8d907f3d4d6b889beb027985d7c273486d75f8baf26f80d24e90c74c"
		     "6c3de3e22131582380a7d14d43f2941a31385439cd6ddc469f628015e50bf286"},
		{240, "4c296d90c61052a62ffb1dd196f1b7b09373b1f93e71836baebf89690546b759"
		     "5684dbe9467a8e484fa0d1094272b4344a7c24f5fee8daedeb0bf549c985ab5f"},
	};
	uint8_t a[256];
	memset(a, 'a', sizeof(a));
	for (size_t i = 0; i < sizeof(tail) / sizeof(tail[0]); i++) {
		sota_sha512_init(&s);
		sota_sha512_update(&s, a, tail[i].n);
		sota_sha512_final(&s, d);
		hex(tail[i].hex, want, 64);
		CHECK(memcmp(d, want, 64) == 0);
	}
}

static void ed25519_vectors(void)
{
	uint8_t pk[32], sig[64];
	/* RFC 8032 section 7.1, test 1 (empty message) and test 2 (one byte). */
	hex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", pk, 32);
	hex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	    sig, 64);
	CHECK_EQ(sota_ed25519_verify(sig, pk, "", 0), 0);
	CHECK_EQ(sota_ed25519_verify(sig, pk, "x", 1), -1);

	hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", pk, 32);
	hex("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	    sig, 64);
	const uint8_t msg = 0x72;
	CHECK_EQ(sota_ed25519_verify(sig, pk, &msg, 1), 0);
	/* A flipped bit in every byte of the signature is refused. */
	int accepted = 0;
	for (int bit = 0; bit < 512; bit += 9) {
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		accepted += sota_ed25519_verify(sig, pk, &msg, 1) == 0;
		sig[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	CHECK_EQ(accepted, 0);
	/* S + L (a malleated, non-canonical scalar) is refused. */
	static const uint8_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
				      0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
				      0,    0,    0,    0,    0,    0,    0,    0,
				      0,    0,    0,    0,    0,    0,    0,    0x10};
	uint8_t mall[64];
	memcpy(mall, sig, 64);
	unsigned carry = 0;
	for (int i = 0; i < 32; i++) {
		unsigned v = mall[32 + i] + L[i] + carry;
		mall[32 + i] = (uint8_t)v;
		carry = v >> 8;
	}
	CHECK_EQ(sota_ed25519_verify(mall, pk, &msg, 1), -1);
	/* A public key that is not a curve point is refused. */
	uint8_t bad_pk[32];
	memset(bad_pk, 0, sizeof(bad_pk));
	bad_pk[0] = 2;
	CHECK_EQ(sota_ed25519_verify(sig, bad_pk, &msg, 1), -1);
	/* Incremental and one-shot agree. */
	struct sota_ed25519_verify v;
	sota_ed25519_verify_init(&v, sig, pk);
	sota_ed25519_verify_update(&v, &msg, 1);
	sota_ed25519_verify_update(&v, "", 0);
	CHECK_EQ(sota_ed25519_verify_final(&v), 0);
}

void test_crypto(void)
{
	sha256_vectors();
	sha512_vectors();
	ed25519_vectors();
}
