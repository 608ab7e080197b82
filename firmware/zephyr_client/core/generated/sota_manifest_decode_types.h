/*
 * Generated from sota_manifest.cddl by gen_manifest_decoder.py: do not edit.
 *
 * Generated using zcbor version 0.9.1
 * https://github.com/NordicSemiconductor/zcbor
 * Generated with a --default-max-qty of 3
 */

#ifndef SOTA_MANIFEST_DECODE_TYPES_H__
#define SOTA_MANIFEST_DECODE_TYPES_H__

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <zcbor_common.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which value for --default-max-qty this file was created with.
 *
 *  The define is used in the other generated file to do a build-time
 *  compatibility check.
 *
 *  See `zcbor --help` for more information about --default-max-qty
 */
#define DEFAULT_MAX_QTY 3

struct SOTA_alg {
	int64_t SOTA_alg;
};

struct SOTA_Protected {
	struct SOTA_alg SOTA_alg_m;
};

struct SOTA_name {
	struct zcbor_string SOTA_name;
};

struct SOTA_version {
	struct zcbor_string SOTA_version;
};

struct SOTA_section {
	struct zcbor_string SOTA_section;
};

struct SOTA_slot_size {
	uint64_t SOTA_slot_size;
};

struct SOTA_payload_size {
	uint32_t SOTA_payload_size;
};

struct SOTA_sha256 {
	struct zcbor_string SOTA_sha256;
};

struct SOTA_exports_r {
	struct zcbor_string SOTA_export_m[16];
	size_t SOTA_export_m_count;
};

struct SOTA_feature_r {
	union {
		int64_t Int;
		double Float;
	};
	enum {
		SOTA_feature_int_c,
		SOTA_feature_float_c,
	} SOTA_feature_choice;
};

struct SOTA_input_r {
	struct SOTA_feature_r SOTA_feature_m[64];
	size_t SOTA_feature_m_count;
};

struct SOTA_expected {
	uint32_t SOTA_expected;
};

struct SOTA_selftest_r {
	struct SOTA_input_r SOTA_input_m;
	struct SOTA_expected SOTA_expected_m;
};

struct SOTA_Manifest_SOTA_selftest_m {
	struct SOTA_selftest_r SOTA_selftest_m;
};

struct SOTA_Manifest_SOTA_created_m {
	uint64_t SOTA_created_m;
};

struct SOTA_Manifest {
	struct SOTA_name SOTA_name_m;
	struct SOTA_version SOTA_version_m;
	struct SOTA_section SOTA_section_m;
	struct SOTA_slot_size SOTA_slot_size_m;
	struct SOTA_payload_size SOTA_payload_size_m;
	struct SOTA_sha256 SOTA_sha256_m;
	struct SOTA_exports_r SOTA_exports_m;
	struct SOTA_Manifest_SOTA_selftest_m SOTA_selftest_m;
	bool SOTA_selftest_m_present;
	struct SOTA_Manifest_SOTA_created_m SOTA_created_m;
	bool SOTA_created_m_present;
};

struct SOTA_kid {
	struct zcbor_string SOTA_kid;
};

struct SOTA_Unprotected_SOTA_kid_m {
	struct SOTA_kid SOTA_kid_m;
};

struct SOTA_Unprotected {
	struct SOTA_Unprotected_SOTA_kid_m SOTA_kid_m;
	bool SOTA_kid_m_present;
};

struct SOTA_COSE_Sign1_Untagged {
	struct zcbor_string protected;
	struct SOTA_Unprotected unprotected;
	struct zcbor_string payload;
	struct zcbor_string signature;
};

struct SOTA_COSE_Sign1_r {
	union {
		struct SOTA_COSE_Sign1_Untagged SOTA_COSE_Sign1_Tagged_m;
		struct SOTA_COSE_Sign1_Untagged SOTA_COSE_Sign1_Untagged_m;
	};
	enum {
		SOTA_COSE_Sign1_Tagged_m_c,
		SOTA_COSE_Sign1_Untagged_m_c,
	} SOTA_COSE_Sign1_choice;
};

#ifdef __cplusplus
}
#endif

#endif /* SOTA_MANIFEST_DECODE_TYPES_H__ */
