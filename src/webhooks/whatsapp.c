/*
 * whatsapp.c - POST /webhooks/whatsapp (API.md "Webhooks", DESIGN §8).
 *
 * Nothing in the body is believed before the signature holds. The order:
 *
 *   1. X-Hub-Signature-256 present and well-formed, else 403;
 *   2. strict JSON decode, and only the metadata.phone_number_ids are read
 *      (wa_webhook_account_ids): they say whose app secret signed it;
 *   3. each account through wa_account_by_phone_number_id() (SECURITY
 *      DEFINER: the only read before a tenant is known); an unknown account
 *      or an empty app secret is refused, never skipped;
 *   4. HMAC-SHA256 over the raw bytes with every named account's secret,
 *      compared in constant time; any mismatch is 403;
 *   5. only now the messages and statuses are extracted (400 when the signed
 *      payload is malformed) and stored.
 *
 * Each message is its own transaction, scoped to its account's tenant:
 * contact upsert, the contact's row lock (every writer of a contact's
 * conversation takes it first, so two messages of one contact are processed
 * one after the other), INSERT ... ON CONFLICT DO NOTHING by wamid, and the
 * inbound hook only for a new row. A duplicate delivery writes nothing. A
 * status moves its outbound message forward only (queued < sent < delivered
 * < read; failed is terminal and never follows delivered or read).
 *
 * Refusals are logged with [SECURITY] (reason, ip, request id; never the
 * body, the signature or a phone number) and passed to the refusal hook,
 * where the audit trail can record them.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/webhooks.h"
#include "dialflow/whatsapp.h"

#define TX_ATTEMPTS 3

static wa_inbound_hook_t inbound_hook;
static wa_refusal_hook_t refusal_hook;

static const db_stmt_t stmts[] = {
    /* SECURITY DEFINER: the reads before the tenant is known. */
    {"wa_account_by_pnid",
     "SELECT account_id, business_id, app_secret FROM wa_account_by_phone_number_id($1)"},
    {"wa_account_by_verify", "SELECT account_id, business_id FROM wa_account_by_verify_token($1)"},
    /* The rest runs scoped to the account's tenant (RLS) and filters explicitly too. */
    {"wa_msg_seen", "SELECT id FROM messages "
		    "WHERE business_id = $1::bigint AND direction = 'in' AND wamid = $2"},
    {"wa_contact_upsert",
     "INSERT INTO contacts (business_id, wa_id, name, last_seen) "
     "VALUES ($1::bigint, $2, $3, now()) "
     "ON CONFLICT (business_id, wa_id) DO UPDATE SET "
     "name = coalesce(EXCLUDED.name, contacts.name), "
     "last_seen = greatest(contacts.last_seen, EXCLUDED.last_seen), updated_at = now() "
     "RETURNING id, name"},
    {"wa_contact_lock",
     "SELECT id FROM contacts WHERE id = $1::bigint AND business_id = $2::bigint "
     "FOR UPDATE"},
    {"wa_msg_insert",
     "INSERT INTO messages (business_id, contact_id, direction, wamid, type, payload, text, "
     "status) VALUES ($1::bigint, $2::bigint, 'in', $3, $4, $5::jsonb, $6, 'received') "
     "ON CONFLICT (business_id, direction, wamid) WHERE wamid IS NOT NULL DO NOTHING "
     "RETURNING id"},
    {"wa_status_apply",
     "WITH s AS (SELECT $3::text AS st, "
     "coalesce(to_timestamp(nullif($4, '')::double precision), now()) AS ts) "
     "UPDATE messages m SET status = s.st, "
     "sent_at = CASE WHEN s.st = 'sent' THEN coalesce(m.sent_at, s.ts) ELSE m.sent_at END, "
     "delivered_at = CASE WHEN s.st = 'delivered' THEN coalesce(m.delivered_at, s.ts) "
     "ELSE m.delivered_at END, "
     "read_at = CASE WHEN s.st = 'read' THEN coalesce(m.read_at, s.ts) ELSE m.read_at END, "
     "failed_at = CASE WHEN s.st = 'failed' THEN coalesce(m.failed_at, s.ts) "
     "ELSE m.failed_at END, "
     "error = CASE WHEN s.st = 'failed' THEN $5::jsonb ELSE m.error END "
     "FROM s WHERE m.business_id = $1::bigint AND m.direction = 'out' AND m.wamid = $2 "
     "AND m.status <> 'failed' "
     "AND (CASE m.status WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 WHEN 'read' THEN 3 "
     "ELSE 0 END) < (CASE s.st WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2 "
     "WHEN 'read' THEN 3 ELSE 9 END) "
     "AND NOT (s.st = 'failed' AND m.status IN ('delivered', 'read')) "
     "RETURNING m.id"},
};

