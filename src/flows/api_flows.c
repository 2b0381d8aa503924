/*
 * api_flows.c - flows: list, create, read, new versions, delete,
 * (de)activation, the version history, and the simulator.
 *
 * A flow's definition lives in flow_versions, immutable; PUT adds version
 * max+1 and moves flows.current_version_id, which is what new conversations
 * start on. A running conversation keeps the version its state row pins, so
 * saving never breaks a conversation in progress. The flows row carries the
 * definition's name, description, trigger keywords and config (the trigger
 * lookup reads them) and is_active, which activate/deactivate own.
 *
 * The simulator runs the pure engine (flow.h) over the current version and
 * reads nothing but flows: it writes no row, sends nothing and audits
 * nothing, so an agent can try a flow as often as they like.
 */
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "dialflow/flow.h"
#include "dialflow/flow_store.h"
#include "dialflow/log.h"
#include "flows_api.h"

/* A flow at its current version: the columns flow_json() reads. */
#define FLOW_COLS                                                                                  \
	"f.id, f.name, f.description, v.version, v.id, f.is_active, f.trigger_keywords::text, "    \
	"f.trigger_config::text, v.definition::text, to_char(f.created_at" FLOW_API_UTC            \
	", to_char(f.updated_at" FLOW_API_UTC ", f.created_by, "                                   \
	"(SELECT count(*) FROM contact_flow_state s WHERE s.business_id = f.business_id "          \
	"AND s.flow_id = f.id)"
#define FLOW_FROM                                                                                  \
	" FROM flows f LEFT JOIN flow_versions v ON v.id = f.current_version_id "                  \
	"AND v.business_id = f.business_id "

static const db_stmt_t stmts[] = {
    {"fapi_list",
     "SELECT f.id, f.name, f.description, v.version, f.is_active, f.trigger_keywords::text, "
     "to_char(f.updated_at" FLOW_API_UTC ", count(*) OVER ()" FLOW_FROM
     "WHERE f.business_id = $1::bigint AND ($4::boolean IS NULL OR f.is_active = $4::boolean) "
     "ORDER BY f.name, f.id LIMIT $2::bigint OFFSET $3::bigint"},
    {"fapi_count", "SELECT count(*) FROM flows WHERE business_id = $1::bigint "
		   "AND ($2::boolean IS NULL OR is_active = $2::boolean)"},
    {"fapi_get", "SELECT " FLOW_COLS FLOW_FROM "WHERE f.business_id = $1::bigint "
		 "AND f.id = $2::bigint"},
    {"fapi_exists", "SELECT id FROM flows WHERE business_id = $1::bigint AND id = $2::bigint"},
    /* FOR NO KEY UPDATE: a conversation starting on this flow (its state row's
     * foreign key takes KEY SHARE) is not blocked by an edit */
    {"fapi_lock", "SELECT is_active FROM flows WHERE business_id = $1::bigint "
		  "AND id = $2::bigint FOR NO KEY UPDATE"},
    {"fapi_lock_delete", "SELECT name FROM flows WHERE business_id = $1::bigint "
			 "AND id = $2::bigint FOR UPDATE"},
    {"fapi_name_taken", "SELECT id FROM flows WHERE business_id = $1::bigint AND name = $2 "
			"AND id <> $3::bigint"},
    {"fapi_insert",
     "INSERT INTO flows (business_id, name, description, is_active, trigger_keywords, "
     "trigger_config, created_by) VALUES ($1::bigint, $2, $3, coalesce($4::boolean, false), "
     "$5::jsonb, $6::jsonb, $7::bigint) RETURNING id"},
    /* the flow row is locked (or new), so max+1 does not race */
    {"fapi_new_version",
     "INSERT INTO flow_versions (flow_id, business_id, version, definition, created_by) "
     "SELECT $2::bigint, $1::bigint, coalesce(max(version), 0) + 1, $3::jsonb, $4::bigint "
     "FROM flow_versions WHERE business_id = $1::bigint AND flow_id = $2::bigint "
     "RETURNING id, version"},
    {"fapi_update", "UPDATE flows SET name = $3, description = $4, trigger_keywords = $5::jsonb, "
		    "trigger_config = $6::jsonb, is_active = coalesce($7::boolean, is_active), "
		    "current_version_id = $8::bigint, updated_at = now() "
		    "WHERE business_id = $1::bigint AND id = $2::bigint"},
    {"fapi_set_active", "UPDATE flows SET is_active = $3::boolean, updated_at = now() "
			"WHERE business_id = $1::bigint AND id = $2::bigint"},
    {"fapi_sessions", "SELECT count(*) FROM contact_flow_state WHERE business_id = $1::bigint "
		      "AND flow_id = $2::bigint"},
    /* the contacts in the flow, locked in id order as the webhook locks them */
    {"fapi_lock_contacts",
     "SELECT c.id FROM contacts c WHERE c.business_id = $1::bigint AND c.id IN "
     "(SELECT s.contact_id FROM contact_flow_state s WHERE s.business_id = $1::bigint "
     "AND s.flow_id = $2::bigint) ORDER BY c.id FOR UPDATE OF c"},
    {"fapi_end_sessions", "DELETE FROM contact_flow_state WHERE business_id = $1::bigint "
			  "AND flow_id = $2::bigint"},
    {"fapi_delete", "DELETE FROM flows WHERE business_id = $1::bigint AND id = $2::bigint"},
    {"fapi_versions",
     "SELECT v.id, v.version, v.created_by, to_char(v.created_at" FLOW_API_UTC
     ", v.id = f.current_version_id, count(*) OVER () FROM flow_versions v JOIN flows f "
     "ON f.id = v.flow_id AND f.business_id = v.business_id WHERE v.business_id = $1::bigint "
     "AND v.flow_id = $2::bigint ORDER BY v.version DESC LIMIT $3::bigint OFFSET $4::bigint"},
    {"fapi_versions_count", "SELECT count(*) FROM flow_versions WHERE business_id = $1::bigint "
			    "AND flow_id = $2::bigint"},
};

