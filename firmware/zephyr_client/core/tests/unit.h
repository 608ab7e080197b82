/* A very small test harness for the core's host unit tests: CHECK records and continues. */
#ifndef SOTA_UNIT_H
#define SOTA_UNIT_H

#include <stdio.h>

extern int unit_failures;
extern const char *unit_vectors; /* folder of packages built by tests/gen_vectors.py */

#define CHECK(cond)                                                                            \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			unit_failures++;                                                       \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
		}                                                                              \
	} while (0)

#define CHECK_EQ(a, b)                                                                         \
	do {                                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);                            \
		if (_a != _b) {                                                                \
			unit_failures++;                                                       \
			printf("FAIL %s:%d: %s == %s (%lld != %lld)\n", __FILE__, __LINE__, #a, #b, \
			       _a, _b);                                                        \
		}                                                                              \
	} while (0)

/* xorshift32: a fixed-seed generator for the fuzz loops, so a failure reproduces. */
static inline unsigned unit_rand(unsigned *state)
{
	unsigned x = *state;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *state = x;
}

/* Read a whole vector file (malloc'd); aborts the run when it is missing. */
unsigned char *unit_read_vector(const char *name, size_t *len);

void test_crypto(void);
void test_cbor_manifest(void);
void test_wasm(void);
void test_slots(void);
void test_writer(void);

#endif
