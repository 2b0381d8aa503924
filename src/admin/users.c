/*
 * users.c - users of a tenant: list (admin), create (owner, or system_admin),
 * change role / deactivate (owner). Every change bumps token_version, so the
 * user's existing tokens stop working at once (the database decides).
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"

#define USER_COLS                                                                                  \
	"u.id, u.email, u.name, u.role, u.business_id, u.is_active, "                              \
	"to_char(u.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "             \
	"to_char(u.last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const db_stmt_t stmts[] = {
    {"users_list", "SELECT " USER_COLS ", count(*) OVER () FROM users u "
		   "WHERE u.business_id = $1::bigint ORDER BY u.id "
		   "LIMIT $2::bigint OFFSET $3::bigint"},
    {"users_count", "SELECT count(*) FROM users WHERE business_id = $1::bigint"},
    {"users_get", "SELECT " USER_COLS " FROM users u WHERE u.id = $1::bigint"},
    {"users_insert", "INSERT INTO users (business_id, email, name, password_hash, role) "
		     "VALUES ($1::bigint, $2, $3, $4, $5) RETURNING id"},
    {"users_lock_target", "SELECT role, is_active FROM users WHERE id = $1::bigint "
			  "AND business_id = $2::bigint FOR UPDATE"},
    {"users_other_owners", "SELECT count(*) FROM (SELECT 1 FROM users WHERE business_id = "
			   "$1::bigint AND role = 'owner' AND is_active AND id <> $2::bigint "
			   "FOR UPDATE) o"},
    {"users_update", "UPDATE users SET role = coalesce($2, role), "
		     "is_active = coalesce($3::boolean, is_active), "
		     "token_version = token_version + 1, updated_at = now() "
		     "WHERE id = $1::bigint AND business_id = $4::bigint RETURNING id"},
};

void admin_users_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static json_t *user_json(const PGresult *r, int i)
{
	return json_pack(
	    "{s:I,s:s,s:s,s:s,s:o,s:b,s:s,s:o}", "id", (json_int_t)db_i64(r, i, 0), "email",
	    db_str(r, i, 1), "name", db_str(r, i, 2), "role", db_str(r, i, 3), "business_id",
	    db_isnull(r, i, 4) ? json_null() : json_integer(db_i64(r, i, 4)), "is_active",
	    db_bool(r, i, 5), "created_at", db_str(r, i, 6), "last_login_at",
	    db_isnull(r, i, 7) ? json_null() : json_string(db_str(r, i, 7)));
}

static int reply_user(http_request_t *req, int64_t id, int status)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "users_get", db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) != 1) {
		http_reply_error(req, 404, "not_found", "no such user", NULL);
		return 0;
	}
	http_reply_json(req, status, json_pack("{s:o}", "user", user_json(r, 0)));
	return 0;
}

int admin_users_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	const char *bid = db_i64s(req->arena, req->principal->business_id);
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	r = DB_EXEC(req->db, req->arena, &err, "users_list", bid, db_i64s(req->arena, size),
		    db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, user_json(r, i));
		total = db_i64(r, i, 8);
	}
	if (PQntuples(r) == 0) {
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "users_count", bid);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

/* A plausible address: one '@' with text on both sides, no spaces or controls. */
static bool valid_email(const char *e)
{
	const char *at = strchr(e, '@');

	if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') != NULL)
		return false;
	for (const unsigned char *c = (const unsigned char *)e; *c; c++)
		if (*c <= 0x20 || *c == 0x7f || *c == '"' || *c == '<' || *c == '>')
			return false;
	return true;
}