void flow_api_flows_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Row i of fapi_get as the API's flow object. */
static json_t *flow_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "name", json_string(db_str(r, i, 1)));
	json_object_set_new(o, "description", flow_api_jstr(r, i, 2));
	json_object_set_new(o, "version", flow_api_jint(r, i, 3));
	json_object_set_new(o, "version_id", flow_api_jint(r, i, 4));
	json_object_set_new(o, "is_active", json_boolean(db_bool(r, i, 5)));
	json_object_set_new(o, "trigger_keywords", flow_api_jdoc(r, i, 6, json_array()));
	json_object_set_new(o, "trigger_config", flow_api_jdoc(r, i, 7, json_object()));
	json_object_set_new(o, "definition", flow_api_jdoc(r, i, 8, json_null()));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 9)));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, 10)));
	json_object_set_new(o, "created_by", flow_api_jint(r, i, 11));
	json_object_set_new(o, "active_sessions", json_integer(db_i64(r, i, 12)));
	return o;
}

/* Answer 200/201 {flow} for flow id. Returns 0 or ERR_*. */
static int reply_flow(http_request_t *req, int status, int64_t id)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "fapi_get", api_business_param(req),
			      db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
		return ERR_INTERNAL; /* written in this very transaction */
	http_reply_json(req, status, json_pack("{s:o}", "flow", flow_json(r, 0)));
	return 0;
}

/*
 * Check the body as a whole definition. Returns 0 with *def, or 1 after
 * answering 413/400/422 (every problem at once, with its path).
 */
static int definition_body(http_request_t *req, json_t **def)
{
	json_t *problems;
	json_fielderr_t fe;
	size_t n;

	if (req->body_len > FLOW_API_BODY_MAX) {
		http_reply_error(req, 413, "payload_too_large",
				 "a flow definition is at most 1 MiB", NULL);
		return 1;
	}
	if (!json_is_object(req->json)) {
		json_fielderr_init(&fe, req->arena);
		json_fielderr_add(&fe, "body", "must be a flow definition (a JSON object)");
		http_reply_invalid(req, &fe);
		return 1;
	}
	problems = json_array();
	n = flow_validate(req->json, problems);
	if (n > 0) {
		http_reply_error(
		    req, 422, "invalid_flow",
		    n == 1 ? "the flow definition has 1 problem"
			   : arena_sprintf(req->arena, "the flow definition has %zu problems", n),
		    json_pack("{s:o}", "problems", problems));
		return 1;
	}
	json_decref(problems);
	*def = req->json;
	return 0;
}

