/*
 * process.c - one inbound WhatsApp message through the flow engine (DESIGN
 * §8 "Processing"), as the webhook's inbound hook.
 *
 * The webhook calls flow_process_inbound() inside the message's transaction,
 * scoped to the tenant, with the contact's row locked (contacts FOR UPDATE):
 * two messages of one contact are processed one after the other, never
 * interleaved, and everything below commits or rolls back with the message
 * row itself, so a message is handled exactly once.
 *
 *   1. A contact waiting for a human is not answered by the bot: the message
 *      is stored, nothing else (only an agent's resolve lifts the pause).
 *   2. Rate limits per contact (ratelimit.h): at most flow_inbound messages a
 *      minute go through the engine and at most flow_start new flows per 10 s;
 *      the excess is stored but not processed, and one "slow down" notice
 *      goes out at most once per window.
 *   3. With a live session (contact_flow_state, pinned to its flow version)
 *      the engine handles the reply; without one, the message may trigger an
 *      active flow by keyword.
 *   4. The engine's result is applied: outbox messages (sender bot), contact
 *      field updates, the handover flag (HANDOVER audit), the session row
 *      saved or deleted (FLOW_STATE audit for starts, ends and switches).
 *
 * Any failure that is not the database's (a stored definition that no longer
 * loads, an engine error) ends the session, sends one apology and flags the
 * contact for a human: a contact is never left stuck. Database errors are
 * returned, so the webhook rolls back and answers 503, and Meta redelivers.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/flow_process.h"
#include "dialflow/flow_store.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/ratelimit.h"
#include "dialflow/whatsapp.h"

#define PROCESS_COMPONENT "flows"

/* One notice per contact per minute when its messages are over a limit. */
static const ratelimit_rule_t NOTICE_RULE = {"flow_slowdown_notice", 1, 60};

static const char SLOWDOWN_TEXT[] =
    "You are sending messages faster than we can answer. Please wait a moment before the "
    "next one.";
static const char APOLOGY_TEXT[] =
    "Sorry, something went wrong on our side. A member of our team will get back to you.";

static const db_stmt_t stmts[] = {
    {"fp_contact", "SELECT needs_human, wa_id, coalesce(name, ''), coalesce(email, ''), "
		   "coalesce(language, ''), coalesce(notes, '') FROM contacts "
		   "WHERE id = $1::bigint AND business_id = $2::bigint"},
    {"fp_state", "SELECT flow_id, flow_version_id, current_step, context::text, "
		 "awaiting::text, fallback_count FROM contact_flow_state "
		 "WHERE contact_id = $1::bigint AND business_id = $2::bigint"},
    {"fp_state_save",
     "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, flow_version_id, "
     "current_step, context, awaiting, fallback_count) VALUES ($1::bigint, $2::bigint, "
     "$3::bigint, $4::bigint, $5, $6::jsonb, $7::jsonb, $8::integer) "
     "ON CONFLICT (contact_id) DO UPDATE SET flow_id = EXCLUDED.flow_id, "
     "flow_version_id = EXCLUDED.flow_version_id, current_step = EXCLUDED.current_step, "
     "context = EXCLUDED.context, awaiting = EXCLUDED.awaiting, "
     "fallback_count = EXCLUDED.fallback_count, updated_at = now(), "
     "started_at = CASE WHEN contact_flow_state.flow_version_id = EXCLUDED.flow_version_id "
     "THEN contact_flow_state.started_at ELSE now() END"},
    {"fp_state_delete", "DELETE FROM contact_flow_state WHERE contact_id = $1::bigint "
			"AND business_id = $2::bigint"},
    /* whitelisted fields only (flow_contact_field_allowed); absent keys keep their value */
    {"fp_contact_update",
     "UPDATE contacts SET "
     "name = CASE WHEN $3::jsonb ? 'name' THEN left($3::jsonb->>'name', 256) ELSE name END, "
     "email = CASE WHEN $3::jsonb ? 'email' THEN left($3::jsonb->>'email', 254) ELSE email END, "
     "language = CASE WHEN $3::jsonb ? 'language' THEN left($3::jsonb->>'language', 16) "
     "ELSE language END, "
     "notes = CASE WHEN $3::jsonb ? 'notes' THEN left($3::jsonb->>'notes', 4000) ELSE notes END, "
     "updated_at = now() WHERE id = $1::bigint AND business_id = $2::bigint"},
    {"fp_handover", "UPDATE contacts SET needs_human = true, handover_requested_at = now(), "
		    "handover_reason = $3, handover_notice_sent_at = NULL, updated_at = now() "
		    "WHERE id = $1::bigint AND business_id = $2::bigint"},
};

