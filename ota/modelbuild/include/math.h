/*
 * The few libm functions emlearn's C code calls, for a freestanding wasm32 build: a model
 * module imports nothing (docs/model-abi.md), so it cannot call a host's libm. fabsf, sqrtf
 * and floorf are single Wasm instructions; expf, logf and tanhf are computed here to about
 * one unit in the last place of a float, enough for classification parity with Python.
 */
#ifndef OTA_MODELBUILD_MATH_H
#define OTA_MODELBUILD_MATH_H

#define INFINITY (__builtin_inff())
#define NAN (__builtin_nanf(""))

static inline float fabsf(float x) { return __builtin_fabsf(x); }
static inline float sqrtf(float x) { return __builtin_sqrtf(x); }
static inline float floorf(float x) { return __builtin_floorf(x); }

static inline float ota_ldexpf(float x, int k) {
    /* x * 2^k by exponent bits, in steps that stay within the normal range. */
    while (k > 127) { x *= 1.7014118346046923e38f; k -= 127; }
    while (k < -126) { x *= 1.1754943508222875e-38f; k += 126; }
    union { float f; unsigned int u; } s;
    s.u = (unsigned int)(k + 127) << 23;
    return x * s.f;
}

static inline float expf(float x) {
    if (x != x) return x;
    if (x > 88.72283935546875f) return INFINITY;
    if (x < -103.97208404541016f) return 0.0f;
    /* e^x = 2^k * e^r with |r| <= ln2/2; r in two parts keeps the reduction exact. */
    float k = floorf(x * 1.4426950408889634f + 0.5f);
    float r = (x - k * 0.693145751953125f) - k * 1.4286068203094172e-06f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.16666667f + r * (0.041666668f
              + r * (0.008333334f + r * (0.0013888889f + r * 0.0001984127f))))));
    return ota_ldexpf(p, (int)k);
}

static inline float logf(float x) {
    if (x != x || x < 0.0f) return NAN;
    if (x == 0.0f) return -INFINITY;
    if (x == INFINITY) return x;
    union { float f; unsigned int u; } v = { x };
    int e = 0;
    if (v.u < 0x00800000u) { v.f *= 8388608.0f; e = -23; }  /* subnormal */
    e += (int)(v.u >> 23) - 127;
    v.u = (v.u & 0x007fffffu) | 0x3f800000u;  /* mantissa in [1, 2) */
    float m = v.f;
    if (m > 1.41421356f) { m *= 0.5f; e += 1; }
    /* log(m) = 2 atanh(s), s = (m-1)/(m+1), |s| < 0.172 */
    float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
    float l = 2.0f * s * (1.0f + s2 * (0.33333334f + s2 * (0.2f + s2 * (0.14285715f
              + s2 * 0.11111111f))));
    return l + (float)e * 0.6931471805599453f;
}

static inline float tanhf(float x) {
    if (x > 9.0f) return 1.0f;
    if (x < -9.0f) return -1.0f;
    float a = fabsf(x);
    if (a < 0.0625f) {  /* series: avoids cancellation near zero */
        float x2 = x * x;
        return x * (1.0f + x2 * (-0.33333334f + x2 * (0.13333334f + x2 * -0.053968254f)));
    }
    float e = expf(2.0f * x);
    return (e - 1.0f) / (e + 1.0f);
}

#endif