void wa_webhook_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

void wa_set_inbound_hook(wa_inbound_hook_t hook)
{
	inbound_hook = hook;
}

void wa_set_refusal_hook(wa_refusal_hook_t hook)
{
	refusal_hook = hook;
}

/* An account the payload names, once verified. */
typedef struct account {
	const char *phone_number_id;
	int64_t id;
	int64_t business_id;
} account_t;

/* Counts for the one log line of a delivery. */
typedef struct tally {
	int stored, duplicates, statuses, applied;
} tally_t;

/* 403 + [SECURITY] line + the refusal hook. */
static void refuse(http_request_t *req, const char *reason, int64_t business_id)
{
	char path[160];

	log_warn(
	    "webhook", "%s whatsapp webhook refused reason=%s business=%lld path=%s ip=%s req=%s",
	    LOG_TAG_SECURITY, reason, (long long)business_id,
	    log_sanitize(req->path, path, sizeof(path)), req->remote_addr ? req->remote_addr : "-",
	    req->request_id ? req->request_id : "-");
	http_reply_forbidden(req, "invalid_signature",
			     "the request is not signed by a configured WhatsApp account");
	req->log_note = reason;
	if (business_id > 0)
		req->log_business = business_id;
	if (refusal_hook != NULL)
		refusal_hook(req, reason, business_id);
}

/*
 * Steps 3-4: look every named account up and check the signature with each
 * one's app secret. Returns 0 (verified), 1 after answering 403, or ERR_*.
 */
static int verify_accounts(http_request_t *req, const char *sig, const char *const *ids, size_t n,
			   account_t *acc)
{
	PGresult *r;
	int rc;

	rc = db_ensure(req->db);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		const char *secret;
		bool ok;

		r = DB_EXEC(req->db, req->arena, &rc, "wa_account_by_pnid", ids[i]);
		if (r == NULL)
			return rc;
		if (PQntuples(r) != 1) {
			refuse(req, "unknown_account", 0);
			return 1;
		}
		acc[i].phone_number_id = ids[i];
		acc[i].id = db_i64(r, 0, 0);
		acc[i].business_id = db_i64(r, 0, 1);
		secret = db_str(r, 0, 2);
		if (secret == NULL || secret[0] == '\0') {
			refuse(req, "no_app_secret", acc[i].business_id);
			return 1;
		}
		ok = wa_signature_check(secret, req->body, req->body_len, sig);
		if (!ok) {
			refuse(req, "bad_signature", acc[i].business_id);
			return 1;
		}
	}
	return 0;
}

static const account_t *account_of(const account_t *acc, size_t n, const char *pnid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(acc[i].phone_number_id, pnid) == 0)
			return &acc[i];
	return NULL;
}

/*
 * One attempt of a message's transaction. *stored: the row was new (and the
 * hook ran). Returns 0 or an ERR_* code (rolled back).
 */
