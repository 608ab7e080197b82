/*
 * Generated from sota_manifest.cddl by gen_manifest_decoder.py: do not edit.
 *
 * Generated using zcbor version 0.9.1
 * https://github.com/NordicSemiconductor/zcbor
 * Generated with a --default-max-qty of 3
 */

#ifndef SOTA_MANIFEST_DECODE_H__
#define SOTA_MANIFEST_DECODE_H__

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "sota_manifest_decode_types.h"

#ifdef __cplusplus
extern "C" {
#endif

#if DEFAULT_MAX_QTY != 3
#error "The type file was generated with a different default_max_qty than this file"
#endif


int cbor_decode_SOTA_COSE_Sign1(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_COSE_Sign1_r *result,
		size_t *payload_len_out);


int cbor_decode_SOTA_Protected(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_Protected *result,
		size_t *payload_len_out);


int cbor_decode_SOTA_Manifest(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_Manifest *result,
		size_t *payload_len_out);


#ifdef __cplusplus
}
#endif

#endif /* SOTA_MANIFEST_DECODE_H__ */