/* The flows-row columns a definition carries, as statement parameters. */
typedef struct flow_cols {
	const char *name, *description, *is_active, *keywords, *config, *definition;
} flow_cols_t;

static void definition_cols(http_request_t *req, json_t *def, flow_cols_t *c)
{
	json_t *kw = json_object_get(def, "trigger_keywords");
	json_t *tc = json_object_get(def, "trigger_config");
	json_t *act = json_object_get(def, "is_active");
	size_t len;

	c->name = json_string_value(json_object_get(def, "name"));
	c->description = json_string_value(json_object_get(def, "description"));
	c->is_active = json_is_boolean(act) ? (json_is_true(act) ? "true" : "false") : NULL;
	c->keywords = json_is_array(kw) ? json_dump_arena(req->arena, kw, &len) : "[]";
	c->config = json_is_object(tc) ? json_dump_arena(req->arena, tc, &len) : "{}";
	c->definition = json_dump_arena(req->arena, def, &len);
}

/* 409 when another flow of the business has this name. Returns 0, 1 after answering, ERR_*. */
static int name_free(http_request_t *req, const char *name, int64_t self)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "fapi_name_taken", api_business_param(req),
			      name, db_i64s(req->arena, self));

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return 0;
	http_reply_error(req, 409, "conflict", "another flow of this business has this name",
			 json_pack("{s:I}", "flow_id", (json_int_t)db_i64(r, 0, 0)));
	return 1;
}

/* Add a version of flow id with definition c and point the flow at it. *version gets its number. */
static int save_version(http_request_t *req, int64_t id, const flow_cols_t *c, int64_t *version)
{
	arena_t *a = req->arena;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id);
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, a, &err, "fapi_new_version", bid, ids, c->definition,
		    db_i64s(a, req->principal->user_id));
	if (r == NULL)
		return err;
	*version = db_i64(r, 0, 1);
	if (DB_EXEC(req->db, a, &err, "fapi_update", bid, ids, c->name, c->description, c->keywords,
		    c->config, c->is_active, db_str(r, 0, 0)) == NULL)
		return err;
	return 0;
}

int flows_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	json_fielderr_t fe;
	const char *active = NULL;
	int on = 0, err;
	PGresult *r;
	json_t *items;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	if (flow_api_bool_query(req, "is_active", &on, &fe) < 0) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (http_query(req, "is_active") != NULL)
		active = on ? "true" : "false";
	r = DB_EXEC(req->db, req->arena, &err, "fapi_list", api_business_param(req),
		    db_i64s(req->arena, size), db_i64s(req->arena, (page - 1) * size), active);
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(
		    items,
		    json_pack("{s:I,s:s,s:o,s:o,s:b,s:o,s:s}", "id", (json_int_t)db_i64(r, i, 0),
			      "name", db_str(r, i, 1), "description", flow_api_jstr(r, i, 2),
			      "version", flow_api_jint(r, i, 3), "is_active", db_bool(r, i, 4),
			      "trigger_keywords", flow_api_jdoc(r, i, 5, json_array()),
			      "updated_at", db_str(r, i, 6)));
		total = db_i64(r, i, 7);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "fapi_count",
				      api_business_param(req), active);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

int flows_get(http_request_t *req)
{
	int64_t id = req->params[0];
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "fapi_get", api_business_param(req),
			      db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "flow", id);
	http_reply_json(req, 200, json_pack("{s:o}", "flow", flow_json(r, 0)));
	return 0;
}

int flows_create(http_request_t *req)
{
	json_t *def = NULL;
	flow_cols_t c;
	int64_t id, version = 0;
	PGresult *r;
	int rc, err;

	rc = definition_body(req, &def);
	if (rc != 0)
		return 0;
	definition_cols(req, def, &c);
	rc = name_free(req, c.name, 0);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	/* a concurrent create of the same name loses on the unique key: ERR_CONFLICT, 409 */
	r = DB_EXEC(req->db, req->arena, &err, "fapi_insert", api_business_param(req), c.name,
		    c.description, c.is_active, c.keywords, c.config,
		    db_i64s(req->arena, req->principal->user_id));
	if (r == NULL)
		return err;
	id = db_i64(r, 0, 0);
	rc = save_version(req, id, &c, &version);
	if (rc < 0)
		return rc;
	rc = flow_api_audit(req, "AUDIT", "flow.create", "flow", id,
			    json_arena(req->arena, json_pack("{s:I,s:s}", "version",
							     (json_int_t)version, "name", c.name)));
	if (rc < 0)
		return rc;
	return reply_flow(req, 201, id);
}

