/*
 * Wasm model checks (see wasm_check.h). One pass over the sections keeps only counts and the
 * positions of the type and function sections; export signatures are then looked up by
 * walking those sections again, so no table grows with the module.
 */
#include "sota/wasm_check.h"

#include <stdbool.h>
#include <string.h>

enum {
	SEC_CUSTOM = 0,
	SEC_TYPE = 1,
	SEC_IMPORT = 2,
	SEC_FUNCTION = 3,
	SEC_MEMORY = 5,
	SEC_EXPORT = 7,
	SEC_CODE = 10,
	SEC_TAG = 13,
};
enum { KIND_FUNC = 0, KIND_TABLE = 1, KIND_MEMORY = 2, KIND_GLOBAL = 3, KIND_TAG = 4 };

#define PADDING 0xff
#define VT_I32 0x7f
#define VT_F32 0x7d

/* Order the spec requires for non-custom sections, by id (0: custom, unranked). */
static const uint8_t RANK[14] = {0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 13, 11, 6};

struct rd {
	const uint8_t *p, *end;
	bool err;
};

static uint8_t byte(struct rd *r)
{
	if (r->p >= r->end) {
		r->err = true;
		return 0;
	}
	return *r->p++;
}

static uint32_t u32(struct rd *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 5; i++) {
		uint8_t b = byte(r);
		v |= (uint64_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80)) {
			if (v > UINT32_MAX) {
				r->err = true;
			}
			return (uint32_t)v;
		}
	}
	r->err = true;
	return 0;
}

static size_t left(const struct rd *r) { return (size_t)(r->end - r->p); }

/* A vector count whose items take at least min_size bytes each. */
static uint32_t count(struct rd *r, size_t min_size)
{
	uint32_t n = u32(r);
	if ((uint64_t)n * min_size > left(r)) {
		r->err = true;
		return 0;
	}
	return n;
}

static void skip(struct rd *r, uint32_t n)
{
	if (n > left(r)) {
		r->err = true;
		return;
	}
	r->p += n;
}

static const uint8_t *name(struct rd *r, uint32_t *n)
{
	*n = u32(r);
	const uint8_t *s = r->p;
	skip(r, *n);
	return s;
}

static uint8_t valtype(struct rd *r)
{
	uint8_t b = byte(r);
	if (!(b >= 0x7b && b <= 0x7f) && b != 0x70 && b != 0x6f) {
		r->err = true;
	}
	return b;
}

static uint32_t limits(struct rd *r)
{
	uint8_t flag = byte(r);
	uint32_t lo = u32(r);
	if (flag == 1) {
		if (u32(r) < lo) {
			r->err = true;
		}
	} else if (flag != 0) {
		r->err = true;
	}
	return lo;
}

struct section {
	uint8_t id;
	const uint8_t *start;
	uint32_t size;
};

/* Next section; 0 with s filled, 1 at the end (or at padding), -1 when malformed. */
static int next_section(struct rd *r, int *last_rank, bool stop_at_padding, struct section *s)
{
	if (r->p >= r->end || (stop_at_padding && *r->p == PADDING)) {
		return 1;
	}
	s->id = byte(r);
	s->size = u32(r);
	if (r->err || s->id > SEC_TAG || s->size > left(r)) {
		return -1;
	}
	s->start = r->p;
	r->p += s->size;
	if (s->id == SEC_CUSTOM) {
		struct rd c = {s->start, s->start + s->size, false};
		uint32_t n;
		(void)name(&c, &n);
		return c.err ? -1 : 0;
	}
	if (RANK[s->id] <= *last_rank) {
		return -1;
	}
	*last_rank = RANK[s->id];
	return 0;
}

const char *const SOTA_DEFAULT_EXPORTS[SOTA_N_DEFAULT_EXPORTS] = {"memory", "input_buffer",
									 "input_size", "infer"};

size_t sota_wasm_extent(const uint8_t *slot, size_t len)
{
	static const uint8_t header[8] = {0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00};
	if (len < sizeof(header) || memcmp(slot, header, sizeof(header)) != 0) {
		return 0;
	}
	struct rd r = {slot + sizeof(header), slot + len, false};
	struct section s;
	int rank = 0, rc;
	while ((rc = next_section(&r, &rank, true, &s)) == 0) {
	}
	return rc < 0 ? 0 : (size_t)(r.p - slot);
}

struct module {
	struct section type, func;
	uint32_t n_types, n_imported_funcs, n_funcs, n_code, n_memories;
	bool have_code;
	int64_t mem0_pages; /* -1: no memory */
	const struct section *exports;
};

