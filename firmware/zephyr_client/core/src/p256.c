/*
 * ECDSA P-256 verification. Field and scalar arithmetic share one Montgomery multiplication
 * over eight 32-bit limbs (little endian); points use Jacobian coordinates with the a = -3
 * doubling; u1*G + u2*Q is one Shamir ladder. Verification only handles public data, so the
 * code favours size over constant time. Written for this project.
 */
#include "sota/p256.h"

#include <stdbool.h>
#include <string.h>

typedef uint32_t fe[8];

struct modulus {
	fe m;
	uint32_t minv; /* -m^-1 mod 2^32 */
	fe r2;         /* 2^512 mod m */
};

static const struct modulus P = {
	{0xffffffff, 0xffffffff, 0xffffffff, 0x00000000, 0x00000000, 0x00000000, 0x00000001, 0xffffffff},
	0x00000001,
	{0x00000003, 0x00000000, 0xffffffff, 0xfffffffb, 0xfffffffe, 0xffffffff, 0xfffffffd, 0x00000004},
};
static const struct modulus N = {
	{0xfc632551, 0xf3b9cac2, 0xa7179e84, 0xbce6faad, 0xffffffff, 0xffffffff, 0x00000000, 0xffffffff},
	0xee00bc4f,
	{0xbe79eea2, 0x83244c95, 0x49bd6fa6, 0x4699799c, 0x2b6bec59, 0x2845b239, 0xf3d95620, 0x66e12d94},
};
/* Curve constant b and the base point, already in P's Montgomery form. */
static const fe B_M = {0x29c4bddf, 0xd89cdf62, 0x78843090, 0xacf005cd,
		       0xf7212ed6, 0xe5a220ab, 0x04874834, 0xdc30061d};
static const fe GX_M = {0x18a9143c, 0x79e730d4, 0x5fedb601, 0x75ba95fc,
			0x77622510, 0x79fb732b, 0xa53755c6, 0x18905f76};
static const fe GY_M = {0xce95560a, 0xddf25357, 0xba19e45c, 0x8b4ab8e4,
			0xdd21f325, 0xd2e88688, 0x25885d85, 0x8571ff18};
static const fe ONE_M = {0x00000001, 0x00000000, 0x00000000, 0xffffffff,
			 0xffffffff, 0xffffffff, 0xfffffffe, 0x00000000};
static const fe ONE = {1};

static int cmp(const fe a, const fe b)
{
	for (int i = 7; i >= 0; i--) {
		if (a[i] != b[i]) {
			return a[i] < b[i] ? -1 : 1;
		}
	}
	return 0;
}

static bool is_zero(const fe a)
{
	uint32_t acc = 0;
	for (int i = 0; i < 8; i++) {
		acc |= a[i];
	}
	return acc == 0;
}

static uint32_t add(fe r, const fe a, const fe b)
{
	uint64_t c = 0;
	for (int i = 0; i < 8; i++) {
		c += (uint64_t)a[i] + b[i];
		r[i] = (uint32_t)c;
		c >>= 32;
	}
	return (uint32_t)c;
}

static uint32_t sub(fe r, const fe a, const fe b)
{
	uint64_t borrow = 0;
	for (int i = 0; i < 8; i++) {
		uint64_t d = (uint64_t)a[i] - b[i] - borrow;
		r[i] = (uint32_t)d;
		borrow = (d >> 32) & 1;
	}
	return (uint32_t)borrow;
}

static void mod_add(fe r, const fe a, const fe b, const struct modulus *m)
{
	if (add(r, a, b) || cmp(r, m->m) >= 0) {
		sub(r, r, m->m);
	}
}

static void mod_sub(fe r, const fe a, const fe b, const struct modulus *m)
{
	if (sub(r, a, b)) {
		add(r, r, m->m);
	}
}