int flows_replace(http_request_t *req)
{
	int64_t id = req->params[0], version = 0;
	json_t *def = NULL;
	flow_cols_t c;
	PGresult *r;
	int rc, err;

	r = DB_EXEC(req->db, req->arena, &err, "fapi_lock", api_business_param(req),
		    db_i64s(req->arena, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "flow", id);
	rc = definition_body(req, &def);
	if (rc != 0)
		return 0;
	definition_cols(req, def, &c);
	rc = name_free(req, c.name, id);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	/* contact_flow_state rows keep their flow_version_id: running conversations
	 * finish on the version they started on */
	rc = save_version(req, id, &c, &version);
	if (rc < 0)
		return rc;
	rc = flow_api_audit(
	    req, "AUDIT", "flow.update", "flow", id,
	    json_arena(req->arena, json_pack("{s:I}", "version", (json_int_t)version)));
	if (rc < 0)
		return rc;
	return reply_flow(req, 200, id);
}

int flows_delete(http_request_t *req)
{
	int64_t id = req->params[0], in_use;
	arena_t *a = req->arena;
	const char *bid = api_business_param(req), *ids = db_i64s(a, id), *force;
	bool forced = false;
	PGresult *r;
	int err;

	force = http_query(req, "force");
	if (force != NULL) {
		int on = 0;
		json_fielderr_t fe;

		json_fielderr_init(&fe, a);
		if (flow_api_bool_query(req, "force", &on, &fe) < 0) {
			http_reply_invalid(req, &fe);
			return 0;
		}
		forced = on == 1;
	}
	r = DB_EXEC(req->db, a, &err, "fapi_exists", bid, ids);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "flow", id);
	/* contacts before the flow row: the webhook holds a contact's lock when its
	 * state row's foreign key share-locks the flow */
	if (forced && DB_EXEC(req->db, a, &err, "fapi_lock_contacts", bid, ids) == NULL)
		return err;
	r = DB_EXEC(req->db, a, &err, "fapi_lock_delete", bid, ids);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) /* deleted meanwhile */
		return api_tenant_guard_miss(req, "flow", id);
	r = DB_EXEC(req->db, a, &err, "fapi_sessions", bid, ids);
	if (r == NULL)
		return err;
	in_use = db_i64(r, 0, 0);
	if (in_use > 0 && !forced) {
		http_reply_error(req, 409, "flow_in_use",
				 "contacts are in this flow; retry with force=true to end their "
				 "conversations",
				 json_pack("{s:I}", "contacts", (json_int_t)in_use));
		return 0;
	}
	if (in_use > 0) {
		/* ended cleanly: no state row, no message; the contacts' next message
		 * may trigger a flow again */
		if (DB_EXEC(req->db, a, &err, "fapi_lock_contacts", bid, ids) == NULL ||
		    DB_EXEC(req->db, a, &err, "fapi_end_sessions", bid, ids) == NULL)
			return err;
		err = flow_api_audit(req, "FLOW_STATE", "flow.session_ended", "flow", id,
				     json_arena(a, json_pack("{s:s,s:I}", "reason", "flow_deleted",
							     "count", (json_int_t)in_use)));
		if (err < 0)
			return err;
	}
	if (DB_EXEC(req->db, a, &err, "fapi_delete", bid, ids) == NULL)
		return err;
	err = flow_api_audit(req, "AUDIT", "flow.delete", "flow", id,
			     json_arena(a, json_pack("{s:I,s:b}", "sessions_ended",
						     (json_int_t)in_use, "forced", forced)));
	if (err < 0)
		return err;
	http_reply_empty(req, 204);
	return 0;
}

