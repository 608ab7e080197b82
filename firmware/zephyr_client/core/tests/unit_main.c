/* Runs every host unit test of the core; the exit code is the number of failed checks. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

int unit_failures;
const char *unit_vectors;

unsigned char *unit_read_vector(const char *name, size_t *len)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", unit_vectors, name);
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		printf("FAIL missing test vector %s (run tests/gen_vectors.py)\n", path);
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *buf = malloc(n > 0 ? (size_t)n : 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		printf("FAIL cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static const struct {
	const char *name;
	void (*fn)(void);
} TESTS[] = {
	{"crypto", test_crypto}, {"cbor_manifest", test_cbor_manifest}, {"wasm", test_wasm},
	{"slots", test_slots},   {"writer", test_writer},
};

int main(int argc, char **argv)
{
	if (argc != 2) {
		printf("usage: unit_tests VECTORS_DIR\n");
		return 2;
	}
	unit_vectors = argv[1];
	setvbuf(stdout, NULL, _IONBF, 0); /* keep output when a sanitizer aborts */
	for (size_t i = 0; i < sizeof(TESTS) / sizeof(TESTS[0]); i++) {
		int before = unit_failures;
		TESTS[i].fn();
		printf("%s %s\n", unit_failures == before ? "PASS" : "FAIL", TESTS[i].name);
	}
	printf("%d failed checks\n", unit_failures);
	return unit_failures ? 1 : 0;
}
