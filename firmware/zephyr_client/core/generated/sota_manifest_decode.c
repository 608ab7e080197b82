/*
 * Generated from sota_manifest.cddl by gen_manifest_decoder.py: do not edit.
 *
 * Generated using zcbor version 0.9.1
 * https://github.com/NordicSemiconductor/zcbor
 * Generated with a --default-max-qty of 3
 */

#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "zcbor_decode.h"
#include "sota_manifest_decode.h"
#include "zcbor_print.h"

#if DEFAULT_MAX_QTY != 3
#error "The type file was generated with a different default_max_qty than this file"
#endif

#define log_result(state, result, func) do { \
	if (!result) { \
		zcbor_trace_file(state); \
		zcbor_log("%s error: %s\r\n", func, zcbor_error_str(zcbor_peek_error(state))); \
	} else { \
		zcbor_log("%s success\r\n", func); \
	} \
} while(0)

static bool decode_SOTA_alg(zcbor_state_t *state, struct SOTA_alg *result);
static bool decode_SOTA_name(zcbor_state_t *state, struct SOTA_name *result);
static bool decode_SOTA_version(zcbor_state_t *state, struct SOTA_version *result);
static bool decode_SOTA_section(zcbor_state_t *state, struct SOTA_section *result);
static bool decode_SOTA_slot_size(zcbor_state_t *state, struct SOTA_slot_size *result);
static bool decode_SOTA_payload_size(zcbor_state_t *state, struct SOTA_payload_size *result);
static bool decode_SOTA_sha256(zcbor_state_t *state, struct SOTA_sha256 *result);
static bool decode_repeated_SOTA_exports_SOTA_export_m(zcbor_state_t *state, struct zcbor_string *result);
static bool decode_SOTA_exports(zcbor_state_t *state, struct SOTA_exports_r *result);
static bool decode_SOTA_feature(zcbor_state_t *state, struct SOTA_feature_r *result);
static bool decode_SOTA_input(zcbor_state_t *state, struct SOTA_input_r *result);
static bool decode_SOTA_expected(zcbor_state_t *state, struct SOTA_expected *result);
static bool decode_SOTA_selftest(zcbor_state_t *state, struct SOTA_selftest_r *result);
static bool decode_repeated_SOTA_Manifest_SOTA_selftest_m(zcbor_state_t *state, struct SOTA_Manifest_SOTA_selftest_m *result);
static bool decode_repeated_SOTA_Manifest_SOTA_created_m(zcbor_state_t *state, struct SOTA_Manifest_SOTA_created_m *result);
static bool decode_SOTA_kid(zcbor_state_t *state, struct SOTA_kid *result);
static bool decode_repeated_SOTA_Unprotected_SOTA_kid_m(zcbor_state_t *state, struct SOTA_Unprotected_SOTA_kid_m *result);
static bool decode_SOTA_Unprotected(zcbor_state_t *state, struct SOTA_Unprotected *result);
static bool decode_SOTA_COSE_Sign1_Untagged(zcbor_state_t *state, struct SOTA_COSE_Sign1_Untagged *result);
static bool decode_SOTA_COSE_Sign1_Tagged(zcbor_state_t *state, struct SOTA_COSE_Sign1_Untagged *result);
static bool decode_SOTA_Manifest(zcbor_state_t *state, struct SOTA_Manifest *result);
static bool decode_SOTA_Protected(zcbor_state_t *state, struct SOTA_Protected *result);
static bool decode_SOTA_COSE_Sign1(zcbor_state_t *state, struct SOTA_COSE_Sign1_r *result);


