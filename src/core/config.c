/* config.c - settings from the environment, with defaults and bounds. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dialflow/config.h"
#include "dialflow/strnum.h"

static char *env_dup(const char *name, const char *def)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0')
		v = def;
	return v ? strdup(v) : NULL;
}

/* An integer setting in [min, max]; -1 when set but malformed. */
static int env_int(const char *name, int64_t def, int64_t min, int64_t max, int64_t *out)
{
	const char *v = getenv(name);

	if (v == NULL || v[0] == '\0') {
		*out = def;
		return 0;
	}
	return strnum_i64(v, min, max, out);
}

int config_read_file(const char *path, size_t max, unsigned char **out, size_t *len)
{
	int fd = -1, rc = -1;
	unsigned char *buf = NULL;
	size_t n = 0;
	ssize_t r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto out;
	buf = malloc(max + 1);
	if (buf == NULL)
		goto out;
	while (n <= max) {
		r = read(fd, buf + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			goto out;
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max)
		goto out;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int config_load(config_t *cfg, const char *url_env, const char *role_env, const char *role_default,
		int need_secret, const char **err)
{
	const char *path;
	int64_t v;

	memset(cfg, 0, sizeof(*cfg));
	cfg->database_url = url_env ? env_dup(url_env, NULL) : NULL;
	if (cfg->database_url == NULL)
		cfg->database_url = env_dup("DIALFLOW_DATABASE_URL", NULL);
	if (cfg->database_url == NULL) {
		*err = "DIALFLOW_DATABASE_URL is not set";
		return -1;
	}
	cfg->db_role =
	    env_dup(role_env ? role_env : "DIALFLOW_DB_ROLE", role_default ? role_default : "");
	cfg->jwt_kid = env_dup("DIALFLOW_JWT_KID", "k1");
	cfg->jwt_issuer = env_dup("DIALFLOW_JWT_ISSUER", "dialflow");
	cfg->jwt_audience = env_dup("DIALFLOW_JWT_AUDIENCE", "dialflow-api");
	cfg->jwt_pubkey_alg = env_dup("DIALFLOW_JWT_PUBKEY_ALG", "RS256");
	cfg->jwt_pubkey_kid = env_dup("DIALFLOW_JWT_PUBKEY_KID", "idp");
	cfg->public_url = env_dup("DIALFLOW_PUBLIC_URL", "https://localhost:8443");
	cfg->migrations_dir = env_dup("DIALFLOW_MIGRATIONS_DIR", DIALFLOW_MIGRATIONS_DEFAULT);
	cfg->twilio_base_url = env_dup("DIALFLOW_TWILIO_BASE_URL", "https://api.twilio.com");
	cfg->twilio_account_sid = env_dup("DIALFLOW_TWILIO_ACCOUNT_SID", "");
	cfg->twilio_from = env_dup("DIALFLOW_TWILIO_FROM", "");
	cfg->twilio_ca_file = env_dup("DIALFLOW_TWILIO_CA_FILE", "");
	cfg->whatsapp_graph_url =
	    env_dup("DIALFLOW_WHATSAPP_GRAPH_URL", "https://graph.facebook.com");
	cfg->whatsapp_graph_version = env_dup("DIALFLOW_WHATSAPP_GRAPH_VERSION", "v21.0");
	cfg->wa_ca_file = env_dup("DIALFLOW_WA_CA_FILE", "");
	cfg->handover_notice_text =
	    env_dup("DIALFLOW_HANDOVER_NOTICE_TEXT",
		    "All our agents are busy right now. We will reply as soon as we can.");

#define INT_SETTING(field, name, def, min, max)                                                    \
	do {                                                                                       \
		if (env_int(name, def, min, max, &v) < 0) {                                        \
			*err = name " is not a valid number in range";                             \
			return -1;                                                                 \
		}                                                                                  \
		cfg->field = v;                                                                    \
	} while (0)
	INT_SETTING(db_connect_timeout, "DIALFLOW_DB_CONNECT_TIMEOUT", 2, 1, 60);
	INT_SETTING(db_statement_timeout_ms, "DIALFLOW_DB_STATEMENT_TIMEOUT_MS", 5000, 100, 600000);
	INT_SETTING(db_retry_after, "DIALFLOW_DB_RETRY_AFTER", 1, 1, 60);
	INT_SETTING(access_ttl, "DIALFLOW_ACCESS_TTL", 900, 30, 86400);
	INT_SETTING(refresh_ttl, "DIALFLOW_REFRESH_TTL", 2592000, 300, 31536000);
	INT_SETTING(max_body, "DIALFLOW_MAX_BODY", 1048576, 1024, 16 * 1048576);
	INT_SETTING(max_import_body, "DIALFLOW_MAX_IMPORT_BODY", 10 * 1048576, 1024, 64 * 1048576);
	INT_SETTING(worker_heartbeat_ms, "DIALFLOW_WORKER_HEARTBEAT_MS", 5000, 50, 60000);
	INT_SETTING(worker_stale_s, "DIALFLOW_WORKER_STALE_S", 30, 1, 3600);
	INT_SETTING(calls_per_second, "DIALFLOW_CALLS_PER_SECOND", 1, 1, 1000);
	INT_SETTING(ring_timeout_s, "DIALFLOW_RING_TIMEOUT_S", 30, 5, 600);
	INT_SETTING(run_heartbeat_ms, "DIALFLOW_RUN_HEARTBEAT_MS", 5000, 50, 60000);
	INT_SETTING(run_stale_s, "DIALFLOW_RUN_STALE_S", 30, 1, 3600);
	INT_SETTING(call_reconcile_s, "DIALFLOW_CALL_RECONCILE_S", 600, 1, 86400);
	INT_SETTING(call_log_sweep_s, "DIALFLOW_CALL_LOG_SWEEP_S", 60, 1, 86400);
	INT_SETTING(dispatch_poll_ms, "DIALFLOW_DISPATCH_POLL_MS", 1000, 10, 60000);
	INT_SETTING(shutdown_grace_s, "DIALFLOW_SHUTDOWN_GRACE_S", 10, 0, 600);
	INT_SETTING(queue_batch, "DIALFLOW_QUEUE_BATCH", 50, 1, 1000);
	INT_SETTING(queue_lease_s, "DIALFLOW_QUEUE_LEASE_S", 60, 1, 3600);
	INT_SETTING(flow_idle_timeout_s, "DIALFLOW_FLOW_IDLE_TIMEOUT_S", 1800, 0, 30 * 86400);
	INT_SETTING(handover_notice_s, "DIALFLOW_HANDOVER_NOTICE_S", 600, 0, 30 * 86400);
	INT_SETTING(outbox_batch, "DIALFLOW_OUTBOX_BATCH", 50, 1, 1000);
	INT_SETTING(outbox_lease_s, "DIALFLOW_OUTBOX_LEASE_S", 60, 15, 3600);
	INT_SETTING(outbox_retry_base_ms, "DIALFLOW_OUTBOX_RETRY_BASE_MS", 2000, 10, 600000);
#undef INT_SETTING

	path = getenv("DIALFLOW_JWT_SECRET_FILE");
	if (path != NULL && path[0] != '\0') {
		if (config_read_file(path, 4096, &cfg->jwt_secret, &cfg->jwt_secret_len) < 0) {
			*err = "cannot read DIALFLOW_JWT_SECRET_FILE (or it is over 4 KiB)";
			return -1;
		}
	} else if (need_secret) {
		*err = "DIALFLOW_JWT_SECRET_FILE is not set";
		return -1;
	}
	path = getenv("DIALFLOW_TWILIO_AUTH_TOKEN_FILE");
	if (path != NULL && path[0] != '\0') {
		unsigned char *tok = NULL;
		size_t toklen = 0;

		if (config_read_file(path, 256, &tok, &toklen) < 0 || toklen == 0) {
			free(tok);
			*err = "cannot read DIALFLOW_TWILIO_AUTH_TOKEN_FILE (or it is empty)";
			return -1;
		}
		cfg->twilio_auth_token = (char *)tok;
	}
	path = getenv("DIALFLOW_JWT_PUBKEY_FILE");
	if (path != NULL && path[0] != '\0' &&
	    config_read_file(path, 65536, &cfg->jwt_pubkey, &cfg->jwt_pubkey_len) < 0) {
		*err = "cannot read DIALFLOW_JWT_PUBKEY_FILE";
		return -1;
	}
	return 0;
}

void config_free(config_t *cfg)
{
	if (cfg->jwt_secret != NULL) {
		explicit_bzero(cfg->jwt_secret, cfg->jwt_secret_len);
		free(cfg->jwt_secret);
	}
	free(cfg->jwt_pubkey);
	free(cfg->database_url);
	free(cfg->db_role);
	free(cfg->jwt_kid);
	free(cfg->jwt_issuer);
	free(cfg->jwt_audience);
	free(cfg->jwt_pubkey_alg);
	free(cfg->jwt_pubkey_kid);
	free(cfg->public_url);
	free(cfg->migrations_dir);
	if (cfg->twilio_auth_token != NULL) {
		explicit_bzero(cfg->twilio_auth_token, strlen(cfg->twilio_auth_token));
		free(cfg->twilio_auth_token);
	}
	free(cfg->twilio_base_url);
	free(cfg->twilio_account_sid);
	free(cfg->twilio_from);
	free(cfg->twilio_ca_file);
	free(cfg->whatsapp_graph_url);
	free(cfg->whatsapp_graph_version);
	free(cfg->wa_ca_file);
	free(cfg->handover_notice_text);
	memset(cfg, 0, sizeof(*cfg));
}
