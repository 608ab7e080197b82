/*
 * sota_verify: the C core's package verifier as a host command, so tests (and people) can
 * check packages built by `ota` against the device's own code.
 *
 *   sota_verify PUBKEY_FILE PACKAGE [--installed-version V] [--slot-size N]
 *               [--allow-import MODULE.FIELD]... [--stream CHUNK]
 *
 * PUBKEY_FILE: the Ed25519 public key (32 raw bytes) or the P-256 one (65-byte uncompressed
 * point), raw, in hex, or as a PEM "PUBLIC KEY"; the key decides the algorithm. --stream feeds the package through the streaming writer into a RAM flash
 * slot in CHUNK-byte pieces (as a device receives it) instead of the one-shot verifier.
 * Prints the reason ("ok", "format", "oversize", "signature", "hash", "downgrade", "wasm")
 * and, on success, the manifest; exits 0 when accepted, 1 when refused, 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ram_flash.h"
#include "sota/sota.h"
#include "sota/writer.h"

static int usage(const char *msg)
{
	fprintf(stderr, "sota_verify: %s\n", msg);
	fprintf(stderr, "usage: sota_verify PUBKEY_FILE PACKAGE [--installed-version V] "
			"[--slot-size N] [--allow-import MODULE.FIELD]... [--stream CHUNK]\n");
	return 2;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "sota_verify: cannot open %s: %s\n", path, strerror(errno));
		return NULL;
	}
	size_t cap = 4096, n = 0;
	uint8_t *buf = malloc(cap);
	size_t got;
	while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			uint8_t *bigger = realloc(buf, cap * 2);
			if (bigger == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	fclose(f);
	*len = n;
	return buf;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '+') return 62;
	if (c == '/') return 63;
	return -1;
}

/* Ed25519 (32-byte) or P-256 (65-byte uncompressed point) public key from raw, hex or PEM
 * (SubjectPublicKeyInfo) bytes; the key length, or -1. */
