/*
 * A minimal CBOR (RFC 8949) reader: definite lengths only, bounds-checked, no allocation.
 * Enough for COSE_Sign1 and the SOTA manifest; anything else is a decode error.
 */
#ifndef SOTA_CBOR_H
#define SOTA_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sota_cbor_major {
	SOTA_CBOR_UINT = 0,
	SOTA_CBOR_NINT = 1,
	SOTA_CBOR_BSTR = 2,
	SOTA_CBOR_TSTR = 3,
	SOTA_CBOR_ARRAY = 4,
	SOTA_CBOR_MAP = 5,
	SOTA_CBOR_TAG = 6,
	SOTA_CBOR_SIMPLE = 7,
};

struct sota_cbor {
	const uint8_t *p;
	const uint8_t *end;
	bool err; /* sticky: set by the first malformed or unexpected item */
};

void sota_cbor_init(struct sota_cbor *c, const uint8_t *buf, size_t len);
/* Peek at the major type of the next item; -1 at the end of input. */
int sota_cbor_peek(const struct sota_cbor *c);
bool sota_cbor_at_end(const struct sota_cbor *c);
/* Each reader returns false (and sets err) when the next item is not of the asked type. */
bool sota_cbor_uint(struct sota_cbor *c, uint64_t *v);
/* Signed integer from major type 0 or 1, within int64_t. */
bool sota_cbor_int(struct sota_cbor *c, int64_t *v);
bool sota_cbor_bstr(struct sota_cbor *c, const uint8_t **data, size_t *len);
bool sota_cbor_tstr(struct sota_cbor *c, const char **data, size_t *len);
bool sota_cbor_array(struct sota_cbor *c, size_t *count);
bool sota_cbor_map(struct sota_cbor *c, size_t *count);
bool sota_cbor_tag(struct sota_cbor *c, uint64_t *tag);
/* A number as float: half, single or double precision, or an integer. */
bool sota_cbor_float(struct sota_cbor *c, float *v);
/* Skip one whole item (nested up to a small depth). */
bool sota_cbor_skip(struct sota_cbor *c);

#endif
