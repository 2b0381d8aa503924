/*
 * whatsapp.h - the WhatsApp Cloud API transport (DESIGN §8, API.md
 * "Webhooks"): the webhook payload parser, the X-Hub-Signature-256 check,
 * the inbound hook the flow engine plugs into, the outbox producer, the
 * Graph API client, and the worker's outbox sender and sweeps.
 *
 * Inbound: POST /webhooks/whatsapp checks the signature over the raw body
 * with the app secret of the account the payload names (found through the
 * SECURITY DEFINER wa_account_by_phone_number_id(), before any tenant is
 * known), then stores each message in its own transaction, scoped to the
 * account's tenant: contact upsert, the contact's row lock, INSERT ... ON
 * CONFLICT DO NOTHING by wamid, and, only for a new message, the inbound
 * hook. Statuses move the outbound message forward (sent, delivered, read,
 * failed).
 *
 * Outbound: wa_outbox_enqueue() writes the message and its outbox row in the
 * caller's transaction and wakes the workers; the worker sends each
 * contact's messages strictly in order through the Graph API.
 */
#ifndef DIALFLOW_WHATSAPP_H
#define DIALFLOW_WHATSAPP_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"
#include "dialflow/http.h"

#define WA_WEBHOOK_PATH "/webhooks/whatsapp"

/* Bounds of one webhook payload (Meta batches far fewer). */
#define WA_MAX_ENTRIES	    100
#define WA_MAX_EVENTS	    1000 /* messages + statuses                  */
#define WA_MAX_ACCOUNTS	    8	 /* distinct phone_number_ids             */
#define WA_MAX_ID_LEN	    256	 /* wamid                                 */
#define WA_MAX_NAME_LEN	    256	 /* contact profile name (bytes)          */
#define WA_MAX_TEXT_LEN	    65536
#define WA_SIGNATURE_LEN    71 /* "sha256=" + 64 hex digits               */
#define WA_MAX_CHALLENGE    128
#define WA_MAX_VERIFY_TOKEN 256

/* --- the webhook payload (src/webhooks/wa_payload.c, pure) ---------------- */

/* One inbound message; strings and raw are owned by the parse's arena. */
typedef struct wa_message {
	const char *phone_number_id; /* metadata of its change: the account          */
	const char *wamid;	     /* "id", 1..256 bytes                           */
	const char *from;	     /* the sender's wa_id: 5..20 digits             */
	const char *type;	     /* text, interactive, button, image, ... [a-z_]  */
	const char *profile_name;    /* contacts[] name for `from`, or NULL (cut)     */
	int64_t timestamp;	     /* epoch seconds; 0 when absent or malformed     */
	/* The readable part, or NULL: text.body, button.text, the title of an
	 * interactive button/list reply, a media caption. Cut to WA_MAX_TEXT_LEN. */
	const char *text;
	/* The id of a reply: interactive button_reply/list_reply id, button payload. */
	const char *reply_id;
	json_t *raw; /* the message object as received (borrowed from the payload) */
} wa_message_t;

/* One status of an outbound message. */
typedef struct wa_status {
	const char *phone_number_id;
	const char *wamid;
	const char *status;	  /* sent | delivered | read | failed              */
	const char *recipient_id; /* may be NULL                                  */
	int64_t timestamp;	  /* epoch seconds; 0 when absent or malformed     */
	json_t *errors;		  /* the "errors" array, or NULL (borrowed)        */
} wa_status_t;

typedef struct wa_webhook {
	json_t *root; /* the decoded payload, tied to the arena */
	wa_message_t *messages;
	size_t nmessages;
	wa_status_t *statuses; /* statuses of unknown kinds are skipped */
	size_t nstatuses;
	/* The distinct metadata.phone_number_ids the payload names, in order. */
	const char *accounts[WA_MAX_ACCOUNTS];
	size_t naccounts;
} wa_webhook_t;

/*
 * Decode a webhook body (strict JSON: no duplicate keys, valid UTF-8) into
 * the arena. Returns the root (tied to the arena) or NULL with *why (static).
 */
json_t *wa_webhook_decode(arena_t *a, const char *body, size_t len, const char **why);

/*
 * The distinct entry[].changes[].value.metadata.phone_number_id values of a
 * decoded payload (digits, 1..32), into ids (at most WA_MAX_ACCOUNTS). This
 * is all the webhook reads before the signature holds. Returns 0 (with *n,
 * possibly 0) or -1 with *why when an id is malformed or there are too many.
 */
int wa_webhook_account_ids(const json_t *root, const char **ids, size_t *n, const char **why);