static int message_once(http_request_t *req, const account_t *acct, const wa_message_t *m,
			bool *stored)
{
	const char *biz = db_i64s(req->arena, acct->business_id);
	wa_inbound_t in;
	const char *payload, *contact;
	PGresult *r;
	size_t plen;
	int rc;

	*stored = false;
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	rc = db_set_tenant(req->db, req->arena, acct->business_id, false);
	if (rc < 0)
		goto fail;
	/* A redelivery (the common duplicate) writes nothing, not even last_seen. */
	r = DB_EXEC(req->db, req->arena, &rc, "wa_msg_seen", biz, m->wamid);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) > 0) {
		db_rollback(req->db);
		return 0;
	}
	r = DB_EXEC(req->db, req->arena, &rc, "wa_contact_upsert", biz, m->from, m->profile_name);
	if (r == NULL)
		goto fail;
	memset(&in, 0, sizeof(in));
	in.contact_id = db_i64(r, 0, 0);
	in.contact_name = arena_strdup(req->arena, db_str(r, 0, 1));
	contact = db_i64s(req->arena, in.contact_id);
	/* The contact's lock: held by the upsert already, taken explicitly so the
	 * rule (contact first, then its flow state) reads here. */
	r = DB_EXEC(req->db, req->arena, &rc, "wa_contact_lock", contact, biz);
	if (r == NULL)
		goto fail;
	payload = json_dump_arena(req->arena, m->raw, &plen);
	r = DB_EXEC(req->db, req->arena, &rc, "wa_msg_insert", biz, contact, m->wamid, m->type,
		    payload, m->text);
	if (r == NULL)
		goto fail;
	if (PQntuples(r) == 0) {
		/* a concurrent delivery of the same wamid won: undo the contact touch */
		db_rollback(req->db);
		return 0;
	}
	in.business_id = acct->business_id;
	in.account_id = acct->id;
	in.message_id = db_i64(r, 0, 0);
	in.contact_wa_id = m->from;
	in.msg = m;
	if (inbound_hook != NULL) {
		rc = inbound_hook(req->db, req->arena, &in);
		if (rc < 0)
			goto fail;
	}
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	*stored = true;
	return 0;
fail:
	db_rollback(req->db);
	return rc;
}

/* One attempt of a status update; *applied when it moved a message. */
static int status_once(http_request_t *req, const account_t *acct, const wa_status_t *s,
		       bool *applied)
{
	const char *err = NULL, *ts = NULL;
	PGresult *r;
	int rc;

	*applied = false;
	if (s->timestamp > 0)
		ts = db_i64s(req->arena, s->timestamp);
	if (strcmp(s->status, "failed") == 0) {
		json_t *e = json_pack("{s:O?}", "errors", s->errors);
		size_t len;

		err = e ? json_dump_arena(req->arena, json_arena(req->arena, e), &len) : NULL;
	}
	rc = db_begin(req->db);
	if (rc < 0)
		return rc;
	rc = db_set_tenant(req->db, req->arena, acct->business_id, false);
	if (rc < 0)
		goto fail;
	r = DB_EXEC(req->db, req->arena, &rc, "wa_status_apply",
		    db_i64s(req->arena, acct->business_id), s->wamid, s->status, ts, err);
	if (r == NULL)
		goto fail;
	*applied = PQntuples(r) > 0;
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(req->db);
	return rc;
}

/* Step 5: store every message and status. Returns 0 or the first ERR_* that stuck. */
static int store_all(http_request_t *req, const wa_webhook_t *wh, const account_t *acc, size_t n,
		     tally_t *t)
{
	int rc = 0;

	for (size_t i = 0; i < wh->nmessages; i++) {
		const wa_message_t *m = &wh->messages[i];
		const account_t *a = account_of(acc, n, m->phone_number_id);
		bool stored = false;
		char from[40];

		if (a == NULL)
			continue; /* cannot happen: every id was verified */
		for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
			rc = message_once(req, a, m, &stored);
			if (rc != ERR_RETRY)
				break;
		}
		if (rc < 0)
			return rc;
		if (stored)
			t->stored++;
		else
			t->duplicates++;
		log_debug("webhook", "whatsapp message wamid_len=%zu from=%s type=%s %s",
			  strlen(m->wamid), log_mask_phone(m->from, from, sizeof(from)), m->type,
			  stored ? "stored" : "duplicate");
	}
	for (size_t i = 0; i < wh->nstatuses; i++) {
		const wa_status_t *s = &wh->statuses[i];
		const account_t *a = account_of(acc, n, s->phone_number_id);
		bool applied = false;

		if (a == NULL)
			continue;
		for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
			rc = status_once(req, a, s, &applied);
			if (rc != ERR_RETRY)
				break;
		}
		if (rc < 0)
			return rc;
		t->statuses++;
		if (applied)
			t->applied++;
	}
	return 0;
}

