/*
 * Ed25519 verification, following the structure of TweetNaCl (public domain): field elements
 * as 16 signed 64-bit limbs of 16 bits, extended twisted-Edwards coordinates, a plain
 * double-and-add ladder. Verification handles only public data, so speed and size win over
 * constant time. Written for this project; shifts of negative values are avoided (UBSan-clean).
 */
#include "sota/ed25519.h"

#include <string.h>

typedef int64_t gf[16];

static const gf gf0;
static const gf gf1 = {1};
static const gf D = {0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070,
		     0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203};
static const gf D2 = {0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0,
		      0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406};
static const gf BX = {0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c,
		      0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169};
static const gf BY = {0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666,
		      0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666};
static const gf SQRTM1 = {0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43,
			  0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83};

/* The group order L = 2^252 + 27742317777372353535851937790883648493, little endian. */
static const int64_t L[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
			      0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
			      0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};

static void set(gf r, const gf a) { memcpy(r, a, sizeof(gf)); }

static void carry(gf o)
{
	for (int i = 0; i < 16; i++) {
		int64_t c = o[i] >> 16; /* arithmetic shift: floor division by 2^16 */
		o[i] -= c * 65536;
		if (i < 15) {
			o[i + 1] += c;
		} else {
			o[0] += 38 * c; /* 2^256 = 38 mod p */
		}
	}
}

static void cswap(gf p, gf q, int b)
{
	int64_t mask = -(int64_t)b;
	for (int i = 0; i < 16; i++) {
		int64_t t = mask & (p[i] ^ q[i]);
		p[i] ^= t;
		q[i] ^= t;
	}
}

static void pack25519(uint8_t o[32], const gf n)
{
	gf m, t;
	set(t, n);
	carry(t);
	carry(t);
	carry(t);
	for (int j = 0; j < 2; j++) {
		m[0] = t[0] - 0xffed;
		for (int i = 1; i < 15; i++) {
			m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
			m[i - 1] &= 0xffff;
		}
		m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
		int b = (int)((m[15] >> 16) & 1);
		m[14] &= 0xffff;
		cswap(t, m, 1 - b);
	}
	for (int i = 0; i < 16; i++) {
		o[2 * i] = (uint8_t)(t[i] & 0xff);
		o[2 * i + 1] = (uint8_t)((t[i] >> 8) & 0xff);
	}
}

static int neq25519(const gf a, const gf b)
{
	uint8_t c[32], d[32];
	pack25519(c, a);
	pack25519(d, b);
	return memcmp(c, d, 32) != 0;
}

static int par25519(const gf a)
{
	uint8_t d[32];
	pack25519(d, a);
	return d[0] & 1;
}

static void unpack25519(gf o, const uint8_t n[32])
{
	for (int i = 0; i < 16; i++) {
		o[i] = n[2 * i] + ((int64_t)n[2 * i + 1] << 8);
	}
	o[15] &= 0x7fff;
}

static void fadd(gf o, const gf a, const gf b)
{
	for (int i = 0; i < 16; i++) {
		o[i] = a[i] + b[i];
	}
}

static void fsub(gf o, const gf a, const gf b)
{
	for (int i = 0; i < 16; i++) {
		o[i] = a[i] - b[i];
	}
}

static void fmul(gf o, const gf a, const gf b)
{
	int64_t t[31] = {0};
	for (int i = 0; i < 16; i++) {
		for (int j = 0; j < 16; j++) {
			t[i + j] += a[i] * b[j];
		}
	}
	for (int i = 0; i < 15; i++) {
		t[i] += 38 * t[i + 16];
	}
	for (int i = 0; i < 16; i++) {
		o[i] = t[i];
	}
	carry(o);
	carry(o);
}

static void fsq(gf o, const gf a) { fmul(o, a, a); }

/* a^(2^252 - 3), the square-root helper for point decompression. */
static void pow2523(gf o, const gf i)
{
	gf c;
	set(c, i);
	for (int a = 250; a >= 0; a--) {
		fsq(c, c);
		if (a != 1) {
			fmul(c, c, i);
		}
	}
	set(o, c);
}

/* a^(p - 2) = 1/a. */
static void inv25519(gf o, const gf i)
{
	gf c;
	set(c, i);
	for (int a = 253; a >= 0; a--) {
		fsq(c, c);
		if (a != 2 && a != 4) {
			fmul(c, c, i);
		}
	}
	set(o, c);
}

/* p += q in extended coordinates (X, Y, Z, T). */
static void padd(gf p[4], gf q[4])
{
	gf a, b, c, d, t, e, f, g, h;
	fsub(a, p[1], p[0]);
	fsub(t, q[1], q[0]);
	fmul(a, a, t);
	fadd(b, p[0], p[1]);
	fadd(t, q[0], q[1]);
	fmul(b, b, t);
	fmul(c, p[3], q[3]);
	fmul(c, c, D2);
	fmul(d, p[2], q[2]);
	fadd(d, d, d);
	fsub(e, b, a);
	fsub(f, d, c);
	fadd(g, d, c);
	fadd(h, b, a);
	fmul(p[0], e, f);
	fmul(p[1], h, g);
	fmul(p[2], g, f);
	fmul(p[3], e, h);
}

