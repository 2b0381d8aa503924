/*
 * api_contacts.c - WhatsApp contacts and the human-handover inbox: the list
 * (?needs_human=true is the inbox), one contact with its conversation state
 * and last messages, an agent's reply (queued to the outbox), and resolving
 * a handover so the bot may talk to the contact again.
 *
 * Writers lock the contact row first (FOR UPDATE), the order the webhook
 * processing and the sweeps use, so an agent's action never interleaves with
 * the processing of that contact's message. An agent's reply does not lift
 * the handover: only resolving does.
 */
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "dialflow/flow.h"
#include "dialflow/log.h"
#include "dialflow/strnum.h"
#include "dialflow/whatsapp.h"
#include "flows_api.h"

/* A contact, its flow (by name) and step, and its last message time: contact_json() reads these. */
#define CONTACT_COLS                                                                               \
	"c.id, c.wa_id, c.name, c.needs_human, f.name, s.current_step, "                           \
	"(SELECT to_char(m.created_at" FLOW_API_UTC " FROM messages m "                            \
	"WHERE m.business_id = c.business_id AND m.contact_id = c.id ORDER BY m.id DESC LIMIT "    \
	"1), "                                                                                     \
	"c.email, c.language, c.notes, to_char(c.handover_requested_at" FLOW_API_UTC ", "          \
	"c.handover_reason, to_char(c.handover_notice_sent_at" FLOW_API_UTC ", "                   \
	"to_char(c.last_seen" FLOW_API_UTC ", to_char(c.created_at" FLOW_API_UTC ", "              \
	"to_char(c.updated_at" FLOW_API_UTC ", s.flow_id"
#define CONTACT_NCOLS 17
#define CONTACT_FROM                                                                               \
	" FROM contacts c LEFT JOIN contact_flow_state s ON s.contact_id = c.id "                  \
	"AND s.business_id = c.business_id LEFT JOIN flows f ON f.id = s.flow_id "                 \
	"AND f.business_id = c.business_id "

#define MESSAGE_COLS                                                                               \
	"m.id, m.direction, m.wamid, m.type, m.text, m.payload::text, m.status, m.error::text, "   \
	"m.sender, m.agent_id, to_char(m.created_at" FLOW_API_UTC ", "                             \
	"to_char(m.sent_at" FLOW_API_UTC ", to_char(m.delivered_at" FLOW_API_UTC ", "              \
	"to_char(m.read_at" FLOW_API_UTC ", to_char(m.failed_at" FLOW_API_UTC

static const db_stmt_t stmts[] = {
    /* the inbox (needs_human) oldest request first; otherwise newest contacts first */
    {"fapi_contacts_list",
     "SELECT " CONTACT_COLS ", count(*) OVER ()" CONTACT_FROM
     "WHERE c.business_id = $1::bigint AND ($4::boolean IS NULL OR c.needs_human = $4::boolean) "
     "ORDER BY CASE WHEN $4::boolean THEN c.handover_requested_at END ASC NULLS LAST, c.id DESC "
     "LIMIT $2::bigint OFFSET $3::bigint"},
    {"fapi_contacts_count", "SELECT count(*) FROM contacts WHERE business_id = $1::bigint "
			    "AND ($2::boolean IS NULL OR needs_human = $2::boolean)"},
    {"fapi_contact_get",
     "SELECT " CONTACT_COLS CONTACT_FROM "WHERE c.business_id = $1::bigint AND c.id = $2::bigint"},
    {"fapi_contact_lock", "SELECT needs_human, handover_reason FROM contacts "
			  "WHERE business_id = $1::bigint AND id = $2::bigint FOR UPDATE"},
    {"fapi_contact_state",
     "SELECT s.flow_id, f.name, s.flow_version_id, v.version, s.current_step, s.context::text, "
     "s.awaiting::text, s.fallback_count, to_char(s.started_at" FLOW_API_UTC
     ", to_char(s.updated_at" FLOW_API_UTC " FROM contact_flow_state s "
     "JOIN flows f ON f.id = s.flow_id AND f.business_id = s.business_id "
     "LEFT JOIN flow_versions v ON v.id = s.flow_version_id AND v.business_id = s.business_id "
     "WHERE s.business_id = $1::bigint AND s.contact_id = $2::bigint"},
    /* the last N (before before_id when given), oldest first */
    {"fapi_contact_messages",
     "SELECT * FROM (SELECT " MESSAGE_COLS " FROM messages m WHERE m.business_id = $1::bigint "
     "AND m.contact_id = $2::bigint AND ($4::bigint IS NULL OR m.id < $4::bigint) "
     "ORDER BY m.id DESC LIMIT $3::bigint) x ORDER BY x.id"},
    {"fapi_contact_resolve",
     "UPDATE contacts SET needs_human = false, handover_requested_at = NULL, "
     "handover_reason = NULL, handover_notice_sent_at = NULL, updated_at = now() "
     "WHERE business_id = $1::bigint AND id = $2::bigint"},
};

