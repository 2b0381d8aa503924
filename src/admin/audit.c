/*
 * audit.c - the audit trail: audit_record() (row + tagged log line, in the
 * request's transaction), the tenant guard for resources, and the two
 * audit-trail listings (GET /api/audit, GET /api/admin/audit).
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"
#include "dialflow/log.h"
#include "dialflow/strnum.h"

#define AUDIT_COLS                                                                                 \
	"id, to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), business_id, "   \
	"actor_id, actor_role, impersonator_id, tag, action, resource_type, resource_id, "         \
	"outcome, ip, request_id, details::text"

/* Filters: $1 business (NULL = all visible), $2 tag, $3 action, $4 actor, $5 type, $6 id,
 * $7 from, $8 to, $9 limit, $10 offset. RLS narrows further for tenants. */
#define AUDIT_WHERE                                                                                \
	" FROM audit_events WHERE ($1::bigint IS NULL OR business_id = $1::bigint)"                \
	" AND ($2::text IS NULL OR tag = $2) AND ($3::text IS NULL OR action = $3)"                \
	" AND ($4::bigint IS NULL OR actor_id = $4::bigint)"                                       \
	" AND ($5::text IS NULL OR resource_type = $5)"                                            \
	" AND ($6::bigint IS NULL OR resource_id = $6::bigint)"                                    \
	" AND ($7::timestamptz IS NULL OR ts >= $7::timestamptz)"                                  \
	" AND ($8::timestamptz IS NULL OR ts < $8::timestamptz)"

static const db_stmt_t stmts[] = {
    {"audit_insert",
     "INSERT INTO audit_events (business_id, actor_id, actor_role, impersonator_id, tag, "
     "action, resource_type, resource_id, outcome, ip, request_id, details) VALUES "
     "($1::bigint, $2::bigint, $3, $4::bigint, $5, $6, $7, $8::bigint, $9, $10, $11, "
     "coalesce($12::jsonb, '{}'::jsonb))"},
    {"audit_list", "SELECT " AUDIT_COLS ", count(*) OVER ()" AUDIT_WHERE
		   " ORDER BY ts DESC, id DESC LIMIT $9::bigint OFFSET $10::bigint"},
    {"audit_count", "SELECT count(*)" AUDIT_WHERE},
    {"audit_insert_preauth",
     "SELECT audit_insert_preauth($1::bigint, $2::bigint, $3, $4, $5, $6, $7::bigint, $8, $9, "
     "$10, $11::jsonb)"},
    {"resource_business", "SELECT found, business_id FROM app_resource_business($1, $2::bigint)"},
};

void admin_audit_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* The event's tagged log line (the row is written separately). */
static void audit_log(const http_request_t *req, const audit_event_t *ev)
{
	const auth_principal_t *p = req->principal;
	char ip[64], rid[64];

	log_info("audit",
		 "[%s] action=%s outcome=%s user=%lld role=%s business=%lld "
		 "resource=%s:%lld impersonating=%d ip=%s req=%s",
		 ev->tag, ev->action, ev->outcome ? ev->outcome : "ok",
		 p ? (long long)p->user_id : (long long)ev->actor_id,
		 p ? auth_role_name(p->role) : (ev->actor_role ? ev->actor_role : "-"),
		 (long long)ev->business_id, ev->resource_type ? ev->resource_type : "-",
		 (long long)ev->resource_id, p && p->impersonating,
		 log_sanitize(req->remote_addr ? req->remote_addr : "-", ip, sizeof(ip)),
		 log_sanitize(req->request_id ? req->request_id : "-", rid, sizeof(rid)));
}

/*
 * Insert ev's row in the current transaction (or autocommit). scoped: the
 * transaction is already scoped to ev's tenant although there is no
 * principal (inbound webhook processing). Returns 0 or ERR_*.
 */
static int audit_insert(http_request_t *req, const audit_event_t *ev, bool scoped)
{
	const auth_principal_t *p = req->principal;
	arena_t *a = req->arena;
	char *details = NULL;
	size_t dlen;
	int err;

	if (ev->details != NULL)
		details = json_dump_arena(a, ev->details, &dlen);
	if (p == NULL && !scoped) {
		/* no tenant scope yet: the narrow definer for auth.* / webhook.* events */
		if (DB_EXEC(req->db, a, &err, "audit_insert_preauth",
			    ev->business_id > 0 ? db_i64s(a, ev->business_id) : NULL,
			    ev->actor_id > 0 ? db_i64s(a, ev->actor_id) : NULL, ev->actor_role,
			    ev->tag, ev->action, ev->resource_type,
			    ev->resource_id > 0 ? db_i64s(a, ev->resource_id) : NULL,
			    ev->outcome ? ev->outcome : "ok", req->remote_addr, req->request_id,
			    details) == NULL)
			return err;
		return 0;
	}
	if (DB_EXEC(req->db, a, &err, "audit_insert",
		    ev->business_id > 0 ? db_i64s(a, ev->business_id) : NULL,
		    p ? db_i64s(a, p->user_id) : NULL, p ? auth_role_name(p->role) : NULL,
		    p && p->impersonating ? db_i64s(a, p->user_id) : NULL, ev->tag, ev->action,
		    ev->resource_type, ev->resource_id > 0 ? db_i64s(a, ev->resource_id) : NULL,
		    ev->outcome ? ev->outcome : "ok", req->remote_addr, req->request_id,
		    details) == NULL)
		return err;
	return 0;
}

