/*
 * Minimal CBOR reader. Every read checks bounds against the end of the buffer; indefinite
 * lengths and reserved additional-info values are refused, so a hostile manifest can only
 * make decoding fail, never read past its buffer.
 */
#include "sota/cbor.h"

#include <string.h>

#define SKIP_MAX_DEPTH 8

void sota_cbor_init(struct sota_cbor *c, const uint8_t *buf, size_t len)
{
	c->p = buf;
	c->end = buf + len;
	c->err = false;
}

int sota_cbor_peek(const struct sota_cbor *c)
{
	if (c->err || c->p >= c->end) {
		return -1;
	}
	return c->p[0] >> 5;
}

bool sota_cbor_at_end(const struct sota_cbor *c) { return !c->err && c->p == c->end; }

static bool fail(struct sota_cbor *c)
{
	c->err = true;
	return false;
}

/* Read an item head: major type and argument. */
static bool head(struct sota_cbor *c, int *major, uint64_t *arg, uint8_t *info)
{
	if (c->err || c->p >= c->end) {
		return fail(c);
	}
	uint8_t ib = *c->p++;
	*major = ib >> 5;
	*info = ib & 0x1f;
	size_t n;
	if (*info < 24) {
		*arg = *info;
		return true;
	}
	switch (*info) {
	case 24: n = 1; break;
	case 25: n = 2; break;
	case 26: n = 4; break;
	case 27: n = 8; break;
	default: return fail(c); /* reserved or indefinite length */
	}
	if ((size_t)(c->end - c->p) < n) {
		return fail(c);
	}
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		v = (v << 8) | *c->p++;
	}
	*arg = v;
	return true;
}

static bool expect(struct sota_cbor *c, int want, uint64_t *arg)
{
	int major;
	uint8_t info;
	const uint8_t *save = c->p;
	if (!head(c, &major, arg, &info)) {
		return false;
	}
	if (major != want) {
		c->p = save;
		return fail(c);
	}
	return true;
}

bool sota_cbor_uint(struct sota_cbor *c, uint64_t *v) { return expect(c, SOTA_CBOR_UINT, v); }

bool sota_cbor_int(struct sota_cbor *c, int64_t *v)
{
	int major;
	uint8_t info;
	uint64_t arg;
	if (!head(c, &major, &arg, &info)) {
		return false;
	}
	if ((major != SOTA_CBOR_UINT && major != SOTA_CBOR_NINT) || arg > (uint64_t)INT64_MAX) {
		return fail(c);
	}
	*v = major == SOTA_CBOR_UINT ? (int64_t)arg : -1 - (int64_t)arg;
	return true;
}

static bool string(struct sota_cbor *c, int major, const uint8_t **data, size_t *len)
{
	uint64_t n;
	if (!expect(c, major, &n)) {
		return false;
	}
	if (n > (uint64_t)(c->end - c->p)) {
		return fail(c);
	}
	*data = c->p;
	*len = (size_t)n;
	c->p += n;
	return true;
}

bool sota_cbor_bstr(struct sota_cbor *c, const uint8_t **data, size_t *len)
{
	return string(c, SOTA_CBOR_BSTR, data, len);
}

bool sota_cbor_tstr(struct sota_cbor *c, const char **data, size_t *len)
{
	return string(c, SOTA_CBOR_TSTR, (const uint8_t **)data, len);
}

static bool container(struct sota_cbor *c, int major, size_t *count)
{
	uint64_t n;
	if (!expect(c, major, &n)) {
		return false;
	}
	/* Every element takes at least one byte (two for map entries): a cheap bound. */
	if (n > (uint64_t)(c->end - c->p)) {
		return fail(c);
	}
	*count = (size_t)n;
	return true;
}

bool sota_cbor_array(struct sota_cbor *c, size_t *count) { return container(c, SOTA_CBOR_ARRAY, count); }

bool sota_cbor_map(struct sota_cbor *c, size_t *count) { return container(c, SOTA_CBOR_MAP, count); }

bool sota_cbor_tag(struct sota_cbor *c, uint64_t *tag) { return expect(c, SOTA_CBOR_TAG, tag); }

static float half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h >> 15) << 31;
	int exp = (h >> 10) & 0x1f;
	uint32_t mant = h & 0x3ff;
	uint32_t bits;
	if (exp == 0) {
		if (mant == 0) {
			bits = sign;
		} else { /* subnormal half: normalise */
			exp = 1;
			while (!(mant & 0x400)) {
				mant <<= 1;
				exp--;
			}
			mant &= 0x3ff;
			bits = sign | (uint32_t)(exp + 112) << 23 | mant << 13;
		}
	} else if (exp == 31) {
		bits = sign | 0x7f800000u | mant << 13;
	} else {
		bits = sign | (uint32_t)(exp + 112) << 23 | mant << 13;
	}
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

bool sota_cbor_float(struct sota_cbor *c, float *v)
{
	int major;
	uint8_t info;
	uint64_t arg;
	if (!head(c, &major, &arg, &info)) {
		return false;
	}
	if (major == SOTA_CBOR_UINT) {
		*v = (float)arg;
		return true;
	}
	if (major == SOTA_CBOR_NINT) {
		*v = -1.0f - (float)arg;
		return true;
	}
	if (major != SOTA_CBOR_SIMPLE) {
		return fail(c);
	}
	if (info == 25) {
		*v = half_to_float((uint16_t)arg);
	} else if (info == 26) {
		uint32_t bits = (uint32_t)arg;
		memcpy(v, &bits, sizeof(*v));
	} else if (info == 27) {
		double d;
		memcpy(&d, &arg, sizeof(d));
		*v = (float)d;
	} else {
		return fail(c);
	}
	return true;
}

static bool skip_depth(struct sota_cbor *c, int depth)
{
	int major;
	uint8_t info;
	uint64_t arg;
	if (depth > SKIP_MAX_DEPTH || !head(c, &major, &arg, &info)) {
		return fail(c);
	}
	switch (major) {
	case SOTA_CBOR_BSTR:
	case SOTA_CBOR_TSTR:
		if (arg > (uint64_t)(c->end - c->p)) {
			return fail(c);
		}
		c->p += arg;
		return true;
	case SOTA_CBOR_ARRAY:
	case SOTA_CBOR_MAP: {
		if (arg > (uint64_t)(c->end - c->p)) {
			return fail(c);
		}
		uint64_t items = major == SOTA_CBOR_MAP ? 2 * arg : arg;
		for (uint64_t i = 0; i < items; i++) {
			if (!skip_depth(c, depth + 1)) {
				return false;
			}
		}
		return true;
	}
	case SOTA_CBOR_TAG:
		return skip_depth(c, depth + 1);
	default:
		return true;
	}
}

bool sota_cbor_skip(struct sota_cbor *c) { return skip_depth(c, 0); }