int admin_users_create(http_request_t *req)
{
	const auth_principal_t *p = req->principal;
	json_fielderr_t fe;
	const char *email = NULL, *name = "", *password = NULL, *rolename = NULL, *weak;
	int64_t business_id = 0, id;
	auth_role_t role = ROLE_NONE;
	char *hash;
	PGresult *r;
	int err;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (json_get_str(req->json, "email", true, 3, 254, &email, &fe) > 0 && !valid_email(email))
		json_fielderr_add(&fe, "email", "is not a valid email address");
	json_get_str(req->json, "name", true, 1, 200, &name, &fe);
	if (json_get_str(req->json, "password", true, 1, 1024, &password, &fe) > 0 &&
	    (weak = auth_password_weak(password)) != NULL)
		json_fielderr_add(&fe, "password", weak);
	if (json_get_str(req->json, "role", true, 1, 32, &rolename, &fe) > 0 &&
	    (role = auth_role_parse(rolename)) == ROLE_NONE)
		json_fielderr_add(&fe, "role", "must be agent, admin, owner or system_admin");
	json_get_int(req->json, "business_id", false, 1, INT64_MAX, &business_id, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (role > p->role || (role == ROLE_SYSTEM_ADMIN && p->role != ROLE_SYSTEM_ADMIN)) {
		http_reply_forbidden(req, "insufficient_role",
				     "you cannot create a user with a role above your own");
		return 0;
	}
	if (p->role != ROLE_SYSTEM_ADMIN) {
		/* owners create users in their own business, whatever the body says */
		if (business_id != 0 && business_id != p->business_id) {
			int rc = api_tenant_guard(req, "business", business_id);

			return rc < 0 ? rc : 0;
		}
		business_id = p->business_id;
	} else if (role == ROLE_SYSTEM_ADMIN) {
		if (p->impersonating || business_id != 0) {
			json_fielderr_add(&fe, "business_id",
					  "a system_admin belongs to no business");
			http_reply_invalid(req, &fe);
			return 0;
		}
	} else if (p->impersonating) {
		business_id = p->business_id;
	} else if (business_id == 0) {
		json_fielderr_add(&fe, "business_id",
				  "is required (or send X-Business-Id) for a tenant user");
		http_reply_invalid(req, &fe);
		return 0;
	}
	hash = auth_password_hash(password);
	if (hash == NULL)
		return ERR_INTERNAL;
	r = DB_EXEC(req->db, req->arena, &err, "users_insert",
		    business_id > 0 ? db_i64s(req->arena, business_id) : NULL, email, name, hash,
		    auth_role_name(role));
	free(hash);
	if (r == NULL && err == ERR_CONFLICT) {
		/* users_email_key, or a business_id that does not exist (FK) */
		http_reply_error(req, 409, "email_taken", "a user with this email already exists",
				 NULL);
		return err;
	}
	if (r == NULL)
		return err;
	id = db_i64(r, 0, 0);
	{
		audit_event_t ev = {
		    .tag = "AUDIT",
		    .action = "user.create",
		    .resource_type = "user",
		    .resource_id = id,
		    .business_id = business_id,
		    .outcome = "ok",
		    .details = json_arena(req->arena, json_pack("{s:s}", "role", rolename))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return reply_user(req, id, 201);
}

int admin_users_update(http_request_t *req)
{
	const auth_principal_t *p = req->principal;
	int64_t id = req->params[0];
	const char *bid = db_i64s(req->arena, p->business_id), *rolename = NULL;
	json_fielderr_t fe;
	bool active = true;
	int has_active, rc, err;
	auth_role_t role = ROLE_NONE;
	PGresult *r;

	rc = api_tenant_guard(req, "user", id);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (json_get_str(req->json, "role", false, 1, 32, &rolename, &fe) > 0 &&
	    (role = auth_role_parse(rolename)) == ROLE_NONE)
		json_fielderr_add(&fe, "role", "must be agent, admin or owner");
	has_active = json_get_bool(req->json, "is_active", false, &active, &fe);
	if (!json_fielderr_any(&fe) && rolename == NULL && has_active == 0)
		json_fielderr_add(&fe, "body", "send role and/or is_active");
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (role == ROLE_SYSTEM_ADMIN || role > p->role) {
		http_reply_forbidden(req, "insufficient_role",
				     "you cannot grant a role above your own");
		return 0;
	}
	r = DB_EXEC(req->db, req->arena, &err, "users_lock_target", db_i64s(req->arena, id), bid);
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1) {
		http_reply_error(req, 404, "not_found", "no such user", NULL);
		return 0;
	}
	/* A business never loses its last active owner. */
	if (strcmp(db_str(r, 0, 0), "owner") == 0 && db_bool(r, 0, 1) &&
	    ((rolename != NULL && role != ROLE_OWNER) || (has_active > 0 && !active))) {
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "users_other_owners", bid,
				      db_i64s(req->arena, id));

		if (c == NULL)
			return err;
		if (db_i64(c, 0, 0) == 0) {
			http_reply_error(req, 409, "last_owner",
					 "a business must keep at least one active owner", NULL);
			return 0;
		}
	}
	r = DB_EXEC(req->db, req->arena, &err, "users_update", db_i64s(req->arena, id),
		    rolename ? auth_role_name(role) : NULL,
		    has_active > 0 ? (active ? "true" : "false") : NULL, bid);
	if (r == NULL)
		return err;
	{
		json_t *d = json_object();
		audit_event_t ev = {.tag = "AUDIT",
				    .action = "user.update",
				    .resource_type = "user",
				    .resource_id = id,
				    .business_id = p->business_id,
				    .outcome = "ok"};

		if (rolename)
			json_object_set_new(d, "role", json_string(auth_role_name(role)));
		if (has_active > 0)
			json_object_set_new(d, "is_active", json_boolean(active));
		ev.details = json_arena(req->arena, d);
		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return reply_user(req, id, 200);
}

void admin_register(void)
{
	admin_users_register();
	admin_businesses_register();
	admin_audit_register();
	admin_ratelimits_register();
}