static bool import_allowed(const uint8_t *m, uint32_t ml, const uint8_t *f, uint32_t fl,
			   const char *const *allow, size_t n_allow)
{
	for (size_t i = 0; i < n_allow; i++) {
		const char *a = allow[i];
		size_t al = strlen(a);
		if (al < (size_t)ml + 2 || memcmp(a, m, ml) != 0 || a[ml] != '.') {
			continue;
		}
		if ((al == (size_t)ml + 2 && a[ml + 1] == '*') ||
		    (al == (size_t)ml + 1 + fl && memcmp(a + ml + 1, f, fl) == 0)) {
			return true;
		}
	}
	return false;
}

static bool parse_types(struct rd *r, struct module *mod)
{
	mod->n_types = count(r, 1);
	for (uint32_t i = 0; i < mod->n_types && !r->err; i++) {
		if (byte(r) != 0x60) {
			return false;
		}
		for (int k = 0; k < 2; k++) {
			uint32_t n = count(r, 1);
			for (uint32_t j = 0; j < n && !r->err; j++) {
				valtype(r);
			}
		}
	}
	return true;
}

static bool parse_imports(struct rd *r, struct module *mod, const char *const *allow,
			  size_t n_allow)
{
	uint32_t n = count(r, 4);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint32_t ml, fl;
		const uint8_t *m = name(r, &ml);
		const uint8_t *f = name(r, &fl);
		if (r->err || !import_allowed(m, ml, f, fl, allow, n_allow)) {
			return false;
		}
		switch (byte(r)) {
		case KIND_FUNC:
			if (u32(r) >= mod->n_types) {
				return false;
			}
			mod->n_imported_funcs++;
			break;
		case KIND_TABLE: valtype(r); limits(r); break;
		case KIND_MEMORY: {
			uint32_t pages = limits(r);
			if (mod->n_memories++ == 0) {
				mod->mem0_pages = pages;
			}
			break;
		}
		case KIND_GLOBAL: valtype(r); byte(r); break;
		case KIND_TAG: byte(r); u32(r); break;
		default: return false;
		}
	}
	return true;
}

static bool parse_functions(struct rd *r, struct module *mod)
{
	mod->n_funcs = count(r, 1);
	for (uint32_t i = 0; i < mod->n_funcs && !r->err; i++) {
		if (u32(r) >= mod->n_types) {
			return false;
		}
	}
	return true;
}

static bool parse_memories(struct rd *r, struct module *mod)
{
	uint32_t n = count(r, 2);
	for (uint32_t i = 0; i < n && !r->err; i++) {
		uint32_t pages = limits(r);
		if (mod->n_memories++ == 0) {
			mod->mem0_pages = pages;
		}
	}
	return true;
}

static bool parse_code(struct rd *r, struct module *mod)
{
	mod->n_code = count(r, 1);
	mod->have_code = true;
	for (uint32_t i = 0; i < mod->n_code && !r->err; i++) {
		skip(r, u32(r));
	}
	return true;
}

/* Type index of a defined function (index counts imported functions first); -1 if none. */
static int64_t func_type(const struct module *mod, uint32_t index)
{
	if (index < mod->n_imported_funcs) {
		return -1; /* an imported function cannot be a model entry point here */
	}
	struct rd r = {mod->func.start, mod->func.start + mod->func.size, false};
	uint32_t n = u32(&r), want = index - mod->n_imported_funcs, t = 0;
	for (uint32_t i = 0; i <= want && i < n; i++) {
		t = u32(&r);
	}
	return want < n && !r.err ? (int64_t)t : -1;
}

/* True when type t is () -> (result). */
static bool type_is(const struct module *mod, uint32_t t, uint8_t result)
{
	struct rd r = {mod->type.start, mod->type.start + mod->type.size, false};
	uint32_t n = u32(&r);
	for (uint32_t i = 0; i < n && !r.err; i++) {
		byte(&r);
		uint32_t np = u32(&r);
		const uint8_t *params = r.p;
		skip(&r, np);
		uint32_t nr = u32(&r);
		const uint8_t *results = r.p;
		skip(&r, nr);
		if (i == t) {
			(void)params;
			return !r.err && np == 0 && nr == 1 && results[0] == result;
		}
	}
	return false;
}

static bool abi_signature(const char *name_, uint32_t n, uint8_t *result)
{
	static const struct {
		const char *name;
		uint8_t result;
	} abi[] = {{"input_buffer", VT_I32}, {"input_size", VT_I32}, {"infer", VT_I32},
		   {"output_score", VT_F32}};
	for (size_t i = 0; i < sizeof(abi) / sizeof(abi[0]); i++) {
		if (strlen(abi[i].name) == n && memcmp(abi[i].name, name_, n) == 0) {
			*result = abi[i].result;
			return true;
		}
	}
	return false;
}

