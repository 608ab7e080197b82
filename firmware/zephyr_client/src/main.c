/*
 * TinyML LwM2M client: starts WAMR and the model manager (active model from its flash
 * partition, no reboot needed to change it), sets up Objects 0, 1, 3 (4 comes with the
 * engine), 5, 9 and 33100, and registers with the server. Everything model-related lives in
 * the portable parts; the objects are in their own files (see app.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zephyr/drivers/hwinfo.h>
#include <zephyr/kernel.h>
#include <zephyr/logging/log.h>
#include <zephyr/net/lwm2m.h>
#include <zephyr/sys/util.h>

#include "app.h"
#include "sota/crypto.h"

LOG_MODULE_REGISTER(app_main, LOG_LEVEL_INF);

extern const uint8_t sota_public_key[];
extern const size_t sota_public_key_len;

static uint8_t wamr_pool[CONFIG_APP_WAMR_POOL_SIZE] __aligned(8);
static struct model_platform platform;
static struct lwm2m_ctx client;
static char endpoint[48];

static char manufacturer[] = "lwm2m-server project";
static char model_number[] = "tinyml-zephyr";
static char firmware_version[] = "1.0.0";

static void rd_event(struct lwm2m_ctx *ctx, enum lwm2m_rd_client_event event)
{
	ARG_UNUSED(ctx);
	switch (event) {
	case LWM2M_RD_CLIENT_EVENT_REGISTRATION_COMPLETE:
		LOG_INF("registered as %s", endpoint);
		firmware_update_confirm();
		break;
	case LWM2M_RD_CLIENT_EVENT_BOOTSTRAP_TRANSFER_COMPLETE:
		LOG_INF("bootstrap finished");
		break;
	case LWM2M_RD_CLIENT_EVENT_BOOTSTRAP_REG_FAILURE:
	case LWM2M_RD_CLIENT_EVENT_REGISTRATION_FAILURE:
	case LWM2M_RD_CLIENT_EVENT_NETWORK_ERROR:
		LOG_WRN("registration problem (event %d); the engine retries", event);
		break;
	default:
		break;
	}
}

#if defined(CONFIG_ARCH_POSIX)
#include "cmdline.h"
#include "soc.h"

static char *endpoint_arg;
static char *server_arg;
#if defined(CONFIG_LWM2M_DTLS_SUPPORT)
static char *psk_identity_arg;
static char *psk_key_arg;
#endif

/* native_sim has no hardware ID: every instance would register as <prefix>unknown, so the
 * endpoint name comes from the command line (zephyr.exe --endpoint=NAME), and so may the
 * server URI (--server=coap://127.0.0.1:PORT), so that several instances share one build. */
static void endpoint_option(void)
{
	static struct args_struct_t options[] = {
		{ .option = "endpoint", .name = "name", .type = 's', .dest = (void *)&endpoint_arg,
		  .descript = "LwM2M endpoint name (default: the prefix and the hardware ID)" },
		{ .option = "server", .name = "uri", .type = 's', .dest = (void *)&server_arg,
		  .descript = "LwM2M server URI (default: CONFIG_APP_LWM2M_SERVER)" },
#if defined(CONFIG_LWM2M_DTLS_SUPPORT)
		{ .option = "psk-identity", .name = "id", .type = 's',
		  .dest = (void *)&psk_identity_arg,
		  .descript = "DTLS PSK identity (default: CONFIG_APP_PSK_IDENTITY or the endpoint)" },
		{ .option = "psk-key", .name = "hex", .type = 's', .dest = (void *)&psk_key_arg,
		  .descript = "DTLS PSK key as hex (default: CONFIG_APP_PSK_KEY)" },
#endif
		ARG_TABLE_ENDMARKER
	};
	native_add_command_line_opts(options);
}
NATIVE_TASK(endpoint_option, PRE_BOOT_1, 10);
#endif