static void pswap(gf p[4], gf q[4], int b)
{
	for (int i = 0; i < 4; i++) {
		cswap(p[i], q[i], b);
	}
}

static void ppack(uint8_t r[32], gf p[4])
{
	gf tx, ty, zi;
	inv25519(zi, p[2]);
	fmul(tx, p[0], zi);
	fmul(ty, p[1], zi);
	pack25519(r, ty);
	r[31] ^= (uint8_t)(par25519(tx) << 7);
}

/* p = s * q for a 256-bit little-endian scalar s; q is clobbered. */
static void scalarmult(gf p[4], gf q[4], const uint8_t s[32])
{
	set(p[0], gf0);
	set(p[1], gf1);
	set(p[2], gf1);
	set(p[3], gf0);
	for (int i = 255; i >= 0; i--) {
		int b = (s[i / 8] >> (i & 7)) & 1;
		pswap(p, q, b);
		padd(q, p);
		padd(p, p);
		pswap(p, q, b);
	}
}

static void scalarbase(gf p[4], const uint8_t s[32])
{
	gf q[4];
	set(q[0], BX);
	set(q[1], BY);
	set(q[2], gf1);
	fmul(q[3], BX, BY);
	scalarmult(p, q, s);
}

/* Decode a public key into -A; -1 when the encoding is not a curve point. */
static int unpackneg(gf r[4], const uint8_t p[32])
{
	gf t, chk, num, den, den2, den4, den6;
	set(r[2], gf1);
	unpack25519(r[1], p);
	fsq(num, r[1]);
	fmul(den, num, D);
	fsub(num, num, r[2]);
	fadd(den, r[2], den);
	fsq(den2, den);
	fsq(den4, den2);
	fmul(den6, den4, den2);
	fmul(t, den6, num);
	fmul(t, t, den);
	pow2523(t, t);
	fmul(t, t, num);
	fmul(t, t, den);
	fmul(t, t, den);
	fmul(r[0], t, den);
	fsq(chk, r[0]);
	fmul(chk, chk, den);
	if (neq25519(chk, num)) {
		fmul(r[0], r[0], SQRTM1);
	}
	fsq(chk, r[0]);
	fmul(chk, chk, den);
	if (neq25519(chk, num)) {
		return -1;
	}
	if (par25519(r[0]) == (p[31] >> 7)) {
		fsub(r[0], gf0, r[0]);
	}
	fmul(r[3], r[0], r[1]);
	return 0;
}

/* r = x mod L for a 512-bit little-endian x given as 64 limbs of one byte each. */
static void mod_l(uint8_t r[32], int64_t x[64])
{
	int64_t c;
	int j;
	for (int i = 63; i >= 32; i--) {
		c = 0;
		for (j = i - 32; j < i - 12; j++) {
			x[j] += c - 16 * x[i] * L[j - (i - 32)];
			c = (x[j] + 128) >> 8;
			x[j] -= c * 256;
		}
		x[j] += c;
		x[i] = 0;
	}
	c = 0;
	for (j = 0; j < 32; j++) {
		x[j] += c - (x[31] >> 4) * L[j];
		c = x[j] >> 8;
		x[j] &= 255;
	}
	for (j = 0; j < 32; j++) {
		x[j] -= c * L[j];
	}
	for (int i = 0; i < 32; i++) {
		x[i + 1] += x[i] >> 8;
		r[i] = (uint8_t)(x[i] & 255);
	}
}

/* RFC 8032 requires S < L (no malleable signatures). */
static int scalar_is_canonical(const uint8_t s[32])
{
	for (int i = 31; i >= 0; i--) {
		if (s[i] < L[i]) {
			return 1;
		}
		if (s[i] > L[i]) {
			return 0;
		}
	}
	return 0; /* S == L */
}

void sota_ed25519_verify_init(struct sota_ed25519_verify *v, const uint8_t sig[64],
			      const uint8_t pk[32])
{
	memcpy(v->sig, sig, 64);
	memcpy(v->pk, pk, 32);
	sota_sha512_init(&v->h);
	sota_sha512_update(&v->h, sig, 32);
	sota_sha512_update(&v->h, pk, 32);
}

void sota_ed25519_verify_update(struct sota_ed25519_verify *v, const void *msg, size_t len)
{
	sota_sha512_update(&v->h, msg, len);
}

int sota_ed25519_verify_final(struct sota_ed25519_verify *v)
{
	uint8_t digest[64], k[32], check[32];
	int64_t x[64];
	gf p[4], q[4];

	sota_sha512_final(&v->h, digest);
	if (!scalar_is_canonical(v->sig + 32)) {
		return -1;
	}
	if (unpackneg(q, v->pk) != 0) {
		return -1;
	}
	for (int i = 0; i < 64; i++) {
		x[i] = digest[i];
	}
	mod_l(k, x);
	scalarmult(p, q, k);
	scalarbase(q, v->sig + 32);
	padd(p, q);
	ppack(check, p);
	return memcmp(check, v->sig, 32) == 0 ? 0 : -1;
}

int sota_ed25519_verify(const uint8_t sig[64], const uint8_t pk[32], const void *msg, size_t len)
{
	struct sota_ed25519_verify v;
	sota_ed25519_verify_init(&v, sig, pk);
	sota_ed25519_verify_update(&v, msg, len);
	return sota_ed25519_verify_final(&v);
}
