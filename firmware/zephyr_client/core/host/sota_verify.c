/*
 * sota_verify: the C core's package verifier as a host command, so tests (and people) can
 * check packages built by `ota` against the device's own code.
 *
 *   sota_verify PUBKEY_FILE PACKAGE [--installed-version V] [--slot-size N]
 *               [--allow-import MODULE.FIELD]... [--stream CHUNK]
 *
 * PUBKEY_FILE: the P-256 public key the device trusts (ES256, the core's only algorithm): the
 * 65-byte uncompressed point raw or in hex, or a PEM "PUBLIC KEY" (read by mbed TLS's pk
 * module). An Ed25519 key is refused with a message. --stream feeds the package through the
 * streaming writer into a RAM flash slot in CHUNK-byte pieces (as a device receives it)
 * instead of the one-shot verifier.
 * Prints the reason ("ok", "format", "oversize", "signature", "hash", "downgrade", "wasm")
 * and, on success, the manifest; exits 0 when accepted, 1 when refused, 2 on usage errors.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/ecp.h>
#include <mbedtls/pk.h>

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

enum key_kind { KEY_BAD, KEY_P256, KEY_ED25519 };

/* The P-256 point of a PEM public key, through mbed TLS. */
static enum key_kind parse_pem(const uint8_t *buf, size_t len, uint8_t key[65])
{
	mbedtls_pk_context pk;
	enum key_kind kind = KEY_BAD;
	char *text = malloc(len + 1); /* mbed TLS wants PEM NUL-terminated, length included */
	if (text == NULL) {
		return KEY_BAD;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	mbedtls_pk_init(&pk);
	int rc = mbedtls_pk_parse_public_key(&pk, (const unsigned char *)text, len + 1);
	if (rc == 0 && mbedtls_pk_get_type(&pk) == MBEDTLS_PK_ECKEY &&
	    mbedtls_pk_ec(pk)->grp.id == MBEDTLS_ECP_DP_SECP256R1) {
		size_t n = 0;
		const mbedtls_ecp_keypair *ec = mbedtls_pk_ec(pk);
		if (mbedtls_ecp_point_write_binary(&ec->grp, &ec->Q, MBEDTLS_ECP_PF_UNCOMPRESSED, &n,
						   key, 65) == 0 && n == 65) {
			kind = KEY_P256;
		}
	} else if (rc == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG) {
		kind = KEY_ED25519; /* the other kind ota.keys writes; mbed TLS has no Ed25519 */
	}
	mbedtls_pk_free(&pk);
	free(text);
	return kind;
}

/* P-256 public key (65-byte uncompressed point) from raw, hex or PEM bytes. */
static enum key_kind parse_key(const uint8_t *buf, size_t len, uint8_t key[65])
{
	if (len == 65 && buf[0] == 0x04) {
		memcpy(key, buf, len);
		return KEY_P256;
	}
	if (len == 32) {
		return KEY_ED25519;
	}
	if (len > 5 && memcmp(buf, "-----", 5) == 0) {
		return parse_pem(buf, len, key);
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
			return KEY_BAD;
		}
		if (digits >= 130) {
			return KEY_BAD;
		}
		key[digits / 2] = (uint8_t)(digits % 2 ? (key[digits / 2] | v) : v << 4);
		digits++;
	}
	return digits == 64 ? KEY_ED25519 : (digits == 130 && key[0] == 0x04) ? KEY_P256 : KEY_BAD;
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
	enum key_kind kind = parse_key(kbuf, klen, key);
	free(kbuf);
	if (kind == KEY_ED25519) {
		return usage("PUBKEY_FILE is an Ed25519 key: the core verifies ES256 (P-256) packages "
			     "only");
	}
	if (kind != KEY_P256) {
		return usage("PUBKEY_FILE is not a P-256 public key (raw, hex or PEM)");
	}
	uint8_t *pkg = read_file(pos[1], &plen);
	if (pkg == NULL) {
		return 2;
	}
	struct sota_trust trust = {SOTA_ALG_ES256, key, SOTA_P256_KEY_LEN};
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