static bool decode_SOTA_alg(
		zcbor_state_t *state, struct SOTA_alg *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (1))))
	&& (zcbor_int64_decode(state, (&(*result).SOTA_alg)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_name(
		zcbor_state_t *state, struct SOTA_name *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (1))))
	&& (zcbor_tstr_decode(state, (&(*result).SOTA_name)))
	&& ((((*result).SOTA_name.len >= 1)
	&& ((*result).SOTA_name.len <= 64)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_version(
		zcbor_state_t *state, struct SOTA_version *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (2))))
	&& (zcbor_tstr_decode(state, (&(*result).SOTA_version)))
	&& ((((*result).SOTA_version.len >= 1)
	&& ((*result).SOTA_version.len <= 32)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_section(
		zcbor_state_t *state, struct SOTA_section *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (3))))
	&& (zcbor_tstr_decode(state, (&(*result).SOTA_section)))
	&& ((((*result).SOTA_section.len >= 1)
	&& ((*result).SOTA_section.len <= 64)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_slot_size(
		zcbor_state_t *state, struct SOTA_slot_size *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (4))))
	&& (zcbor_uint64_decode(state, (&(*result).SOTA_slot_size)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_payload_size(
		zcbor_state_t *state, struct SOTA_payload_size *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (5))))
	&& (zcbor_uint32_decode(state, (&(*result).SOTA_payload_size)))
	&& ((((*result).SOTA_payload_size <= UINT32_MAX)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_sha256(
		zcbor_state_t *state, struct SOTA_sha256 *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (6))))
	&& (zcbor_bstr_decode(state, (&(*result).SOTA_sha256)))
	&& ((((*result).SOTA_sha256.len == 32)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_repeated_SOTA_exports_SOTA_export_m(
		zcbor_state_t *state, struct zcbor_string *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((zcbor_tstr_decode(state, (&(*result))))
	&& ((((((*result).len >= 1)
	&& ((*result).len <= 64)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_exports(
		zcbor_state_t *state, struct SOTA_exports_r *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (7))))
	&& (zcbor_list_start_decode(state) && ((zcbor_multi_decode(0, 16, &(*result).SOTA_export_m_count, (zcbor_decoder_t *)decode_repeated_SOTA_exports_SOTA_export_m, state, (*&(*result).SOTA_export_m), sizeof(struct zcbor_string))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_list_end_decode(state))));

	if (false) {
		/* For testing that the types of the arguments are correct.
		 * A compiler error here means a bug in zcbor.
		 */
		decode_repeated_SOTA_exports_SOTA_export_m(state, (*&(*result).SOTA_export_m));
	}

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_feature(
		zcbor_state_t *state, struct SOTA_feature_r *result)
{
	zcbor_log("%s\r\n", __func__);
	bool int_res;

	bool res = (((zcbor_union_start_code(state) && (int_res = ((((zcbor_int64_decode(state, (&(*result).Int)))) && (((*result).SOTA_feature_choice = SOTA_feature_int_c), true))
	|| (zcbor_union_elem_code(state) && (((zcbor_float_decode(state, (&(*result).Float)))) && (((*result).SOTA_feature_choice = SOTA_feature_float_c), true)))), zcbor_union_end_code(state), int_res))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_input(
		zcbor_state_t *state, struct SOTA_input_r *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (1))))
	&& (zcbor_list_start_decode(state) && ((zcbor_multi_decode(1, 64, &(*result).SOTA_feature_m_count, (zcbor_decoder_t *)decode_SOTA_feature, state, (*&(*result).SOTA_feature_m), sizeof(struct SOTA_feature_r))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_list_end_decode(state))));

	if (false) {
		/* For testing that the types of the arguments are correct.
		 * A compiler error here means a bug in zcbor.
		 */
		decode_SOTA_feature(state, (*&(*result).SOTA_feature_m));
	}

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_expected(
		zcbor_state_t *state, struct SOTA_expected *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (2))))
	&& (zcbor_uint32_decode(state, (&(*result).SOTA_expected)))
	&& ((((*result).SOTA_expected <= UINT32_MAX)) || (zcbor_error(state, ZCBOR_ERR_WRONG_RANGE), false))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_selftest(
		zcbor_state_t *state, struct SOTA_selftest_r *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (8))))
	&& (zcbor_map_start_decode(state) && ((((decode_SOTA_input(state, (&(*result).SOTA_input_m))))
	&& ((decode_SOTA_expected(state, (&(*result).SOTA_expected_m))))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_map_end_decode(state))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_repeated_SOTA_Manifest_SOTA_selftest_m(
		zcbor_state_t *state, struct SOTA_Manifest_SOTA_selftest_m *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((decode_SOTA_selftest(state, (&(*result).SOTA_selftest_m)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_repeated_SOTA_Manifest_SOTA_created_m(
		zcbor_state_t *state, struct SOTA_Manifest_SOTA_created_m *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (9))))
	&& (zcbor_uint64_decode(state, (&(*result).SOTA_created_m)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_kid(
		zcbor_state_t *state, struct SOTA_kid *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((((zcbor_uint32_expect(state, (4))))
	&& (zcbor_bstr_decode(state, (&(*result).SOTA_kid)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_repeated_SOTA_Unprotected_SOTA_kid_m(
		zcbor_state_t *state, struct SOTA_Unprotected_SOTA_kid_m *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((decode_SOTA_kid(state, (&(*result).SOTA_kid_m)))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_Unprotected(
		zcbor_state_t *state, struct SOTA_Unprotected *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((zcbor_map_start_decode(state) && ((zcbor_present_decode(&((*result).SOTA_kid_m_present), (zcbor_decoder_t *)decode_repeated_SOTA_Unprotected_SOTA_kid_m, state, (&(*result).SOTA_kid_m))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_map_end_decode(state))));

	if (false) {
		/* For testing that the types of the arguments are correct.
		 * A compiler error here means a bug in zcbor.
		 */
		decode_repeated_SOTA_Unprotected_SOTA_kid_m(state, (&(*result).SOTA_kid_m));
	}

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_COSE_Sign1_Untagged(
		zcbor_state_t *state, struct SOTA_COSE_Sign1_Untagged *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((zcbor_list_start_decode(state) && ((((zcbor_bstr_decode(state, (&(*result).protected))))
	&& ((decode_SOTA_Unprotected(state, (&(*result).unprotected))))
	&& ((zcbor_bstr_decode(state, (&(*result).payload))))
	&& ((zcbor_bstr_decode(state, (&(*result).signature))))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_list_end_decode(state))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_COSE_Sign1_Tagged(
		zcbor_state_t *state, struct SOTA_COSE_Sign1_Untagged *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = ((zcbor_tag_expect(state, 18)
	&& (decode_SOTA_COSE_Sign1_Untagged(state, (&(*result))))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_Manifest(
		zcbor_state_t *state, struct SOTA_Manifest *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((zcbor_map_start_decode(state) && ((((decode_SOTA_name(state, (&(*result).SOTA_name_m))))
	&& ((decode_SOTA_version(state, (&(*result).SOTA_version_m))))
	&& ((decode_SOTA_section(state, (&(*result).SOTA_section_m))))
	&& ((decode_SOTA_slot_size(state, (&(*result).SOTA_slot_size_m))))
	&& ((decode_SOTA_payload_size(state, (&(*result).SOTA_payload_size_m))))
	&& ((decode_SOTA_sha256(state, (&(*result).SOTA_sha256_m))))
	&& ((decode_SOTA_exports(state, (&(*result).SOTA_exports_m))))
	&& zcbor_present_decode(&((*result).SOTA_selftest_m_present), (zcbor_decoder_t *)decode_repeated_SOTA_Manifest_SOTA_selftest_m, state, (&(*result).SOTA_selftest_m))
	&& zcbor_present_decode(&((*result).SOTA_created_m_present), (zcbor_decoder_t *)decode_repeated_SOTA_Manifest_SOTA_created_m, state, (&(*result).SOTA_created_m))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_map_end_decode(state))));

	if (false) {
		/* For testing that the types of the arguments are correct.
		 * A compiler error here means a bug in zcbor.
		 */
		decode_repeated_SOTA_Manifest_SOTA_selftest_m(state, (&(*result).SOTA_selftest_m));
		decode_repeated_SOTA_Manifest_SOTA_created_m(state, (&(*result).SOTA_created_m));
	}

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_Protected(
		zcbor_state_t *state, struct SOTA_Protected *result)
{
	zcbor_log("%s\r\n", __func__);

	bool res = (((zcbor_map_start_decode(state) && ((((decode_SOTA_alg(state, (&(*result).SOTA_alg_m))))) || (zcbor_list_map_end_force_decode(state), false)) && zcbor_map_end_decode(state))));

	log_result(state, res, __func__);
	return res;
}

static bool decode_SOTA_COSE_Sign1(
		zcbor_state_t *state, struct SOTA_COSE_Sign1_r *result)
{
	zcbor_log("%s\r\n", __func__);
	bool int_res;

	bool res = (((zcbor_union_start_code(state) && (int_res = ((((decode_SOTA_COSE_Sign1_Tagged(state, (&(*result).SOTA_COSE_Sign1_Tagged_m)))) && (((*result).SOTA_COSE_Sign1_choice = SOTA_COSE_Sign1_Tagged_m_c), true))
	|| (zcbor_union_elem_code(state) && (((decode_SOTA_COSE_Sign1_Untagged(state, (&(*result).SOTA_COSE_Sign1_Untagged_m)))) && (((*result).SOTA_COSE_Sign1_choice = SOTA_COSE_Sign1_Untagged_m_c), true)))), zcbor_union_end_code(state), int_res))));

	log_result(state, res, __func__);
	return res;
}



int cbor_decode_SOTA_COSE_Sign1(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_COSE_Sign1_r *result,
		size_t *payload_len_out)
{
	zcbor_state_t states[5];

	return zcbor_entry_function(payload, payload_len, (void *)result, payload_len_out, states,
		(zcbor_decoder_t *)decode_SOTA_COSE_Sign1, sizeof(states) / sizeof(zcbor_state_t), 1);
}


int cbor_decode_SOTA_Protected(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_Protected *result,
		size_t *payload_len_out)
{
	zcbor_state_t states[3];

	return zcbor_entry_function(payload, payload_len, (void *)result, payload_len_out, states,
		(zcbor_decoder_t *)decode_SOTA_Protected, sizeof(states) / sizeof(zcbor_state_t), 1);
}


int cbor_decode_SOTA_Manifest(
		const uint8_t *payload, size_t payload_len,
		struct SOTA_Manifest *result,
		size_t *payload_len_out)
{
	zcbor_state_t states[6];

	return zcbor_entry_function(payload, payload_len, (void *)result, payload_len_out, states,
		(zcbor_decoder_t *)decode_SOTA_Manifest, sizeof(states) / sizeof(zcbor_state_t), 1);
}
