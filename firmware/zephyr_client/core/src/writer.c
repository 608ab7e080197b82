/*
 * Streaming SOTA writer. The header and manifest are kept in RAM and checked as soon as they
 * are complete (format, oversize, signature: the first three steps of the verification
 * order); payload bytes go straight to the inactive slot. finish() checks the length and then
 * reads the slot back, so hash, version and Wasm checks judge what is really in flash.
 */
#include "sota/writer.h"

#include <string.h>

#include "sota/slots.h"
#include "sota/wasm_check.h"

static enum sota_err fail(struct sota_writer *w, enum sota_err e)
{
	w->err = e;
	w->phase = SOTA_W_FAILED;
	return e;
}

void sota_writer_init(struct sota_writer *w, const struct sota_flash *slot,
		      const struct sota_trust *trust, const struct sota_policy *policy)
{
	memset(w, 0, sizeof(*w));
	w->slot = slot;
	w->trust = trust;
	if (policy != NULL) {
		w->policy = *policy;
	}
	if (w->policy.slot_capacity == 0 || w->policy.slot_capacity > slot->size) {
		w->policy.slot_capacity = slot->size;
	}
	w->phase = SOTA_W_HEADER;
}

/* Write one block-aligned chunk at w->flushed, erasing sectors ahead of it as needed. */
static int program(struct sota_writer *w, const uint8_t *data, uint32_t len)
{
	const struct sota_flash *f = w->slot;
	while (w->erased < w->flushed + len) {
		if (f->erase(f, w->erased, f->erase_size) != 0) {
			return -1;
		}
		w->erased += f->erase_size;
	}
	if (f->write(f, w->flushed, data, len) != 0) {
		return -1;
	}
	w->flushed += len;
	return 0;
}

static enum sota_err payload_bytes(struct sota_writer *w, const uint8_t *data, size_t len)
{
	const uint32_t blk = w->slot->write_block;
	while (len > 0) {
		if (w->wfill == 0 && len >= blk) {
			/* Whole blocks straight from the caller's buffer. */
			uint32_t n = (uint32_t)(len - len % blk);
			if (program(w, data, n) != 0) {
				return SOTA_ERR_FLASH;
			}
			data += n;
			len -= n;
			continue;
		}
		uint32_t n = blk - w->wfill;
		if (n > len) {
			n = (uint32_t)len;
		}
		memcpy(w->wbuf + w->wfill, data, n);
		w->wfill += n;
		data += n;
		len -= n;
		if (w->wfill == blk) {
			if (program(w, w->wbuf, blk) != 0) {
				return SOTA_ERR_FLASH;
			}
			w->wfill = 0;
		}
	}
	return SOTA_OK;
}

static enum sota_err manifest_complete(struct sota_writer *w)
{
	struct sota_cose cose;
	enum sota_err e = sota_cose_decode(w->manifest_buf, w->mlen, &cose);
	if (e == SOTA_OK) {
		e = sota_manifest_decode(cose.payload, cose.payload_len, &w->manifest);
	}
	if (e == SOTA_OK) {
		e = sota_manifest_check_size(&w->manifest, w->policy.slot_capacity);
	}
	if (e == SOTA_OK) {
		e = sota_cose_verify(&cose, w->trust);
	}
	return e;
}

enum sota_err sota_writer_write(struct sota_writer *w, const uint8_t *data, size_t len)
{
	while (len > 0) {
		uint32_t n;
		switch (w->phase) {
		case SOTA_W_HEADER:
			n = SOTA_HEADER_LEN - w->got;
			n = n > len ? (uint32_t)len : n;
			memcpy(w->hdr + w->got, data, n);
			w->got += n;
			if (w->got == SOTA_HEADER_LEN) {
				if (sota_header_parse(w->hdr, &w->mlen) != SOTA_OK) {
					return fail(w, SOTA_ERR_FORMAT);
				}
				if (w->mlen > sizeof(w->manifest_buf)) {
					return fail(w, SOTA_ERR_FORMAT); /* above this device's limit */
				}
				w->phase = SOTA_W_MANIFEST;
				w->got = 0;
			}
			break;
		case SOTA_W_MANIFEST:
			n = w->mlen - w->got;
			n = n > len ? (uint32_t)len : n;
			memcpy(w->manifest_buf + w->got, data, n);
			w->got += n;
			if (w->got == w->mlen) {
				enum sota_err e = manifest_complete(w);
				if (e != SOTA_OK) {
					return fail(w, e);
				}
				w->phase = w->manifest.payload_size ? SOTA_W_PAYLOAD : SOTA_W_WRITTEN;
				w->got = 0;
			}
			break;
		case SOTA_W_PAYLOAD: {
			n = w->manifest.payload_size - w->got;
			n = n > len ? (uint32_t)len : n;
			enum sota_err e = payload_bytes(w, data, n);
			if (e != SOTA_OK) {
				return fail(w, e);
			}
			w->got += n;
			if (w->got == w->manifest.payload_size) {
				w->phase = SOTA_W_WRITTEN;
			}
			break;
		}
		case SOTA_W_WRITTEN:
			return fail(w, SOTA_ERR_FORMAT); /* bytes after the payload */
		case SOTA_W_VERIFIED:
			return fail(w, SOTA_ERR_STATE);
		default:
			return w->err;
		}
		data += n;
		len -= n;
	}
	return SOTA_OK;
}

enum sota_err sota_writer_finish(struct sota_writer *w, uint8_t *ram, size_t ram_cap)
{
	if (w->phase == SOTA_W_FAILED) {
		return w->err;
	}
	if (w->phase != SOTA_W_WRITTEN) {
		return fail(w, SOTA_ERR_FORMAT); /* package cut short */
	}
	if (w->wfill > 0) {
		/* Pad the last block with the erased value. */
		memset(w->wbuf + w->wfill, 0xff, w->slot->write_block - w->wfill);
		if (program(w, w->wbuf, w->slot->write_block) != 0) {
			return fail(w, SOTA_ERR_FLASH);
		}
		w->wfill = 0;
	}
	const struct sota_manifest *m = &w->manifest;
	enum sota_err e = sota_slot_read_checked(w->slot, m->payload_size, m->sha256, ram,
						 ram_cap);
	if (e == SOTA_OK) {
		e = sota_manifest_check_version(m, &w->policy);
	}
	if (e == SOTA_OK) {
		e = sota_wasm_check_manifest(ram, m->payload_size, m, &w->policy);
	}
	if (e != SOTA_OK) {
		return fail(w, e);
	}
	w->phase = SOTA_W_VERIFIED;
	return SOTA_OK;
}