void flow_api_contacts_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Row i as a list item; `full` adds every other non-secret column. */
static json_t *contact_json(const PGresult *r, int i, bool full)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "wa_id", json_string(db_str(r, i, 1)));
	json_object_set_new(o, "name", flow_api_jstr(r, i, 2));
	json_object_set_new(o, "needs_human", json_boolean(db_bool(r, i, 3)));
	json_object_set_new(o, "current_flow", flow_api_jstr(r, i, 4));
	json_object_set_new(o, "current_step", flow_api_jstr(r, i, 5));
	json_object_set_new(o, "last_message_at", flow_api_jstr(r, i, 6));
	json_object_set_new(o, "handover_requested_at", flow_api_jstr(r, i, 10));
	json_object_set_new(o, "handover_reason", flow_api_jstr(r, i, 11));
	if (!full)
		return o;
	json_object_set_new(o, "email", flow_api_jstr(r, i, 7));
	json_object_set_new(o, "language", flow_api_jstr(r, i, 8));
	json_object_set_new(o, "notes", flow_api_jstr(r, i, 9));
	json_object_set_new(o, "handover_notice_sent_at", flow_api_jstr(r, i, 12));
	json_object_set_new(o, "last_seen", flow_api_jstr(r, i, 13));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 14)));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, 15)));
	json_object_set_new(o, "current_flow_id", flow_api_jint(r, i, 16));
	return o;
}

static json_t *message_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "direction", json_string(db_str(r, i, 1)));
	json_object_set_new(o, "wamid", flow_api_jstr(r, i, 2));
	json_object_set_new(o, "type", json_string(db_str(r, i, 3)));
	json_object_set_new(o, "text", flow_api_jstr(r, i, 4));
	json_object_set_new(o, "payload", flow_api_jdoc(r, i, 5, json_object()));
	json_object_set_new(o, "status", json_string(db_str(r, i, 6)));
	json_object_set_new(o, "error", flow_api_jdoc(r, i, 7, json_null()));
	json_object_set_new(o, "sender", flow_api_jstr(r, i, 8));
	json_object_set_new(o, "agent_id", flow_api_jint(r, i, 9));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 10)));
	json_object_set_new(o, "sent_at", flow_api_jstr(r, i, 11));
	json_object_set_new(o, "delivered_at", flow_api_jstr(r, i, 12));
	json_object_set_new(o, "read_at", flow_api_jstr(r, i, 13));
	json_object_set_new(o, "failed_at", flow_api_jstr(r, i, 14));
	return o;
}

static json_t *state_json(const PGresult *r)
{
	return json_pack(
	    "{s:I,s:s,s:I,s:o,s:s,s:o,s:o,s:I,s:s,s:s}", "flow_id", (json_int_t)db_i64(r, 0, 0),
	    "flow_name", db_str(r, 0, 1), "flow_version_id", (json_int_t)db_i64(r, 0, 2),
	    "flow_version", flow_api_jint(r, 0, 3), "current_step", db_str(r, 0, 4), "context",
	    flow_api_jdoc(r, 0, 5, json_object()), "awaiting", flow_api_jdoc(r, 0, 6, json_null()),
	    "fallback_count", (json_int_t)db_i64(r, 0, 7), "started_at", db_str(r, 0, 8),
	    "updated_at", db_str(r, 0, 9));
}

/* Lock contact id (FOR UPDATE). Returns 0 with *out, 1 after answering 403/404, or ERR_*. */
static int lock_contact(http_request_t *req, int64_t id, PGresult **out)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "fapi_contact_lock",
			      api_business_param(req), db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) {
		err = api_tenant_guard_miss(req, "contact", id);
		return err < 0 ? err : 1;
	}
	*out = r;
	return 0;
}