void flow_process_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	flow_store_register();
}

/* A refused webhook: its [SECURITY] line is written; this keeps the audit row. */
static void webhook_refused(http_request_t *req, const char *reason, int64_t business_id)
{
	audit_event_t ev = {.tag = "SECURITY",
			    .action = "webhook.signature_failed",
			    .resource_type = "webhook",
			    .business_id = business_id,
			    .outcome = "denied"};

	ev.details = json_arena(req->arena, json_pack("{s:s, s:s}", "provider", "whatsapp",
						      "reason", reason ? reason : "unknown"));
	audit_record_detached(req, &ev);
}

void flow_process_install(void)
{
	wa_set_inbound_hook(flow_process_inbound);
	wa_set_refusal_hook(webhook_refused);
}

/* What one message's processing works with. */
typedef struct proc {
	db_t *db;
	arena_t *a;
	const wa_inbound_t *in;
	json_t *contact; /* {wa_id, name, email, language, notes}, arena-owned */
	flow_store_env_t store;
	flow_env_t env;
} proc_t;

static int enqueue_text(proc_t *p, const char *text, const char *sender)
{
	return wa_outbox_enqueue(p->db, p->a, p->in->business_id, p->in->contact_id,
				 wa_text_payload(p->a, text), sender, NULL);
}

/* An audit row of this contact (tag HANDOVER or FLOW_STATE) and its line. */
static int contact_event(proc_t *p, const char *tag, const char *action, json_t *details)
{
	audit_event_t ev = {.tag = tag,
			    .action = action,
			    .resource_type = "contact",
			    .resource_id = p->in->contact_id,
			    .business_id = p->in->business_id,
			    .outcome = "ok",
			    .details = details ? json_arena(p->a, details) : NULL};

	return audit_write(p->db, p->a, &ev);
}

/*
 * Over a limit: the message stays stored, unprocessed; one notice per window.
 * Returns 0 or ERR_*.
 */
static int over_limit(proc_t *p, const ratelimit_rule_t *rule, int retry_after_s)
{
	ratelimit_result_t notice;
	char subject[32];
	int err;

	log_info(PROCESS_COMPONENT,
		 "[RATE_LIMIT] business=%lld contact=%lld rule=%s retry_after_s=%d: stored, "
		 "not processed",
		 (long long)p->in->business_id, (long long)p->in->contact_id, rule->name,
		 retry_after_s);
	snprintf(subject, sizeof(subject), "%lld", (long long)p->in->contact_id);
	err = ratelimit_take(p->db, p->a, &NOTICE_RULE, p->in->business_id, subject, &notice);
	if (err < 0)
		return err;
	if (!notice.allowed)
		return 0;
	err = enqueue_text(p, SLOWDOWN_TEXT, "system");
	if (err < 0)
		return err;
	return contact_event(
	    p, "RATE_LIMIT", "flow.slowdown_notice",
	    json_pack("{s:s, s:i}", "rule", rule->name, "retry_after_s", retry_after_s));
}

/* Take a hit of rule for this contact: 1 allowed, 0 over (handled), or ERR_*. */
static int take(proc_t *p, const ratelimit_rule_t *rule)
{
	ratelimit_result_t res;
	char subject[32];
	int err;

	snprintf(subject, sizeof(subject), "%lld", (long long)p->in->contact_id);
	err = ratelimit_take(p->db, p->a, rule, p->in->business_id, subject, &res);
	if (err < 0)
		return err;
	if (res.allowed)
		return 1;
	err = over_limit(p, rule, res.retry_after_s);
	return err < 0 ? err : 0;
}