static void make_endpoint(void)
{
	uint8_t id[8];
#if defined(CONFIG_ARCH_POSIX)
	if (endpoint_arg != NULL && endpoint_arg[0] != '\0') {
		snprintf(endpoint, sizeof(endpoint), "%s", endpoint_arg);
		return;
	}
#endif
	ssize_t n = hwinfo_get_device_id(id, sizeof(id));
	int off = snprintf(endpoint, sizeof(endpoint), "%s", CONFIG_APP_ENDPOINT_PREFIX);
	for (ssize_t i = 0; i < n && off < (int)sizeof(endpoint) - 2; i++) {
		off += snprintf(endpoint + off, sizeof(endpoint) - off, "%02x", id[i]);
	}
	if (n <= 0) {
		snprintf(endpoint + off, sizeof(endpoint) - off, "unknown");
	}
}

#if defined(CONFIG_LWM2M_DTLS_SUPPORT)
/* Security 0/0 in PSK mode: identity (0/0/3) and key (0/0/5). The engine copies them into the
 * TLS credential store under client.tls_tag before each DTLS handshake. */
static int setup_psk(void)
{
	const char *identity = CONFIG_APP_PSK_IDENTITY;
	const char *key_hex = CONFIG_APP_PSK_KEY;
#if defined(CONFIG_ARCH_POSIX)
	if (psk_identity_arg != NULL && psk_identity_arg[0] != '\0') {
		identity = psk_identity_arg;
	}
	if (psk_key_arg != NULL && psk_key_arg[0] != '\0') {
		key_hex = psk_key_arg;
	}
#endif
	if (identity[0] == '\0') {
		identity = endpoint;
	}
	static uint8_t key[CONFIG_LWM2M_SECURITY_KEY_SIZE];
	size_t hex_len = strlen(key_hex);
	size_t key_len = hex_len / 2;
	/* hex2bin accepts an odd digit count; a PSK is whole bytes, so refuse it. */
	if (hex_len == 0 || hex_len % 2 != 0 || key_len > sizeof(key) ||
	    hex2bin(key_hex, hex_len, key, sizeof(key)) != key_len) {
		LOG_ERR("PSK key must be 2 to %d hex digits (CONFIG_APP_PSK_KEY or --psk-key)",
			2 * CONFIG_LWM2M_SECURITY_KEY_SIZE);
		return -EINVAL;
	}
	if (strlen(identity) > CONFIG_LWM2M_SECURITY_KEY_SIZE) {
		LOG_ERR("PSK identity longer than CONFIG_LWM2M_SECURITY_KEY_SIZE (%d)",
			CONFIG_LWM2M_SECURITY_KEY_SIZE);
		return -EINVAL;
	}
	lwm2m_set_u8(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 2), LWM2M_SECURITY_PSK);
	lwm2m_set_opaque(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 3), identity, strlen(identity));
	lwm2m_set_opaque(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 5), key, key_len);
	client.tls_tag = CONFIG_APP_TLS_TAG;
	LOG_INF("DTLS-PSK as identity %s", identity);
	return 0;
}
#endif

static int setup_core_objects(void)
{
	/* Security 0/0 and Server 1/0 without bootstrap: NoSec (or PSK with overlay-dtls.conf)
	 * to the configured server. */
	const char *server = CONFIG_APP_LWM2M_SERVER;
#if defined(CONFIG_ARCH_POSIX)
	if (server_arg != NULL && server_arg[0] != '\0') {
		server = server_arg;
	}
#endif
	lwm2m_set_string(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 0), server);
#if defined(CONFIG_LWM2M_DTLS_SUPPORT)
	int rc = setup_psk();
	if (rc != 0) {
		return rc;
	}
#else
	lwm2m_set_u8(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 2), LWM2M_SECURITY_NOSEC);
#endif
#if defined(CONFIG_LWM2M_RD_CLIENT_SUPPORT_BOOTSTRAP)
	/* overlay-bootstrap.conf: 0/0 is the Bootstrap-Server account; the bootstrap server
	 * writes the DM account (Security 0/N and Server 1/0) before the client registers. */
	lwm2m_set_bool(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 1), true);
