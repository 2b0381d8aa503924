/*
 * config.h - process configuration, read once from the environment.
 *
 * Every setting is an environment variable (see the README's configuration
 * table); spawn-fcgi, the worker and the CLI inherit them from their parent.
 * Secrets are read from files named by *_FILE variables, never logged.
 */
#ifndef DIALFLOW_CONFIG_H
#define DIALFLOW_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct config {
	char *database_url;	     /* DIALFLOW_DATABASE_URL (required)             */
	char *db_role;		     /* role taken after connect (SET ROLE), may be "" */
	int db_connect_timeout;	     /* seconds, DIALFLOW_DB_CONNECT_TIMEOUT (2)     */
	int db_statement_timeout_ms; /* DIALFLOW_DB_STATEMENT_TIMEOUT_MS (5000) */
	int db_retry_after;	     /* Retry-After seconds on 503 (1)              */

	unsigned char *jwt_secret; /* DIALFLOW_JWT_SECRET_FILE contents (HS256) */
	size_t jwt_secret_len;
	char *jwt_kid;		   /* DIALFLOW_JWT_KID ("k1")                      */
	char *jwt_issuer;	   /* DIALFLOW_JWT_ISSUER ("dialflow"), "" = unchecked */
	char *jwt_audience;	   /* DIALFLOW_JWT_AUDIENCE ("dialflow-api")        */
	unsigned char *jwt_pubkey; /* DIALFLOW_JWT_PUBKEY_FILE (PEM), optional  */
	size_t jwt_pubkey_len;
	char *jwt_pubkey_alg; /* DIALFLOW_JWT_PUBKEY_ALG (RS256 | ES256)      */
	char *jwt_pubkey_kid; /* DIALFLOW_JWT_PUBKEY_KID ("idp")              */
	int access_ttl;	      /* DIALFLOW_ACCESS_TTL seconds (900)            */
	int refresh_ttl;      /* DIALFLOW_REFRESH_TTL seconds (30 days)       */

	size_t max_body;	/* DIALFLOW_MAX_BODY bytes (1 MiB)              */
	size_t max_import_body; /* DIALFLOW_MAX_IMPORT_BODY (10 MiB): lead import */
	char *public_url;	/* DIALFLOW_PUBLIC_URL ("https://localhost:8443") */
	char *migrations_dir;	/* DIALFLOW_MIGRATIONS_DIR                      */

	int worker_heartbeat_ms; /* DIALFLOW_WORKER_HEARTBEAT_MS (5000)        */
	int worker_stale_s;	 /* DIALFLOW_WORKER_STALE_S (30)               */

	/* outbound calls */
	char *twilio_base_url;	  /* DIALFLOW_TWILIO_BASE_URL (https://api.twilio.com) */
	char *twilio_account_sid; /* DIALFLOW_TWILIO_ACCOUNT_SID ("")              */
	char *twilio_auth_token;  /* DIALFLOW_TWILIO_AUTH_TOKEN_FILE contents, or NULL */
	char *twilio_from;	  /* DIALFLOW_TWILIO_FROM: default caller id ("") */
	char *twilio_ca_file;	  /* DIALFLOW_TWILIO_CA_FILE: CA bundle for base_url ("") */
	int calls_per_second;	  /* DIALFLOW_CALLS_PER_SECOND (1): per-account pace */
	int ring_timeout_s;	  /* DIALFLOW_RING_TIMEOUT_S (30)                 */
	int run_heartbeat_ms;	  /* DIALFLOW_RUN_HEARTBEAT_MS (5000)             */
	int run_stale_s;	  /* DIALFLOW_RUN_STALE_S (30): stale run heartbeat age */
	int call_reconcile_s;	  /* DIALFLOW_CALL_RECONCILE_S (600): calling, no final callback */
	int call_log_sweep_s; /* DIALFLOW_CALL_LOG_SWEEP_S (60): call_log row still without sid */
	int dispatch_poll_ms; /* DIALFLOW_DISPATCH_POLL_MS (1000): fallback when NOTIFY is missed */
	int shutdown_grace_s; /* DIALFLOW_SHUTDOWN_GRACE_S (10): SIGTERM settle time */
	int queue_batch;      /* DIALFLOW_QUEUE_BATCH (50): background jobs per claim */
	int queue_lease_s;    /* DIALFLOW_QUEUE_LEASE_S (60): claim lease           */

	/* WhatsApp (src/webhooks/whatsapp.c, src/worker/outbox.c, src/worker/wa_sweep.c) */
	char *whatsapp_graph_url;     /* DIALFLOW_WHATSAPP_GRAPH_URL (https://graph.facebook.com) */
	char *whatsapp_graph_version; /* DIALFLOW_WHATSAPP_GRAPH_VERSION (v21.0)        */
	char *wa_ca_file;	      /* DIALFLOW_WA_CA_FILE: CA bundle for the Graph URL ("") */
	char *handover_notice_text;   /* DIALFLOW_HANDOVER_NOTICE_TEXT: "agents are busy"    */
	int flow_idle_timeout_s;      /* DIALFLOW_FLOW_IDLE_TIMEOUT_S (1800; 0 = never)      */
	int handover_notice_s;	      /* DIALFLOW_HANDOVER_NOTICE_S (600; 0 = no notice)     */
	int outbox_batch;	      /* DIALFLOW_OUTBOX_BATCH (50): outbox rows per claim   */
	int outbox_lease_s;	      /* DIALFLOW_OUTBOX_LEASE_S (60): a send's claim lease  */
	int outbox_retry_base_ms;     /* DIALFLOW_OUTBOX_RETRY_BASE_MS (2000): first retry   */
} config_t;

/*
 * Fill *cfg from the environment. url_env names this binary's own database
 * URL variable (e.g. DIALFLOW_API_DATABASE_URL; NULL for the CLI), which
 * wins over DIALFLOW_DATABASE_URL. role_env/role_default name the role taken
 * after connecting (DIALFLOW_API_DB_ROLE / "dialflow_app"). need_secret: the
 * JWT secret file is required. Returns 0, or -1 with *err set (static text).
 */
int config_load(config_t *cfg, const char *url_env, const char *role_env, const char *role_default,
		int need_secret, const char **err);
void config_free(config_t *cfg);

/* Read a whole small file (<= max bytes) into malloc'd memory; trailing newlines are trimmed. */
int config_read_file(const char *path, size_t max, unsigned char **out, size_t *len);

#endif