/*
 * Extract the messages and statuses of a decoded, verified payload into out
 * (arena memory). Changes other than messages/statuses (errors, account
 * updates) are ignored. Returns 0, or -1 with *why (static) when the payload
 * is not a WhatsApp webhook or a message/status lacks a well-formed id, from,
 * type or status. Pure: no I/O.
 */
int wa_webhook_extract(arena_t *a, json_t *root, wa_webhook_t *out, const char **why);

/* wa_webhook_decode() + wa_webhook_account_ids() + wa_webhook_extract() (tests, fuzzing). */
int wa_webhook_parse(arena_t *a, const char *body, size_t len, wa_webhook_t *out, const char **why);

/* --- the signature (src/webhooks/wa_signature.c) -------------------------- */

/*
 * "sha256=" + lowercase hex HMAC-SHA256(app_secret, body) into out (outsz >=
 * WA_SIGNATURE_LEN + 1). An empty or NULL secret is refused. Returns 0 or -1.
 */
int wa_signature(const char *app_secret, const char *body, size_t len, char *out, size_t outsz);

/*
 * Whether `header` (an X-Hub-Signature-256 value) is wa_signature() of body,
 * compared in constant time (hex digits in either case). A NULL or empty
 * secret or header is never valid.
 */
bool wa_signature_check(const char *app_secret, const char *body, size_t len, const char *header);

/* --- the webhook (src/webhooks/whatsapp.c) -------------------------------- */

/* What the inbound hook is given; everything is valid during the call only. */
typedef struct wa_inbound {
	int64_t business_id;
	int64_t account_id;
	int64_t contact_id;
	int64_t message_id; /* the new messages row (direction in)            */
	const char *contact_wa_id;
	const char *contact_name; /* may be NULL                                  */
	const wa_message_t *msg;  /* the parsed message, msg->raw the raw json_t   */
} wa_inbound_t;

/*
 * The inbound hook: runs inside the message's transaction (tenant scoped to
 * business_id, the API's role), with the contact's row locked, once per new
 * wamid. It may read and write anything of the tenant (flow state, outbox via
 * wa_outbox_enqueue). Returns 0, or an ERR_* code: the whole transaction is
 * rolled back (the message is not stored) and the webhook answers with the
 * code's status (ERR_UNAVAIL/ERR_RETRY: 503), so Meta redelivers it.
 */
typedef int (*wa_inbound_hook_t)(db_t *db, arena_t *a, const wa_inbound_t *msg);

/*
 * Install the inbound hook (NULL removes it). Without a hook, messages are
 * stored (contact, messages row) and nothing else happens. Process-wide;
 * call at start-up, before serving requests.
 */
void wa_set_inbound_hook(wa_inbound_hook_t hook);

/*
 * Audit seam for refused webhooks: called (when set) after a refusal was
 * logged with LOG_TAG_SECURITY, outside any transaction. reason is static
 * text (missing_signature, bad_signature, unknown_account, no_app_secret,
 * ...); business_id is 0 when no account was found.
 */
typedef void (*wa_refusal_hook_t)(http_request_t *req, const char *reason, int64_t business_id);
void wa_set_refusal_hook(wa_refusal_hook_t hook);

/* GET /webhooks/whatsapp: the subscription handshake. */
int webhook_whatsapp_verify(http_request_t *req);
/* POST /webhooks/whatsapp: 200, 400 for signed garbage, 403 when not verifiable. */
int webhook_whatsapp(http_request_t *req);
/* Register the webhook's statements (called by webhooks_register()). */
void wa_webhook_register(void);

/* --- the outbox producer (src/queue/wa_outbox.c) -------------------------- */

/*
 * Queue an outbound message in the caller's transaction: the messages row
 * (direction out, status queued, sender "bot" | "agent" | "system") and its
 * wa_outbox row, and a NOTIFY 'outbox' to the workers at commit. payload is a
 * Graph API message object without messaging_product/recipient_type/to, e.g.
 * {"type":"text","text":{"body":"hi","preview_url":false}} (borrowed).
 * *message_id (may be NULL) receives the new message id. Returns 0,
 * ERR_NOTFOUND when contact_id is not business_id's, ERR_INVAL for a
 * malformed payload or sender, or another ERR_* code.
 */
int wa_outbox_enqueue(db_t *db, arena_t *a, int64_t business_id, int64_t contact_id,
		      const json_t *payload, const char *sender, int64_t *message_id);
/* The same for an agent's reply (sender "agent", messages.agent_id = agent_id). */
int wa_outbox_enqueue_agent(db_t *db, arena_t *a, int64_t business_id, int64_t contact_id,
			    const json_t *payload, int64_t agent_id, int64_t *message_id);