/* Persist the session: saved while active, gone when it ended. */
static int save_session(proc_t *p, const flow_session_t *s)
{
	arena_t *a = p->a;
	const char *biz = db_i64s(a, p->in->business_id), *contact = db_i64s(a, p->in->contact_id);
	size_t len;
	int err;

	if (!s->active)
		return DB_EXEC(p->db, a, &err, "fp_state_delete", contact, biz) ? 0 : err;
	if (DB_EXEC(p->db, a, &err, "fp_state_save", contact, biz, db_i64s(a, s->flow_id),
		    db_i64s(a, s->flow_version_id), s->current_step,
		    json_dump_arena(a, s->context, &len),
		    s->awaiting ? json_dump_arena(a, s->awaiting, &len) : NULL,
		    db_i64s(a, s->fallback_count)) == NULL)
		return err;
	return 0;
}

/* The FLOW_STATE rows: starts, ends and switches (steps stay in the log line only). */
static int record_events(proc_t *p, const flow_result_t *res)
{
	json_t *e;
	size_t i;
	int err;

	json_array_foreach(res->events, i, e)
	{
		const char *name = json_string_value(json_object_get(e, "event")), *action;

		if (name == NULL)
			continue;
		if (strcmp(name, "flow_started") == 0)
			action = "flow.started";
		else if (strcmp(name, "flow_ended") == 0)
			action = "flow.ended";
		else if (strcmp(name, "flow_switched") == 0)
			action = "flow.switched";
		else if (strcmp(name, "error") == 0)
			action = "flow.error";
		else
			continue;
		err = contact_event(p, "FLOW_STATE", action, json_deep_copy(e));
		if (err < 0)
			return err;
	}
	return 0;
}

/* Apply everything one engine call produced, in the message's transaction. */
static int apply(proc_t *p, const flow_session_t *s, const flow_result_t *res)
{
	json_t *m;
	size_t i, len;
	int err;

	json_array_foreach(res->messages, i, m)
	{
		err = wa_outbox_enqueue(p->db, p->a, p->in->business_id, p->in->contact_id, m,
					"bot", NULL);
		if (err < 0)
			return err;
	}
	if (json_object_size(res->contact_updates) > 0 &&
	    DB_EXEC(p->db, p->a, &err, "fp_contact_update", db_i64s(p->a, p->in->contact_id),
		    db_i64s(p->a, p->in->business_id),
		    json_dump_arena(p->a, res->contact_updates, &len)) == NULL)
		return err;
	err = save_session(p, s);
	if (err < 0)
		return err;
	err = record_events(p, res);
	if (err < 0)
		return err;
	if (res->handover) {
		const char *why = res->handover_reason ? res->handover_reason : "step";

		if (DB_EXEC(p->db, p->a, &err, "fp_handover", db_i64s(p->a, p->in->contact_id),
			    db_i64s(p->a, p->in->business_id), why) == NULL)
			return err;
		err = contact_event(p, "HANDOVER", "handover.requested",
				    json_pack("{s:s}", "reason", why));
		if (err < 0)
			return err;
	}
	if (res->error != NULL)
		log_warn(PROCESS_COMPONENT,
			 "business=%lld contact=%lld flow error=%s: session ended, apology sent, "
			 "handed over",
			 (long long)p->in->business_id, (long long)p->in->contact_id, res->error);
	return 0;
}

/*
 * The safety net for what the engine cannot report itself (a stored version
 * that no longer loads): end the session, apologise once, hand over.
 */
static int fail_safe(proc_t *p, const char *why)
{
	flow_session_t s;
	flow_result_t res;
	int err;

	flow_session_init(&s);
	flow_result_init(&res);
	json_array_append_new(res.messages, json_incref(wa_text_payload(p->a, APOLOGY_TEXT)));
	res.handover = true;
	res.handover_reason = "error";
	res.ended = true;
	res.error = why;
	err = apply(p, &s, &res);
	flow_result_free(&res);
	return err;
}

/* Load the contact (for templates) and whether it waits for a human. */
static int load_contact(proc_t *p, bool *needs_human)
{
	PGresult *r;
	int err;

	r = DB_EXEC(p->db, p->a, &err, "fp_contact", db_i64s(p->a, p->in->contact_id),
		    db_i64s(p->a, p->in->business_id));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
		return ERR_NOTFOUND;
	*needs_human = db_bool(r, 0, 0);
	p->contact =
	    json_arena(p->a, json_pack("{s:s, s:s, s:s, s:s, s:s}", "wa_id", db_str(r, 0, 1),
				       "name", db_str(r, 0, 2), "email", db_str(r, 0, 3),
				       "language", db_str(r, 0, 4), "notes", db_str(r, 0, 5)));
	return 0;
}