/* activate / deactivate: idempotent; the audit row says whether it changed anything. */
static int set_active(http_request_t *req, bool on)
{
	int64_t id = req->params[0];
	const char *bid = api_business_param(req), *ids = db_i64s(req->arena, id);
	bool changed;
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "fapi_lock", bid, ids);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "flow", id);
	changed = db_bool(r, 0, 0) != on;
	if (changed && DB_EXEC(req->db, req->arena, &err, "fapi_set_active", bid, ids,
			       on ? "true" : "false") == NULL)
		return err;
	err = flow_api_audit(req, "AUDIT", on ? "flow.activate" : "flow.deactivate", "flow", id,
			     json_arena(req->arena, json_pack("{s:b}", "changed", changed)));
	if (err < 0)
		return err;
	return reply_flow(req, 200, id);
}

int flows_activate(http_request_t *req)
{
	return set_active(req, true);
}

int flows_deactivate(http_request_t *req)
{
	return set_active(req, false);
}

int flows_versions(http_request_t *req)
{
	int64_t id = req->params[0], page, size, total = 0;
	const char *bid = api_business_param(req), *ids = db_i64s(req->arena, id);
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	r = DB_EXEC(req->db, req->arena, &err, "fapi_versions", bid, ids, db_i64s(req->arena, size),
		    db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) {
		PGresult *e = DB_EXEC(req->db, req->arena, &err, "fapi_exists", bid, ids);

		if (e == NULL)
			return err;
		if (PQntuples(e) == 0)
			return api_tenant_guard_miss(req, "flow", id);
		e = DB_EXEC(req->db, req->arena, &err, "fapi_versions_count", bid, ids);
		if (e == NULL)
			return err;
		total = db_i64(e, 0, 0);
	}
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(
		    items,
		    json_pack("{s:I,s:I,s:o,s:s,s:b}", "id", (json_int_t)db_i64(r, i, 0), "version",
			      (json_int_t)db_i64(r, i, 1), "created_by", flow_api_jint(r, i, 2),
			      "created_at", db_str(r, i, 3), "is_current", db_bool(r, i, 4)));
		total = db_i64(r, i, 5);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

/* --- the simulator -------------------------------------------------------- */

/* Check {messages:[...]}: 1..50 strings of at most 4096 bytes. Returns the array or NULL (400). */
static json_t *simulate_body(http_request_t *req)
{
	json_t *msgs = json_object_get(req->json, "messages"), *m;
	json_fielderr_t fe;
	size_t i;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json))
		json_fielderr_add(&fe, "body", "must be a JSON object");
	else if (!json_is_array(msgs))
		json_fielderr_add(&fe, "messages", "is required: a list of user messages");
	else if (json_array_size(msgs) < 1 || json_array_size(msgs) > FLOW_API_SIM_MESSAGES_MAX)
		json_fielderr_add(&fe, "messages", "must hold 1 to 50 messages");
	else {
		json_array_foreach(msgs, i, m)
		{
			const char *f = arena_sprintf(req->arena, "messages[%zu]", i);

			if (!json_is_string(m))
				json_fielderr_add(&fe, f, "must be a string");
			else if (json_string_length(m) > FLOW_API_SIM_TEXT_MAX)
				json_fielderr_add(&fe, f, "is longer than 4096 bytes");
		}
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return NULL;
	}
	return msgs;
}

/* What the simulator tracks across messages. */
typedef struct sim {
	flow_session_t s;
	json_t *contact;    /* the simulated contact, updated by update_contact_field */
	json_t *transcript; /* [{from, ...}]                                          */
	json_t *events;	    /* the engine's events, each with the message index       */
	json_t *last_ctx;   /* the live context, or the one the session ended with    */
	char flow[FLOW_NAME_MAX + 1];
	bool started, over, handover, ended;
	const char *error;
} sim_t;

/* Fold one engine result into the simulation. */
static void sim_apply(sim_t *m, flow_result_t *res, size_t index)
{
	json_t *v;
	size_t i;

	json_array_foreach(res->messages, i, v)
	{
		json_array_append_new(m->transcript,
				      json_pack("{s:s,s:O}", "from", "bot", "message", v));
	}
	json_array_foreach(res->events, i, v)
	{
		json_t *e = json_deep_copy(v);

		json_object_set_new(e, "after_message", json_integer((json_int_t)index));
		json_array_append_new(m->events, e);
	}
	json_object_update(m->contact, res->contact_updates);
	if (res->switched)
		snprintf(m->flow, sizeof(m->flow), "%s", res->switched_to);
	if (res->error != NULL)
		m->error = res->error;
	m->handover = m->handover || res->handover;
	m->ended = m->ended || res->ended;
	if (m->s.active || res->final_context != NULL) {
		/* the live context, or the one the conversation ended with */
		json_decref(m->last_ctx);
		m->last_ctx = json_deep_copy(m->s.active ? m->s.context : res->final_context);
	}
	if (!m->s.active) {
		m->over = true; /* ended or handed over: the bot is silent from now on */
	}
}