int flows_contacts_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	json_fielderr_t fe;
	const char *nh = NULL;
	int on = 0, err;
	PGresult *r;
	json_t *items;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	if (flow_api_bool_query(req, "needs_human", &on, &fe) < 0) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (http_query(req, "needs_human") != NULL)
		nh = on ? "true" : "false";
	r = DB_EXEC(req->db, req->arena, &err, "fapi_contacts_list", api_business_param(req),
		    db_i64s(req->arena, size), db_i64s(req->arena, (page - 1) * size), nh);
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, contact_json(r, i, false));
		total = db_i64(r, i, CONTACT_NCOLS);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "fapi_contacts_count",
				      api_business_param(req), nh);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

int flows_contacts_get(http_request_t *req)
{
	int64_t id = req->params[0], before = 0;
	arena_t *a = req->arena;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id), *bq;
	PGresult *c, *s, *m;
	json_t *msgs;
	int err;

	bq = http_query(req, "before_id");
	if (bq != NULL && strnum_i64(bq, 1, INT64_MAX, &before) < 0) {
		json_fielderr_t fe;

		json_fielderr_init(&fe, a);
		json_fielderr_add(&fe, "before_id", "must be a positive integer message id");
		http_reply_invalid(req, &fe);
		return 0;
	}
	c = DB_EXEC(req->db, a, &err, "fapi_contact_get", bid, ids);
	if (c == NULL)
		return err;
	if (PQntuples(c) == 0)
		return api_tenant_guard_miss(req, "contact", id);
	s = DB_EXEC(req->db, a, &err, "fapi_contact_state", bid, ids);
	if (s == NULL)
		return err;
	m = DB_EXEC(req->db, a, &err, "fapi_contact_messages", bid, ids,
		    db_i64s(a, FLOW_API_CONTACT_MESSAGES), before > 0 ? db_i64s(a, before) : NULL);
	if (m == NULL)
		return err;
	msgs = json_array();
	for (int i = 0; i < PQntuples(m); i++)
		json_array_append_new(msgs, message_json(m, i));
	http_reply_json(req, 200,
			json_pack("{s:o,s:o,s:o}", "contact", contact_json(c, 0, true),
				  "flow_state", PQntuples(s) == 1 ? state_json(s) : json_null(),
				  "messages", msgs));
	return 0;
}

/* Whether s holds something other than white space. */
static bool has_content(const char *s)
{
	for (; *s; s++)
		if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
			return true;
	return false;
}

int flows_contacts_reply(http_request_t *req)
{
	int64_t id = req->params[0], mid = 0;
	json_fielderr_t fe;
	const char *text = NULL;
	PGresult *r = NULL;
	int rc;

	rc = lock_contact(req, id, &r);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json))
		json_fielderr_add(&fe, "body", "must be a JSON object");
	else if (json_get_str(req->json, "text", true, 1, FLOW_API_REPLY_MAX * 4, &text, &fe) > 0) {
		if (flow_utf8_len(text) > FLOW_API_REPLY_MAX)
			json_fielderr_add(&fe, "text", "is longer than 4096 characters");
		else if (!has_content(text))
			json_fielderr_add(&fe, "text", "must not be blank");
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	rc = wa_outbox_enqueue_agent(req->db, req->arena, req->principal->business_id, id,
				     wa_text_payload(req->arena, text), req->principal->user_id,
				     &mid);
	if (rc == ERR_NOTFOUND)
		return api_tenant_guard_miss(req, "contact", id);
	if (rc < 0)
		return rc;
	log_info("flows", "agent reply queued contact=%lld message=%lld user=%lld", (long long)id,
		 (long long)mid, (long long)req->principal->user_id);
	http_reply_json(req, 202,
			json_pack("{s:I,s:s}", "message_id", (json_int_t)mid, "status", "queued"));
	return 0;
}

int flows_contacts_resolve(http_request_t *req)
{
	int64_t id = req->params[0];
	arena_t *a = req->arena;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id);
	PGresult *r = NULL;
	json_t *d;
	int rc, err;

	rc = lock_contact(req, id, &r);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	d = json_arena(a, json_pack("{s:b,s:o}", "was_pending", db_bool(r, 0, 0), "reason",
				    flow_api_jstr(r, 0, 1)));
	if (DB_EXEC(req->db, a, &err, "fapi_contact_resolve", bid, ids) == NULL)
		return err;
	rc = flow_api_audit(req, "HANDOVER", "handover.resolved", "contact", id, d);
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, a, &err, "fapi_contact_get", bid, ids);
	if (r == NULL)
		return err;
	http_reply_json(req, 200, json_pack("{s:o}", "contact", contact_json(r, 0, true)));
	return 0;
}