/* A live session: handle the reply on the version it started on. */
static int continue_session(proc_t *p, const PGresult *st, const flow_reply_t *reply)
{
	flow_def_ref_t ref;
	flow_session_t s;
	flow_result_t res;
	json_t *ctx = NULL, *awaiting = NULL;
	const char *why = NULL;
	int err;

	err = flow_store_version(p->db, p->a, db_i64(st, 0, 1), &ref);
	if (err == ERR_NOTFOUND || err == ERR_INTERNAL)
		return fail_safe(p, "version_unavailable");
	if (err < 0)
		return err;
	ctx = json_decode_strict(p->a, db_str(st, 0, 3), strlen(db_str(st, 0, 3)), &why);
	if (!db_isnull(st, 0, 4))
		awaiting =
		    json_decode_strict(p->a, db_str(st, 0, 4), strlen(db_str(st, 0, 4)), &why);
	flow_session_init(&s);
	if (flow_session_load(&s, &ref, db_str(st, 0, 2), ctx, awaiting, (int)db_i64(st, 0, 5)) <
	    0) {
		flow_session_clear(&s);
		return fail_safe(p, "state_unloadable");
	}
	(void)flow_engine_handle(&p->env, &s, reply, &res);
	err = p->store.err < 0 ? p->store.err : apply(p, &s, &res);
	flow_result_free(&res);
	flow_session_clear(&s);
	return err;
}

/* No session: a keyword may start an active flow. */
static int maybe_trigger(proc_t *p, const flow_reply_t *reply)
{
	flow_candidate_t *cands = NULL;
	flow_session_t s;
	flow_result_t res;
	json_t *init = NULL;
	size_t n = 0;
	int idx, err;

	if (reply->text == NULL || reply->text[0] == '\0')
		return 0;
	err = flow_store_candidates(p->db, p->a, p->in->business_id, &cands, &n);
	if (err < 0)
		return err;
	idx = flow_trigger_match(cands, n, reply->text, &init);
	if (idx < 0)
		return 0;
	json_arena(p->a, init);
	err = take(p, &RATELIMIT_FLOW_START);
	if (err <= 0)
		return err;
	flow_session_init(&s);
	(void)flow_engine_start(&p->env, &s, &cands[idx].flow, init, &res);
	err = p->store.err < 0 ? p->store.err : apply(p, &s, &res);
	flow_result_free(&res);
	flow_session_clear(&s);
	return err;
}

int flow_process_inbound(db_t *db, arena_t *a, const wa_inbound_t *in)
{
	proc_t p;
	flow_reply_t reply;
	PGresult *st;
	bool needs_human = false;
	int err;

	memset(&p, 0, sizeof(p));
	memset(&reply, 0, sizeof(reply));
	p.db = db;
	p.a = a;
	p.in = in;
	err = load_contact(&p, &needs_human);
	if (err < 0)
		goto out;
	if (needs_human)
		goto out; /* silenced until an agent resolves the handover */
	err = take(&p, &RATELIMIT_FLOW_INBOUND);
	if (err <= 0)
		goto out;
	err = 0;
	p.store = (flow_store_env_t){.db = db, .a = a, .business_id = in->business_id};
	p.env = (flow_env_t){.load_flow = flow_store_load_flow,
			     .ud = &p.store,
			     .contact = p.contact,
			     .apology_text = APOLOGY_TEXT};
	(void)flow_reply_parse(in->msg->raw, &reply);
	st = DB_EXEC(db, a, &err, "fp_state", db_i64s(a, in->contact_id),
		     db_i64s(a, in->business_id));
	if (st == NULL)
		goto out;
	if (PQntuples(st) == 1)
		err = continue_session(&p, st, &reply);
	else
		err = maybe_trigger(&p, &reply);
out:
	flow_reply_free(&reply);
	if (err < 0)
		log_warn(PROCESS_COMPONENT,
			 "business=%lld contact=%lld message=%lld not processed "
			 "err=%d",
			 (long long)in->business_id, (long long)in->contact_id,
			 (long long)in->message_id, err);
	return err < 0 ? err : 0;
}