int webhook_whatsapp(http_request_t *req)
{
	const char *sig = http_env(req, "HTTP_X_HUB_SIGNATURE_256");
	const char *ids[WA_MAX_ACCOUNTS];
	account_t acc[WA_MAX_ACCOUNTS];
	wa_webhook_t wh;
	tally_t t = {0, 0, 0, 0};
	const char *why = NULL;
	json_t *root;
	size_t n = 0;
	int rc;

	/* 1. */
	if (sig == NULL || strlen(sig) != WA_SIGNATURE_LEN || strncmp(sig, "sha256=", 7) != 0) {
		refuse(req,
		       sig == NULL || sig[0] == '\0' ? "missing_signature" : "malformed_signature",
		       0);
		return 0;
	}
	/* 2. Decoding is bounded (the body limit, jansson's depth limit) and reads nothing yet. */
	root = wa_webhook_decode(req->arena, req->body, req->body_len, &why);
	if (root == NULL) {
		refuse(req, "unverifiable_body", 0);
		return 0;
	}
	if (wa_webhook_account_ids(root, ids, &n, &why) < 0 || n == 0) {
		refuse(req, n == 0 && why == NULL ? "no_account" : "unverifiable_body", 0);
		return 0;
	}
	/* 3-4. */
	rc = verify_accounts(req, sig, ids, n, acc);
	if (rc != 0)
		return rc > 0 ? 0 : rc;
	req->log_business = acc[0].business_id;
	/* 5. Signed: now the payload may be read. */
	memset(&wh, 0, sizeof(wh));
	if (wa_webhook_extract(req->arena, root, &wh, &why) < 0) {
		log_info("webhook", "whatsapp payload rejected business=%lld reason=\"%s\"",
			 (long long)acc[0].business_id, why);
		http_reply_error(req, 400, "invalid_payload", why, NULL);
		return 0;
	}
	rc = store_all(req, &wh, acc, n, &t);
	if (rc < 0) {
		log_warn("webhook", "whatsapp webhook business=%lld not stored: %s",
			 (long long)acc[0].business_id, err_code_name(rc));
		http_reply_err(req, rc);
		return 0;
	}
	log_info("webhook",
		 "whatsapp webhook business=%lld accounts=%zu messages=%zu stored=%d duplicates=%d "
		 "statuses=%d applied=%d",
		 (long long)acc[0].business_id, n, wh.nmessages, t.stored, t.duplicates, t.statuses,
		 t.applied);
	req->log_note = t.duplicates > 0 && t.stored == 0 ? "duplicate" : "stored";
	http_reply_json(req, 200,
			json_pack("{s:s,s:i,s:i}", "status", "ok", "stored", t.stored, "duplicates",
				  t.duplicates));
	return 0;
}

/* hub.challenge is echoed as text/plain: only a short run of safe characters. */
static bool challenge_ok(const char *c)
{
	size_t n =
	    c ? strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") : 0;

	return n > 0 && n <= WA_MAX_CHALLENGE && c[n] == '\0';
}

int webhook_whatsapp_verify(http_request_t *req)
{
	const char *mode = http_query(req, "hub.mode");
	const char *token = http_query(req, "hub.verify_token");
	const char *challenge = http_query(req, "hub.challenge");
	PGresult *r;
	int rc;

	if (mode == NULL || strcmp(mode, "subscribe") != 0 || token == NULL || token[0] == '\0' ||
	    strlen(token) > WA_MAX_VERIFY_TOKEN || !challenge_ok(challenge)) {
		http_reply_forbidden(req, "verification_failed",
				     "hub.mode=subscribe, hub.verify_token and hub.challenge are "
				     "required");
		req->log_note = "bad_verify_request";
		return 0;
	}
	rc = db_ensure(req->db);
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, req->arena, &rc, "wa_account_by_verify", token);
	if (r == NULL)
		return rc;
	if (PQntuples(r) != 1) {
		char path[160];

		log_warn("webhook",
			 "%s whatsapp verification refused reason=unknown_verify_token "
			 "path=%s ip=%s req=%s",
			 LOG_TAG_SECURITY, log_sanitize(req->path, path, sizeof(path)),
			 req->remote_addr ? req->remote_addr : "-",
			 req->request_id ? req->request_id : "-");
		http_reply_forbidden(req, "verification_failed", "the verify token is not known");
		req->log_note = "unknown_verify_token";
		if (refusal_hook != NULL)
			refusal_hook(req, "unknown_verify_token", 0);
		return 0;
	}
	req->log_business = db_i64(r, 0, 1);
	log_info("webhook", "whatsapp subscription verified business=%lld",
		 (long long)req->log_business);
	http_reply_raw(req, 200, "text/plain; charset=utf-8", challenge, strlen(challenge));
	return 0;
}