static int parse_key(const uint8_t *buf, size_t len, uint8_t key[65])
{
	static const uint8_t ed25519_spki[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
						 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
	static const uint8_t p256_spki[26] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
					      0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
					      0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
	if (len == 32 || (len == 65 && buf[0] == 0x04)) {
		memcpy(key, buf, len);
		return (int)len;
	}
	const char *begin = "-----BEGIN PUBLIC KEY-----";
	const char *text = (const char *)buf;
	if (len > strlen(begin) && memcmp(text, begin, strlen(begin)) == 0) {
		uint8_t der[96];
		size_t nd = 0;
		uint32_t acc = 0;
		int bits = 0;
		for (size_t i = strlen(begin); i < len && text[i] != '-'; i++) {
			int v = b64val(text[i]);
			if (v < 0) {
				continue; /* newlines, padding */
			}
			acc = (acc << 6) | (uint32_t)v;
			bits += 6;
			if (bits >= 8) {
				bits -= 8;
				if (nd == sizeof(der)) {
					return -1;
				}
				der[nd++] = (uint8_t)(acc >> bits);
			}
		}
		if (nd == 44 && memcmp(der, ed25519_spki, sizeof(ed25519_spki)) == 0) {
			memcpy(key, der + 12, 32);
			return 32;
		}
		if (nd == 91 && memcmp(der, p256_spki, sizeof(p256_spki)) == 0) {
			memcpy(key, der + 26, 65);
			return 65;
		}
		return -1;
	}
	size_t digits = 0;
	for (size_t i = 0; i < len; i++) {
		int c = buf[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (v < 0) {
			if (c == '\n' || c == '\r' || c == ' ') {
				continue;
			}
			return -1;
		}
		if (digits >= 130) {
			return -1;
		}
		key[digits / 2] = (uint8_t)(digits % 2 ? (key[digits / 2] | v) : v << 4);
		digits++;
	}
	return digits == 64 ? 32 : (digits == 130 && key[0] == 0x04) ? 65 : -1;
}

static enum sota_err stream(const uint8_t *pkg, size_t len, size_t chunk,
			    const struct sota_trust *trust, const struct sota_policy *policy,
			    struct sota_manifest *out)
{
	static struct sota_writer w;
	struct ram_flash_dev dev;
	struct ram_flash_part slot;
	uint32_t size = policy->slot_capacity ? policy->slot_capacity : 65536;
	size = (size + 4095) & ~4095u;
	uint8_t *mem = malloc(size);
	uint8_t *ram = malloc(size);
	if (mem == NULL || ram == NULL) {
		free(mem);
		free(ram);
		return SOTA_ERR_FLASH;
	}
	ram_flash_dev_init(&dev, mem, size, 4096, 8);
	ram_flash_part_init(&slot, &dev, 0, size);
	sota_writer_init(&w, &slot.flash, trust, policy);
	enum sota_err e = SOTA_OK;
	for (size_t off = 0; off < len && e == SOTA_OK; off += chunk) {
		e = sota_writer_write(&w, pkg + off, len - off < chunk ? len - off : chunk);
	}
	if (e == SOTA_OK) {
		e = sota_writer_finish(&w, ram, size);
	}
	if (e == SOTA_OK) {
		*out = w.manifest;
	}
	free(mem);
	free(ram);
	return e;
}

int main(int argc, char **argv)
{
	const char *allow[16];
	size_t n_allow = 0, chunk = 0;
	struct sota_version installed;
	struct sota_policy policy = {0};
	const char *pos[2];
	int npos = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--installed-version") == 0 && i + 1 < argc) {
			i++;
			if (sota_version_parse(argv[i], strlen(argv[i]), &installed) != 0) {
				return usage("--installed-version needs MAJOR.MINOR.PATCH");
			}
			policy.installed = &installed;
		} else if (strcmp(argv[i], "--slot-size") == 0 && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);
			if (*end != '\0' || v == 0 || v > 0x40000000ul) {
				return usage("--slot-size needs a positive number of bytes");
			}
			policy.slot_capacity = (uint32_t)v;
		} else if (strcmp(argv[i], "--allow-import") == 0 && i + 1 < argc) {
			if (n_allow == sizeof(allow) / sizeof(allow[0])) {
				return usage("too many --allow-import");
			}
			allow[n_allow++] = argv[++i];
		} else if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc) {
			chunk = strtoul(argv[++i], NULL, 10);
			if (chunk == 0) {
				return usage("--stream needs a chunk size > 0");
			}
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			return usage("unknown option or missing value");
		} else if (npos < 2) {
			pos[npos++] = argv[i];
		} else {
			return usage("too many arguments");
		}
	}
	if (npos != 2) {
		return usage("needs PUBKEY_FILE and PACKAGE");
	}
	policy.import_allowlist = allow;
	policy.n_import_allowlist = n_allow;

	size_t klen, plen;
	uint8_t key[65];
	uint8_t *kbuf = read_file(pos[0], &klen);
	if (kbuf == NULL) {
		return 2;
	}
	int key_len = parse_key(kbuf, klen, key);
	free(kbuf);
	if (key_len < 0) {
		return usage("PUBKEY_FILE is not an Ed25519 or P-256 public key (raw, hex or PEM)");
	}
	uint8_t *pkg = read_file(pos[1], &plen);
	if (pkg == NULL) {
		return 2;
	}
	struct sota_trust trust = {sota_trust_alg_for_key_len((size_t)key_len), key,
				   (size_t)key_len};
	struct sota_manifest m;
	enum sota_err e = chunk ? stream(pkg, plen, chunk, &trust, &policy, &m)
				: sota_verify_package(pkg, plen, &trust, &policy, &m, NULL);
	free(pkg);
	printf("%s\n", sota_err_name(e));
	if (e == SOTA_OK) {
		printf("name=%s version=%s section=%s slot_size=%llu payload_size=%u sha256=", m.name,
		       m.version, m.section, (unsigned long long)m.slot_size, m.payload_size);
		for (int i = 0; i < SOTA_SHA256_LEN; i++) {
			printf("%02x", m.sha256[i]);
		}
		printf("\n");
	}
	return e == SOTA_OK ? 0 : 1;
}
