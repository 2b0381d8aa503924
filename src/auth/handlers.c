/*
 * handlers.c - login, refresh (rotation with reuse detection), logout, /api/me.
 *
 * Login answers the same 401 invalid_credentials for an unknown email, a
 * wrong password and an inactive user, and spends the same yescrypt time on
 * each. Refresh tokens are opaque random strings stored as sha256.
 */
#include <string.h>
#include <time.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/handlers.h"
#include "dialflow/log.h"

#define REFRESH_BYTES 32

static const db_stmt_t stmts[] = {
    {"auth_login_lookup", "SELECT user_id, business_id, role, is_active, password_hash, "
			  "token_version, business_active, locked FROM auth_login_lookup($1)"},
    {"auth_login_outcome", "SELECT failures FROM auth_login_outcome($1::bigint, $2::boolean)"},
    {"auth_refresh_issue", "SELECT auth_refresh_issue($1::bigint, $2, $3::integer)"},
    {"auth_refresh_rotate", "SELECT status, user_id FROM auth_refresh_rotate($1, $2, $3::integer)"},
    {"auth_logout", "SELECT auth_logout($1::bigint)"},
    {"auth_user_public",
     "SELECT p.user_id, p.email, p.name, p.role, p.home_business_id, p.token_version, "
     "p.is_active FROM auth_principal($1::bigint, NULL) p"},
};

void auth_handlers_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static json_t *user_json(int64_t id, const char *email, const char *name, const char *role,
			 int64_t business_id)
{
	return json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)id, "email", email, "name",
			 name ? name : "", "role", role, "business_id",
			 business_id > 0 ? json_integer(business_id) : json_null());
}

/*
 * Answer 200 with a fresh access token and the given refresh token for
 * user_id. Reads the public user fields (and the current token_version).
 */
static int reply_tokens(http_request_t *req, int64_t user_id, const char *refresh)
{
	api_ctx_t *ctx = api_ctx(req);
	PGresult *r;
	char *tok;
	json_t *body;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "auth_user_public", db_i64s(req->arena, user_id));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1 || !db_bool(r, 0, 6)) {
		http_reply_error(req, 401, "invalid_credentials", "invalid credentials", NULL);
		return ERR_AUTH;
	}
	tok = auth_jwt_issue(ctx->keys, &ctx->policy, ctx->cfg.jwt_kid, user_id, db_i64(r, 0, 5),
			     ctx->cfg.access_ttl, time(NULL));
	if (tok == NULL) {
		log_error("auth", "cannot issue an access token");
		return ERR_INTERNAL;
	}
	body = json_pack(
	    "{s:s,s:s,s:i,s:s,s:o}", "access_token", tok, "token_type", "Bearer", "expires_in",
	    ctx->cfg.access_ttl, "refresh_token", refresh, "user",
	    user_json(user_id, db_str(r, 0, 1), db_str(r, 0, 2), db_str(r, 0, 3), db_i64(r, 0, 4)));
	explicit_bzero(tok, strlen(tok));
	free(tok);
	req->log_user = user_id;
	http_reply_json(req, 200, body);
	return 0;
}