/* r = a * b / 2^256 mod m (CIOS Montgomery multiplication). */
static void mont_mul(fe r, const fe a, const fe b, const struct modulus *m)
{
	uint32_t t[10] = {0};
	for (int i = 0; i < 8; i++) {
		uint64_t c = 0;
		for (int j = 0; j < 8; j++) {
			c = (uint64_t)t[j] + (uint64_t)a[j] * b[i] + (c >> 32);
			t[j] = (uint32_t)c;
		}
		c = (uint64_t)t[8] + (c >> 32);
		t[8] = (uint32_t)c;
		t[9] = (uint32_t)(c >> 32);
		uint32_t q = t[0] * m->minv;
		c = (uint64_t)t[0] + (uint64_t)q * m->m[0];
		for (int j = 1; j < 8; j++) {
			c = (uint64_t)t[j] + (uint64_t)q * m->m[j] + (c >> 32);
			t[j - 1] = (uint32_t)c;
		}
		c = (uint64_t)t[8] + (c >> 32);
		t[7] = (uint32_t)c;
		t[8] = t[9] + (uint32_t)(c >> 32);
	}
	fe out;
	memcpy(out, t, sizeof(out));
	if (t[8] || cmp(out, m->m) >= 0) {
		sub(out, out, m->m);
	}
	memcpy(r, out, sizeof(out));
}

/* r = a^(m-2) in Montgomery form: the inverse of a (a in Montgomery form, a != 0). */
static void mont_inv(fe r, const fe a, const struct modulus *m)
{
	fe e, acc;
	const fe two = {2};
	sub(e, m->m, two);
	mont_mul(acc, ONE, m->r2, m); /* 1 in Montgomery form */
	for (int i = 255; i >= 0; i--) {
		mont_mul(acc, acc, acc, m);
		if ((e[i / 32] >> (i % 32)) & 1) {
			mont_mul(acc, acc, a, m);
		}
	}
	memcpy(r, acc, sizeof(acc));
}