int audit_record(http_request_t *req, const audit_event_t *ev)
{
	int err = audit_insert(req, ev, false);

	if (err < 0)
		return err;
	audit_log(req, ev);
	return 0;
}

int audit_write(db_t *db, arena_t *a, const audit_event_t *ev)
{
	http_request_t req;

	int err;

	/* the same row and line as a request's, with no principal, address or id */
	memset(&req, 0, sizeof(req));
	req.db = db;
	req.arena = a;
	err = audit_insert(&req, ev, true);
	if (err < 0)
		return err;
	audit_log(&req, ev);
	return 0;
}

struct audit_detached {
	audit_event_t ev;
	struct audit_detached *next;
};

void audit_record_detached(http_request_t *req, const audit_event_t *ev)
{
	struct audit_detached *n = arena_calloc(req->arena, 1, sizeof(*n)), **tail;

	n->ev = *ev;
	for (tail = &req->audit_detached; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = n;
	audit_log(req, ev);
}

int audit_flush_detached(http_request_t *req)
{
	const auth_principal_t *p = req->principal;
	struct audit_detached *n;
	int rc = 0, err;

	if (req->audit_detached == NULL)
		return 0;
	if (p == NULL) {
		/* autocommit, one row each: nothing else to keep consistent. A public
		 * route (a refused webhook) may be the process's first request: connect. */
		rc = db_ensure(req->db);
		if (rc < 0)
			goto out;
		for (n = req->audit_detached; n != NULL; n = n->next)
			if ((err = audit_insert(req, &n->ev, false)) < 0)
				rc = err;
		goto out;
	}
	rc = db_begin(req->db);
	if (rc < 0)
		goto out;
	/* scope the new transaction to the caller's tenant again, for RLS */
	if (DB_EXEC(req->db, req->arena, &err, "auth_principal", db_i64s(req->arena, p->user_id),
		    p->impersonating ? db_i64s(req->arena, p->business_id) : NULL) == NULL) {
		rc = err;
		goto fail;
	}
	for (n = req->audit_detached; n != NULL; n = n->next)
		if ((rc = audit_insert(req, &n->ev, false)) < 0)
			goto fail;
	rc = db_commit(req->db);
	if (rc == 0)
		goto out;
fail:
	db_rollback(req->db);
out:
	if (rc < 0)
		log_error("audit", "detached audit events lost err=%d req=%s", rc,
			  req->request_id ? req->request_id : "-");
	req->audit_detached = NULL;
	return rc;
}

const char *audit_email_hash(http_request_t *req, const char *email)
{
	char lower[256], hex[65];
	size_t i;

	for (i = 0; i < sizeof(lower) - 1 && email[i] != '\0'; i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	lower[i] = '\0';
	auth_sha256_hex(lower, i, hex);
	hex[16] = '\0';
	return arena_sprintf(req->arena, "sha256:%s", hex);
}

int api_tenant_guard(http_request_t *req, const char *type, int64_t id)
{
	const auth_principal_t *p = req->principal;
	PGresult *r;
	int err;
	int64_t owner;

	r = DB_EXEC(req->db, req->arena, &err, "resource_business", type, db_i64s(req->arena, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1 || !db_bool(r, 0, 0)) {
		http_reply_error(req, 404, "not_found", "no such resource", NULL);
		return 1;
	}
	owner = db_i64(r, 0, 1);
	if (owner == p->business_id && owner != 0)
		return 0;
	{
		json_t *d =
		    json_arena(req->arena, json_pack("{s:I,s:I}", "caller_business_id",
						     (json_int_t)p->business_id,
						     "resource_business_id", (json_int_t)owner));
		audit_event_t ev = {.tag = "SECURITY",
				    .action = "tenant.cross_access",
				    .resource_type = type,
				    .resource_id = id,
				    .business_id = p->business_id,
				    .outcome = "denied",
				    .details = d};

		log_warn("auth",
			 "%s cross-tenant access denied user=%lld business=%lld "
			 "resource=%s:%lld resource_business=%lld",
			 LOG_TAG_SECURITY, (long long)p->user_id, (long long)p->business_id, type,
			 (long long)id, (long long)owner);
		/* whatever the request did so far is undone; the refusal is kept */
		req->tx_rollback = true;
		audit_record_detached(req, &ev);
	}
	http_reply_forbidden(req, "forbidden", "this resource belongs to another business");
	return 1;
}

int api_tenant_guard_miss(http_request_t *req, const char *type, int64_t id)
{
	int rc = api_tenant_guard(req, type, id);

	if (rc < 0)
		return rc;
	if (rc == 0) /* ours, yet gone between the two lookups */
		http_reply_error(req, 404, "not_found", "no such resource", NULL);
	return 0;
}

static void add_item(json_t *items, const PGresult *r, int i)
{
	json_t *details = json_loads(db_str(r, i, 13), 0, NULL);
	json_t *it = json_object();

#define NUM_OR_NULL(col) (db_isnull(r, i, col) ? json_null() : json_integer(db_i64(r, i, col)))
#define STR_OR_NULL(col) (db_isnull(r, i, col) ? json_null() : json_string(db_str(r, i, col)))
	json_object_set_new(it, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(it, "ts", json_string(db_str(r, i, 1)));
	json_object_set_new(it, "business_id", NUM_OR_NULL(2));
	json_object_set_new(it, "actor_id", NUM_OR_NULL(3));
	json_object_set_new(it, "actor_role", STR_OR_NULL(4));
	json_object_set_new(it, "impersonator_id", NUM_OR_NULL(5));
	json_object_set_new(it, "tag", json_string(db_str(r, i, 6)));
	json_object_set_new(it, "action", json_string(db_str(r, i, 7)));
	json_object_set_new(it, "resource_type", STR_OR_NULL(8));
	json_object_set_new(it, "resource_id", NUM_OR_NULL(9));
	json_object_set_new(it, "outcome", json_string(db_str(r, i, 10)));
	json_object_set_new(it, "ip", STR_OR_NULL(11));
	json_object_set_new(it, "request_id", STR_OR_NULL(12));
	json_object_set_new(it, "details", details ? details : json_object());
#undef NUM_OR_NULL
#undef STR_OR_NULL
	json_array_append_new(items, it);
}

/* A query filter that must parse as an id; NULL when absent. Records errors. */
static const char *id_filter(http_request_t *req, const char *name, json_fielderr_t *fe)
{
	const char *v = http_query(req, name);
	int64_t id;

	if (v == NULL)
		return NULL;
	if (strnum_i64(v, 1, INT64_MAX, &id) < 0) {
		json_fielderr_add(fe, name, "must be a positive integer");
		return NULL;
	}
	return v;
}

static const char *text_filter(http_request_t *req, const char *name, size_t max,
			       json_fielderr_t *fe)
{
	const char *v = http_query(req, name);

	if (v != NULL && (v[0] == '\0' || strlen(v) > max)) {
		json_fielderr_add(fe, name, "has an invalid length");
		return NULL;
	}
	return v;
}

/* A timestamp filter: validated by the database cast, so only check the shape here. */
static const char *ts_filter(http_request_t *req, const char *name, json_fielderr_t *fe)
{
	const char *v = http_query(req, name);

	if (v == NULL)
		return NULL;
	if (strlen(v) < 10 || strlen(v) > 40 || strspn(v, "0123456789-:.TZtz+ ") != strlen(v)) {
		json_fielderr_add(fe, name, "must be an RFC 3339 timestamp");
		return NULL;
	}
	return v;
}

static int audit_list(http_request_t *req, int64_t business_id)
{
	json_fielderr_t fe;
	int64_t page, size;
	const char *p[10];
	PGresult *r;
	json_t *items;
	int err;
	int64_t total = 0;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	p[0] = business_id > 0 ? db_i64s(req->arena, business_id) : NULL;
	p[1] = text_filter(req, "tag", 32, &fe);
	p[2] = text_filter(req, "action", 100, &fe);
	p[3] = id_filter(req, "actor_id", &fe);
	p[4] = text_filter(req, "resource_type", 64, &fe);
	p[5] = id_filter(req, "resource_id", &fe);
	p[6] = ts_filter(req, "from", &fe);
	p[7] = ts_filter(req, "to", &fe);
	p[8] = db_i64s(req->arena, size);
	p[9] = db_i64s(req->arena, (page - 1) * size);
	if (business_id == 0 && http_query(req, "business_id") != NULL)
		p[0] = id_filter(req, "business_id", &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	r = db_exec(req->db, req->arena, "audit_list", 10, p, &err);
	if (r == NULL && err == ERR_INVAL) {
		/* the only values the database can reject here are the timestamps */
		json_fielderr_add(&fe, "from", "must be an RFC 3339 timestamp");
		http_reply_invalid(req, &fe);
		return err;
	}
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		add_item(items, r, i);
		total = db_i64(r, i, 14);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c = db_exec(req->db, req->arena, "audit_count", 8, p, &err);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

int admin_audit_list_all(http_request_t *req)
{
	return audit_list(req, 0);
}

int admin_audit_list_tenant(http_request_t *req)
{
	return audit_list(req, req->principal->business_id);
}