/* {"type":"text","text":{"body":text,"preview_url":false}} tied to the arena. */
json_t *wa_text_payload(arena_t *a, const char *text);
/* Register the producer's statements. */
void wa_outbox_register(void);

/* --- the Graph API client (src/providers/whatsapp_graph.c) ---------------- */

enum {
	WA_SEND_OK = 0,
	WA_SEND_TRANSIENT = -1, /* 5xx, 429, a transient Meta error, network, timeout: retry */
	WA_SEND_PERMANENT = -2, /* any other 4xx, or a request we refuse to send          */
};

typedef struct wa_send_result {
	int http_status;	   /* 0 when no answer                              */
	char wamid[WA_MAX_ID_LEN]; /* messages[0].id on WA_SEND_OK                   */
	/* Meta's error object, when there was one (code 0 otherwise). */
	long long err_code;
	long long err_subcode;
	char err_type[64];
	char err_message[512];
	char err_details[512];
	char fbtrace_id[64];
	char why[64]; /* our own short class: http_500, timeout, network, bad_answer... */
} wa_send_result_t;

typedef struct wa_graph wa_graph_t;

/*
 * A client for base_url (e.g. https://graph.facebook.com; tests point it at
 * a fake) and API version ("v21.0"). ca_file may be NULL or "". Returns NULL
 * (logged) on bad arguments. One libcurl handle, reused (keep-alive). Caller
 * frees with wa_graph_free().
 */
wa_graph_t *wa_graph_new(const char *base_url, const char *version, const char *ca_file);
void wa_graph_free(wa_graph_t *g);
/* Connect and total timeouts in ms (defaults 3000 and 10000). */
void wa_graph_set_timeouts(wa_graph_t *g, long connect_ms, long total_ms);

/*
 * POST {base}/{version}/{phone_number_id}/messages with the bearer token:
 * `message` (a payload as in wa_outbox_enqueue, borrowed) plus
 * messaging_product "whatsapp", recipient_type "individual" and to. Fills res
 * and returns a WA_SEND_* outcome. Never logs the token or the body.
 */
int wa_graph_send(wa_graph_t *g, const char *phone_number_id, const char *access_token,
		  const char *to, const json_t *message, wa_send_result_t *res);

/* The error of a failed send as a JSON object (new reference): what messages.error stores. */
json_t *wa_send_error_json(const wa_send_result_t *res);

/* --- the worker side (src/worker/outbox.c, src/worker/wa_sweep.c) --------- */

/* Register the sender's and the sweeps' statements. */
void wa_worker_register(void);

typedef struct wa_outbox_opts {
	const char *owner; /* locked_by: host:pid                              */
	int batch;	   /* rows per claim                                    */
	int lease_s;	   /* claim lease; a dead worker's rows return after it */
	int retry_base_ms; /* transient retry: base * 2^(attempt-1), +-25 %     */
	int retry_cap_ms;  /* ...capped                                         */
} wa_outbox_opts_t;

/*
 * One round of the sender: claim up to batch sendable rows (the head of
 * each contact's queue, due, FOR UPDATE SKIP LOCKED, autocommitted under a
 * lease), send each through g, record the outcome. *claimed (may be NULL)
 * gets how many were claimed. Rows not started once *stop is set are given
 * back. Returns 0 or an ERR_* code of the claim.
 */
int wa_outbox_run_batch(db_t *db, arena_t *a, wa_graph_t *g, const wa_outbox_opts_t *o,
			const volatile sig_atomic_t *stop, int *claimed);
/*
 * Put rows whose lease expired (their worker died mid-send) back in the
 * queue, or fail them when they used their last attempt. *n (may be NULL)
 * gets how many moved. Returns 0 or an ERR_* code.
 */
int wa_outbox_rescue(db_t *db, arena_t *a, int *n);

/*
 * End flow sessions idle for more than idle_s seconds (at most limit), each
 * in its own transaction under the contact's lock, sending the pinned
 * version's "idle_timeout_message" (a string) when it has one. *ended (may be
 * NULL) gets how many. Returns 0 or an ERR_* code.
 */
int wa_sweep_idle(db_t *db, arena_t *a, int idle_s, int limit, int *ended);
/*
 * Send `text` once to contacts whose handover has waited more than notice_s
 * seconds without the notice (handover_notice_sent_at). *sent (may be NULL)
 * gets how many. Returns 0 or an ERR_* code.
 */
int wa_sweep_handover(db_t *db, arena_t *a, int notice_s, const char *text, int limit, int *sent);

#endif