static void from_be(fe r, const uint8_t *b)
{
	for (int i = 0; i < 8; i++) {
		const uint8_t *p = b + 28 - 4 * i;
		r[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	}
}

/* Jacobian point (X, Y, Z) in Montgomery form; Z == 0 is the point at infinity. */
struct jpoint {
	fe x, y, z;
};

static void fmul(fe r, const fe a, const fe b) { mont_mul(r, a, b, &P); }
static void fadd(fe r, const fe a, const fe b) { mod_add(r, a, b, &P); }
static void fsub(fe r, const fe a, const fe b) { mod_sub(r, a, b, &P); }

static void point_double(struct jpoint *r, const struct jpoint *p)
{
	fe delta, gamma, beta, alpha, t1, t2;
	if (is_zero(p->z)) {
		*r = *p;
		return;
	}
	fmul(delta, p->z, p->z);
	fmul(gamma, p->y, p->y);
	fmul(beta, p->x, gamma);
	fsub(t1, p->x, delta);
	fadd(t2, p->x, delta);
	fmul(alpha, t1, t2);
	fadd(t1, alpha, alpha);
	fadd(alpha, alpha, t1); /* 3 (X - delta)(X + delta) */
	fadd(t1, p->y, p->z);
	fmul(t1, t1, t1);
	fsub(t1, t1, gamma);
	fsub(r->z, t1, delta);
	fadd(t1, beta, beta);
	fadd(t1, t1, t1); /* 4 beta */
	fadd(t2, t1, t1); /* 8 beta */
	fmul(r->x, alpha, alpha);
	fsub(r->x, r->x, t2);
	fsub(t1, t1, r->x);
	fmul(t1, alpha, t1);
	fmul(gamma, gamma, gamma);
	fadd(gamma, gamma, gamma);
	fadd(gamma, gamma, gamma);
	fadd(gamma, gamma, gamma); /* 8 gamma^2 */
	fsub(r->y, t1, gamma);
}

static void point_add(struct jpoint *r, const struct jpoint *p, const struct jpoint *q)
{
	fe z1z1, z2z2, u1, u2, s1, s2, h, i, j, rr, v, t;
	if (is_zero(p->z)) {
		*r = *q;
		return;
	}
	if (is_zero(q->z)) {
		*r = *p;
		return;
	}
	fmul(z1z1, p->z, p->z);
	fmul(z2z2, q->z, q->z);
	fmul(u1, p->x, z2z2);
	fmul(u2, q->x, z1z1);
	fmul(s1, p->y, q->z);
	fmul(s1, s1, z2z2);
	fmul(s2, q->y, p->z);
	fmul(s2, s2, z1z1);
	fsub(h, u2, u1);
	fsub(rr, s2, s1);
	if (is_zero(h)) {
		if (is_zero(rr)) {
			point_double(r, p);
		} else {
			memset(r, 0, sizeof(*r));
		}
		return;
	}
	fadd(rr, rr, rr);
	fadd(i, h, h);
	fmul(i, i, i);
	fmul(j, h, i);
	fmul(v, u1, i);
	struct jpoint out;
	fmul(out.x, rr, rr);
	fsub(out.x, out.x, j);
	fsub(out.x, out.x, v);
	fsub(out.x, out.x, v);
	fsub(t, v, out.x);
	fmul(out.y, rr, t);
	fmul(t, s1, j);
	fadd(t, t, t);
	fsub(out.y, out.y, t);
	fadd(t, p->z, q->z);
	fmul(t, t, t);
	fsub(t, t, z1z1);
	fsub(t, t, z2z2);
	fmul(out.z, t, h);
	*r = out;
}

/* y^2 == x^3 - 3x + b, coordinates in Montgomery form. */
static bool on_curve(const fe x, const fe y)
{
	fe lhs, rhs, t;
	fmul(lhs, y, y);
	fmul(rhs, x, x);
	fmul(rhs, rhs, x);
	fadd(t, x, x);
	fadd(t, t, x);
	fsub(rhs, rhs, t);
	fadd(rhs, rhs, B_M);
	return cmp(lhs, rhs) == 0;
}

int sota_p256_verify(const uint8_t sig[64], const uint8_t pk[65], const uint8_t hash[32])
{
	fe r, s, e, w, u1, u2, qx, qy;
	if (pk[0] != 0x04) {
		return -1;
	}
	from_be(qx, pk + 1);
	from_be(qy, pk + 33);
	if (cmp(qx, P.m) >= 0 || cmp(qy, P.m) >= 0) {
		return -1;
	}
	mont_mul(qx, qx, P.r2, &P);
	mont_mul(qy, qy, P.r2, &P);
	if (!on_curve(qx, qy)) {
		return -1;
	}
	from_be(r, sig);
	from_be(s, sig + 32);
	if (is_zero(r) || is_zero(s) || cmp(r, N.m) >= 0 || cmp(s, N.m) >= 0) {
		return -1;
	}
	from_be(e, hash);
	if (cmp(e, N.m) >= 0) {
		sub(e, e, N.m);
	}
	/* w = s^-1 in N's Montgomery form; a normal-form value times w is already normal. */
	mont_mul(w, s, N.r2, &N);
	mont_inv(w, w, &N);
	mont_mul(u1, e, w, &N);
	mont_mul(u2, r, w, &N);

	struct jpoint g = {{0}, {0}, {0}}, q = {{0}, {0}, {0}}, gq, acc;
	memcpy(g.x, GX_M, sizeof(fe));
	memcpy(g.y, GY_M, sizeof(fe));
	memcpy(g.z, ONE_M, sizeof(fe));
	memcpy(q.x, qx, sizeof(fe));
	memcpy(q.y, qy, sizeof(fe));
	memcpy(q.z, ONE_M, sizeof(fe));
	point_add(&gq, &g, &q);
	memset(&acc, 0, sizeof(acc));
	for (int i = 255; i >= 0; i--) {
		point_double(&acc, &acc);
		int b1 = (u1[i / 32] >> (i % 32)) & 1, b2 = (u2[i / 32] >> (i % 32)) & 1;
		if (b1 && b2) {
			point_add(&acc, &acc, &gq);
		} else if (b1) {
			point_add(&acc, &acc, &g);
		} else if (b2) {
			point_add(&acc, &acc, &q);
		}
	}
	if (is_zero(acc.z)) {
		return -1;
	}
	/* x = X / Z^2, back to normal form, mod n, compared with r. */
	fe zinv, x;
	fmul(zinv, acc.z, acc.z);
	mont_inv(zinv, zinv, &P);
	fmul(x, acc.x, zinv);
	mont_mul(x, x, ONE, &P);
	if (cmp(x, N.m) >= 0) {
		sub(x, x, N.m);
	}
	return cmp(x, r) == 0 ? 0 : -1;
}