static bool check_exports(const struct module *mod, const char *const *required, size_t n_required)
{
	uint32_t found = 0;
	if (mod->exports == NULL) {
		return n_required == 0;
	}
	struct rd r = {mod->exports->start, mod->exports->start + mod->exports->size, false};
	uint32_t n = count(&r, 3);
	for (uint32_t i = 0; i < n && !r.err; i++) {
		uint32_t nl;
		const uint8_t *entry = r.p;
		const uint8_t *nm = name(&r, &nl);
		uint8_t kind = byte(&r);
		uint32_t index = u32(&r);
		if (r.err || kind > KIND_TAG) {
			return false;
		}
		/* Duplicate names: compare with the exports before this one. */
		struct rd d = {mod->exports->start, entry, false};
		(void)u32(&d);
		while (d.p < entry && !d.err) {
			uint32_t ol;
			const uint8_t *o = name(&d, &ol);
			byte(&d);
			u32(&d);
			if (!d.err && ol == nl && memcmp(o, nm, nl) == 0) {
				return false;
			}
		}
		if (kind == KIND_FUNC && index >= mod->n_imported_funcs + mod->n_funcs) {
			return false;
		}
		if (kind == KIND_MEMORY && index >= mod->n_memories) {
			return false;
		}
		uint8_t result;
		if (kind == KIND_FUNC && abi_signature((const char *)nm, nl, &result)) {
			int64_t t = func_type(mod, index);
			if (t < 0 || !type_is(mod, (uint32_t)t, result)) {
				return false;
			}
		}
		for (size_t k = 0; k < n_required; k++) {
			if (strlen(required[k]) == nl && memcmp(required[k], nm, nl) == 0) {
				bool is_mem = strcmp(required[k], "memory") == 0;
				if (kind != (is_mem ? KIND_MEMORY : KIND_FUNC)) {
					return false;
				}
				found |= 1u << k;
			}
		}
	}
	uint32_t all = n_required == 32 ? 0xffffffffu : (1u << n_required) - 1;
	return !r.err && r.p == r.end && found == all;
}

enum sota_err sota_wasm_check(const uint8_t *data, size_t len, const char *const *required,
			      size_t n_required, const char *const *allowlist, size_t n_allowlist)
{
	struct module mod;
	struct section s, exports;
	int rank = 0, rc;

	memset(&mod, 0, sizeof(mod));
	mod.mem0_pages = -1;
	if (n_required > 32 || sota_wasm_extent(data, len) != len) {
		return SOTA_ERR_WASM; /* bad header, or section framing that does not add up */
	}
	struct rd top = {data + 8, data + len, false};
	while ((rc = next_section(&top, &rank, false, &s)) == 0) {
		struct rd r = {s.start, s.start + s.size, false};
		bool ok = true;
		switch (s.id) {
		case SEC_TYPE: mod.type = s; ok = parse_types(&r, &mod); break;
		case SEC_IMPORT: ok = parse_imports(&r, &mod, allowlist, n_allowlist); break;
		case SEC_FUNCTION: mod.func = s; ok = parse_functions(&r, &mod); break;
		case SEC_MEMORY: ok = parse_memories(&r, &mod); break;
		case SEC_EXPORT: exports = s; mod.exports = &exports; break;
		case SEC_CODE: ok = parse_code(&r, &mod); break;
		default: r.p = r.end; break;
		}
		if (!ok || r.err || (s.id != SEC_EXPORT && r.p != r.end)) {
			return SOTA_ERR_WASM;
		}
	}
	if (rc < 0 || mod.n_code != mod.n_funcs) {
		return SOTA_ERR_WASM;
	}
	if (mod.mem0_pages > (int64_t)SOTA_WASM_MAX_PAGES) {
		return SOTA_ERR_WASM;
	}
	return check_exports(&mod, required, n_required) ? SOTA_OK : SOTA_ERR_WASM;
}

enum sota_err sota_wasm_check_manifest(const uint8_t *data, size_t len,
				       const struct sota_manifest *m,
				       const struct sota_policy *policy)
{
	const char *req[SOTA_EXPORTS_MAX];
	for (size_t i = 0; i < m->n_exports; i++) {
		req[i] = m->exports[i];
	}
	return sota_wasm_check(data, len, req, m->n_exports, policy ? policy->import_allowlist : NULL,
			       policy ? policy->n_import_allowlist : 0);
}
