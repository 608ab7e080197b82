/*
 * Streaming SOTA writer: takes a package in pieces as it arrives (Object 9 Package write or
 * block2 pull), checks header, manifest and signature as soon as they are complete, and
 * writes the payload into the inactive model partition (erasing sector by sector, buffering
 * to the write granularity). finish() reads the slot back and checks hash, version and Wasm.
 * Nothing it writes becomes active: that takes sota_slots_activate().
 */
#ifndef SOTA_WRITER_H
#define SOTA_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "sota/flash.h"
#include "sota/sota.h"

#ifndef SOTA_MANIFEST_BUF
#define SOTA_MANIFEST_BUF SOTA_MANIFEST_MAX
#endif

enum sota_writer_phase {
	SOTA_W_HEADER,
	SOTA_W_MANIFEST,
	SOTA_W_PAYLOAD,
	SOTA_W_WRITTEN, /* all payload bytes received */
	SOTA_W_VERIFIED,
	SOTA_W_FAILED,
};

struct sota_writer {
	const struct sota_flash *slot;
	const struct sota_trust *trust;
	struct sota_policy policy;
	enum sota_writer_phase phase;
	enum sota_err err;
	uint8_t hdr[SOTA_HEADER_LEN];
	uint32_t mlen;
	uint32_t got; /* bytes of the current phase received */
	uint8_t manifest_buf[SOTA_MANIFEST_BUF];
	struct sota_manifest manifest;
	uint32_t erased; /* slot bytes erased so far */
	uint32_t flushed; /* slot bytes written so far */
	uint8_t wbuf[SOTA_WRITE_BLOCK_MAX];
	uint32_t wfill;
};

void sota_writer_init(struct sota_writer *w, const struct sota_flash *slot,
		      const struct sota_trust *trust, const struct sota_policy *policy);
/* Feed the next bytes; returns the first failure (sticky) or SOTA_OK. */
enum sota_err sota_writer_write(struct sota_writer *w, const uint8_t *data, size_t len);
/*
 * End of package: format (length), then read the payload back into ram (at least
 * payload_size bytes) and check hash, downgrade and Wasm, in the order of the format.
 */
enum sota_err sota_writer_finish(struct sota_writer *w, uint8_t *ram, size_t ram_cap);

#endif