#else
	lwm2m_set_u16(&LWM2M_OBJ(LWM2M_OBJECT_SECURITY_ID, 0, 10), CONFIG_LWM2M_SERVER_DEFAULT_SSID);
	/* Without bootstrap the engine creates Server 1/0 itself at boot: creating it here
	 * again fails (-EEXIST) and the engine logs an error. */
	lwm2m_set_u16(&LWM2M_OBJ(LWM2M_OBJECT_SERVER_ID, 0, 0), CONFIG_LWM2M_SERVER_DEFAULT_SSID);
	lwm2m_set_u32(&LWM2M_OBJ(LWM2M_OBJECT_SERVER_ID, 0, 1), CONFIG_LWM2M_ENGINE_DEFAULT_LIFETIME);
#endif

	/* Device 3/0. */
	/* String data lengths count the NUL: the engine answers data_len - 1 characters. */
	lwm2m_set_res_buf(&LWM2M_OBJ(LWM2M_OBJECT_DEVICE_ID, 0, 0), manufacturer,
			  sizeof(manufacturer), sizeof(manufacturer), LWM2M_RES_DATA_FLAG_RO);
	lwm2m_set_res_buf(&LWM2M_OBJ(LWM2M_OBJECT_DEVICE_ID, 0, 1), model_number,
			  sizeof(model_number), sizeof(model_number), LWM2M_RES_DATA_FLAG_RO);
	lwm2m_set_res_buf(&LWM2M_OBJ(LWM2M_OBJECT_DEVICE_ID, 0, 2), endpoint, sizeof(endpoint),
			  strlen(endpoint) + 1, LWM2M_RES_DATA_FLAG_RO);
	lwm2m_set_res_buf(&LWM2M_OBJ(LWM2M_OBJECT_DEVICE_ID, 0, 3), firmware_version,
			  sizeof(firmware_version), sizeof(firmware_version), LWM2M_RES_DATA_FLAG_RO);
	return 0;
}

int main(void)
{
	make_endpoint();
	if (model_rt_init(wamr_pool, sizeof(wamr_pool)) != 0) {
		LOG_ERR("WAMR init failed");
	}
	platform.public_key = sota_public_key;
	platform.public_key_len = sota_public_key_len;
	if (sota_public_key_len != SOTA_P256_KEY_LEN) {
		/* CMakeLists.txt refuses such a key; this guards hand-written key files. */
		LOG_ERR("trusted key is %zu bytes, not a P-256 point (%d): every package will be "
			"refused", sota_public_key_len, SOTA_P256_KEY_LEN);
	}
	if (init_flash_partitions(&platform) == 0) {
		enum sota_err e = model_manager_init(&platform);
		if (e != SOTA_OK) {
			LOG_ERR("no model runs: %s (%s)", sota_err_name(e),
				model_manager_stats()->update_error);
		} else {
			const struct sota_slot_record *rec = model_manager_record();
			size_t peak = 0, total = 0;
			(void)model_rt_pool_usage(&peak, &total);
			LOG_INF("model slot %d: %s %s (WAMR pool high-water mark %zu of %zu bytes)",
				rec->active, rec->slot[rec->active].name,
				rec->slot[rec->active].version, peak, total);
		}
	}

	if (setup_core_objects() != 0) {
		return -EINVAL;
	}
	init_model_object();
	init_sw_mgmt();
	init_firmware_update();

	uint32_t flags = IS_ENABLED(CONFIG_LWM2M_RD_CLIENT_SUPPORT_BOOTSTRAP) ?
				 LWM2M_RD_CLIENT_FLAG_BOOTSTRAP : 0;
	int rc = lwm2m_rd_client_start(&client, endpoint, flags, rd_event, NULL);
	if (rc != 0) {
		LOG_ERR("lwm2m_rd_client_start: %d", rc);
		return rc;
	}
	return 0;
}