static json_t *sim_final(sim_t *m)
{
	const flow_session_t *s = &m->s;
	json_t *ctx = s->active		    ? json_deep_copy(s->context)
		      : m->last_ctx != NULL ? json_incref(m->last_ctx)
					    : json_object();

	return json_pack(
	    "{s:b,s:o,s:o,s:o,s:o,s:o,s:o,s:b,s:b,s:o,s:O}", "active", s->active, "flow",
	    m->started ? json_string(m->flow) : json_null(), "flow_id",
	    s->active ? json_integer(s->flow_id) : json_null(), "flow_version_id",
	    s->active ? json_integer(s->flow_version_id) : json_null(), "current_step",
	    s->active ? json_string(s->current_step) : json_null(), "context", ctx, "awaiting",
	    s->active && s->awaiting != NULL ? json_deep_copy(s->awaiting) : json_null(),
	    "handover", m->handover, "ended", m->ended, "error",
	    m->error != NULL ? json_string(m->error) : json_null(), "contact", m->contact);
}

int flows_simulate(http_request_t *req)
{
	int64_t id = req->params[0];
	flow_def_ref_t ref;
	flow_store_env_t store = {req->db, req->arena, req->principal->business_id, 0};
	flow_env_t env = {0};
	json_t *msgs, *m;
	const char *name;
	sim_t sim;
	size_t i;
	int rc;

	msgs = simulate_body(req);
	if (msgs == NULL)
		return 0;
	rc = flow_store_current(req->db, req->arena, req->principal->business_id, id, &ref);
	if (rc == ERR_NOTFOUND)
		return api_tenant_guard_miss(req, "flow", id);
	if (rc < 0)
		return rc;
	memset(&sim, 0, sizeof(sim));
	flow_session_init(&sim.s);
	sim.contact = json_pack("{s:s,s:s}", "wa_id", "simulator", "name", "Simulator");
	sim.transcript = json_array();
	sim.events = json_array();
	name = json_string_value(json_object_get(ref.definition, "name"));
	snprintf(sim.flow, sizeof(sim.flow), "%s", name != NULL ? name : "");
	/* switch_flow reads the target through the store; nothing is written */
	env.load_flow = flow_store_load_flow;
	env.ud = &store;
	env.contact = sim.contact;
	rc = 0;
	json_array_foreach(msgs, i, m)
	{
		const char *text = json_string_value(m);
		flow_result_t res;

		json_array_append_new(sim.transcript,
				      json_pack("{s:s,s:s}", "from", "user", "text", text));
		if (sim.over)
			continue;
		if (!sim.started) {
			flow_candidate_t cand = {.name = NULL, .flow = ref};
			json_t *init = NULL;

			/* the trigger's extraction_regex fills its variable when the
			 * first message would have triggered this flow */
			(void)flow_trigger_match(&cand, 1, text, &init);
			(void)flow_engine_start(&env, &sim.s, &ref, init, &res);
			json_decref(init);
			sim.started = true;
		} else {
			flow_reply_t reply;

			flow_reply_init_text(&reply, text);
			(void)flow_engine_handle(&env, &sim.s, &reply, &res);
			flow_reply_free(&reply);
		}
		sim_apply(&sim, &res, i);
		flow_result_free(&res);
		if (store.err != 0) {
			rc = store.err; /* a database error, not the flow's */
			break;
		}
	}
	if (rc == 0)
		http_reply_json(req, 200,
				json_pack("{s:O,s:o,s:O}", "transcript", sim.transcript,
					  "final_state", sim_final(&sim), "events", sim.events));
	flow_session_clear(&sim.s);
	json_decref(sim.last_ctx);
	json_decref(sim.contact);
	json_decref(sim.transcript);
	json_decref(sim.events);
	return rc;
}