int auth_handle_login(http_request_t *req)
{
	api_ctx_t *ctx = api_ctx(req);
	json_fielderr_t fe;
	const char *email = NULL, *password = NULL, *why = NULL;
	char refresh[REFRESH_BYTES * 2 + 1], hash[65];
	PGresult *r;
	int err;
	int64_t user_id = 0;
	bool ok, pw_ok = false;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
	} else {
		json_get_str(req->json, "email", true, 3, 254, &email, &fe);
		json_get_str(req->json, "password", true, 1, 1024, &password, &fe);
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	r = DB_EXEC(req->db, req->arena, &err, "auth_login_lookup", email);
	if (r == NULL)
		return err;
	/* every path spends one yescrypt, so timing tells nothing either */
	if (PQntuples(r) != 1) {
		auth_password_dummy_verify(password);
		why = "unknown_email";
	} else if (db_bool(r, 0, 7)) {
		/* locked by the backoff: the password is not even looked at */
		auth_password_dummy_verify(password);
		why = "locked";
	} else {
		user_id = db_i64(r, 0, 0);
		pw_ok = auth_password_verify(password, db_str(r, 0, 4)) == 0;
		if (!pw_ok)
			why = "bad_password";
		else if (!db_bool(r, 0, 3) || !db_bool(r, 0, 6))
			why = "inactive";
		/* count the failure (or reset the count) in this transaction */
		if (DB_EXEC(req->db, req->arena, &err, "auth_login_outcome",
			    db_i64s(req->arena, user_id), pw_ok ? "true" : "false") == NULL)
			return err;
	}
	ok = why == NULL;
	{
		audit_event_t ev = {.tag = ok ? "AUDIT" : "SECURITY",
				    .action = ok ? "auth.login" : "auth.login_failed",
				    .resource_type = "user",
				    .resource_id = PQntuples(r) == 1 ? db_i64(r, 0, 0) : 0,
				    .outcome = ok ? "ok" : "denied",
				    .actor_id = PQntuples(r) == 1 ? db_i64(r, 0, 0) : 0,
				    .actor_role = PQntuples(r) == 1 ? db_str(r, 0, 2) : NULL};

		ev.details = json_arena(req->arena,
					json_pack("{s:s}", "email", audit_email_hash(req, email)));
		if (!ok)
			json_object_set_new(ev.details, "reason", json_string(why));
		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	if (!ok) {
		http_reply_error(req, 401, "invalid_credentials", "invalid email or password",
				 NULL);
		return 0;
	}
	user_id = db_i64(r, 0, 0);
	if (auth_random_token(refresh, sizeof(refresh), REFRESH_BYTES) < 0)
		return ERR_INTERNAL;
	auth_sha256_hex(refresh, strlen(refresh), hash);
	r = DB_EXEC(req->db, req->arena, &err, "auth_refresh_issue", db_i64s(req->arena, user_id),
		    hash, db_i64s(req->arena, ctx->cfg.refresh_ttl));
	if (r == NULL)
		return err;
	err = reply_tokens(req, user_id, refresh);
	explicit_bzero(refresh, sizeof(refresh));
	return err;
}

int auth_handle_refresh(http_request_t *req)
{
	api_ctx_t *ctx = api_ctx(req);
	json_fielderr_t fe;
	const char *old = NULL, *status;
	char fresh[REFRESH_BYTES * 2 + 1], old_hash[65], new_hash[65];
	PGresult *r;
	int err;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json))
		json_fielderr_add(&fe, "body", "must be a JSON object");
	else
		json_get_str(req->json, "refresh_token", true, 1, 512, &old, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (auth_random_token(fresh, sizeof(fresh), REFRESH_BYTES) < 0)
		return ERR_INTERNAL;
	auth_sha256_hex(old, strlen(old), old_hash);
	auth_sha256_hex(fresh, strlen(fresh), new_hash);
	r = DB_EXEC(req->db, req->arena, &err, "auth_refresh_rotate", old_hash, new_hash,
		    db_i64s(req->arena, ctx->cfg.refresh_ttl));
	if (r == NULL)
		return err;
	status = db_str(r, 0, 0);
	if (status == NULL || strcmp(status, "ok") != 0) {
		if (status != NULL && strcmp(status, "reused") == 0) {
			audit_event_t ev = {.tag = "SECURITY",
					    .action = "auth.refresh_reuse",
					    .resource_type = "user",
					    .resource_id = db_i64(r, 0, 1),
					    .outcome = "denied",
					    .actor_id = db_i64(r, 0, 1)};

			log_warn("auth", "%s refresh token reuse: family revoked user=%lld ip=%s",
				 LOG_TAG_SECURITY, (long long)db_i64(r, 0, 1),
				 req->remote_addr ? req->remote_addr : "-");
			err = audit_record(req, &ev);
			if (err < 0)
				return err;
		}
		http_reply_error(req, 401, "invalid_refresh_token",
				 "the refresh token is invalid, expired or already used", NULL);
		/* commit: a reuse must leave its family revoked */
		return 0;
	}
	err = reply_tokens(req, db_i64(r, 0, 1), fresh);
	explicit_bzero(fresh, sizeof(fresh));
	return err;
}

int auth_handle_logout(http_request_t *req)
{
	int err;
	audit_event_t ev = {.tag = "AUDIT",
			    .action = "auth.logout",
			    .resource_type = "user",
			    .resource_id = req->principal->user_id,
			    .business_id = req->principal->business_id,
			    .outcome = "ok"};

	if (DB_EXEC(req->db, req->arena, &err, "auth_logout",
		    db_i64s(req->arena, req->principal->user_id)) == NULL)
		return err;
	err = audit_record(req, &ev);
	if (err < 0)
		return err;
	http_reply_empty(req, 204);
	return 0;
}

int auth_handle_me(http_request_t *req)
{
	const auth_principal_t *p = req->principal;
	json_t *pages = json_array(), *business;

	/* the pages this user can open: enabled for the business and allowed for the role */
	for (size_t i = 0; i < p->npages; i++) {
		const auth_page_t *page = auth_page_find(p->pages[i]);

		if (page != NULL && p->role >= page->min_role)
			json_array_append_new(pages, json_string(p->pages[i]));
	}
	business = p->business_id > 0 ? json_pack("{s:I,s:s}", "id", (json_int_t)p->business_id,
						  "name", p->business_name ? p->business_name : "")
				      : json_null();
	http_reply_json(req, 200,
			json_pack("{s:o,s:o,s:o,s:b}", "user",
				  user_json(p->user_id, p->email, p->name, auth_role_name(p->role),
					    p->home_business_id),
				  "business", business, "pages", pages, "impersonating",
				  p->impersonating));
	return 0;
}
