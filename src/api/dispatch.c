/*
 * dispatch.c - one request through the pipeline (DESIGN §4, §6):
 *
 *   route (404/405) -> token (401) -> media type (415) -> JSON (400)
 *   -> BEGIN (503) -> principal + tenant scope (401) -> guards (403)
 *   -> handler -> COMMIT, retried on serialization failure.
 */
#include <string.h>
#include <time.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/flow_process.h"
#include "dialflow/handlers.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/ratelimit.h"
#include "dialflow/strnum.h"

#define TX_ATTEMPTS 3

static const db_stmt_t stmts[] = {
    {"auth_principal", "SELECT user_id, home_business_id, role, is_active, token_version, "
		       "email, name, business_id, business_found, business_active, "
		       "business_name, pages FROM auth_principal($1::bigint, $2::bigint)"},
};

api_ctx_t *api_ctx(const http_request_t *req)
{
	return req->app;
}

const char *api_business_param(http_request_t *req)
{
	return db_i64s(req->arena, req->principal->business_id);
}

int api_ctx_init(api_ctx_t *ctx, const char *app_name, const char **err)
{
	char shm[64];

	memset(ctx, 0, sizeof(*ctx));
	if (config_load(&ctx->cfg, "DIALFLOW_API_DATABASE_URL", "DIALFLOW_API_DB_ROLE",
			"dialflow_app", 1, err) < 0)
		return -1;
	ctx->keys = auth_jwt_keyring_new();
	if (ctx->keys == NULL ||
	    auth_jwt_keyring_add(ctx->keys, ctx->cfg.jwt_kid, "HS256", ctx->cfg.jwt_secret,
				 ctx->cfg.jwt_secret_len) < 0) {
		*err = "the JWT secret is unusable (DIALFLOW_JWT_SECRET_FILE needs >= 32 bytes)";
		return -1;
	}
	if (ctx->cfg.jwt_pubkey != NULL &&
	    auth_jwt_keyring_add(ctx->keys, ctx->cfg.jwt_pubkey_kid, ctx->cfg.jwt_pubkey_alg,
				 ctx->cfg.jwt_pubkey, ctx->cfg.jwt_pubkey_len) < 0) {
		*err = "the JWT public key is unusable (DIALFLOW_JWT_PUBKEY_FILE/_ALG)";
		return -1;
	}
	ctx->policy.issuer = ctx->cfg.jwt_issuer;
	ctx->policy.audience = ctx->cfg.jwt_audience;
	ctx->policy.leeway = AUTH_JWT_LEEWAY;
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	api_health_register();
	auth_handlers_register();
	admin_register();
	outbound_register();
	webhooks_register();
	flows_api_register();
	ratelimit_register();
	flow_process_register();
	flow_process_install();
	metrics_register();
	ctx->metrics = metrics_open(metrics_shm_name(shm, sizeof(shm)));
	ctx->db = db_new(ctx->cfg.database_url, app_name, ctx->cfg.db_role,
			 ctx->cfg.db_connect_timeout, ctx->cfg.db_statement_timeout_ms);
	return 0;
}

void api_ctx_free(api_ctx_t *ctx)
{
	db_free(ctx->db);
	metrics_close(ctx->metrics);
	auth_jwt_keyring_free(ctx->keys);
	config_free(&ctx->cfg);
}

static void reply_unauthenticated(http_request_t *req, const char *why, bool had_token)
{
	http_reply_error(req, 401, "unauthenticated", "a valid bearer token is required", NULL);
	http_add_header(req, "WWW-Authenticate",
			had_token ? "Bearer error=\"invalid_token\"" : "Bearer realm=\"dialflow\"");
	req->log_note = why;
}

/* Split a PostgreSQL text[] literal of page keys ({a,b}) into the arena. */
static void parse_pages(arena_t *a, const char *lit, auth_principal_t *p)
{
	char *s, *tok, *save = NULL;
	size_t cap = 0;

	p->pages = NULL;
	p->npages = 0;
	if (lit == NULL || strlen(lit) < 2)
		return;
	s = arena_strndup(a, lit + 1, strlen(lit) - 2);
	for (const char *c = s; *c; c++)
		if (*c == ',')
			cap++;
	p->pages = arena_calloc(a, cap + 1, sizeof(char *));
	for (tok = strtok_r(s, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
		p->pages[p->npages++] = tok;
}

/*
 * Load the caller and scope the transaction to its tenant. Returns 0 when
 * admitted, 1 after answering 401/4xx, or a negative ERR_*.
 */
static int load_principal(http_request_t *req, const auth_claims_t *c, int64_t acting)
{
	auth_principal_t *p;
	auth_user_row_t row = {0};
	const char *why = NULL;
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "auth_principal", db_i64s(req->arena, c->user_id),
		    acting > 0 ? db_i64s(req->arena, acting) : NULL);
	if (r == NULL)
		return err;
	row.found = PQntuples(r) == 1;
	if (row.found) {
		row.is_active = db_bool(r, 0, 3);
		row.token_version = db_i64(r, 0, 4);
		row.role = auth_role_parse(db_str(r, 0, 2));
		row.business_id = db_i64(r, 0, 1);
		row.business_found = db_bool(r, 0, 8);
		row.business_active = db_bool(r, 0, 9);
	}
	if (auth_principal_check(c, &row, acting, &why) < 0) {
		if (strcmp(why, "impersonation_denied") == 0) {
			audit_event_t ev = {.tag = "SECURITY",
					    .action = "auth.impersonation_denied",
					    .resource_type = "business",
					    .resource_id = acting,
					    .outcome = "denied",
					    .actor_id = c->user_id,
					    .actor_role = auth_role_name(row.role)};

			log_warn("auth",
				 "%s user=%lld sent X-Business-Id=%lld without being a "
				 "system_admin",
				 LOG_TAG_SECURITY, (long long)c->user_id, (long long)acting);
			audit_record_detached(req, &ev);
			http_reply_forbidden(req, "forbidden",
					     "X-Business-Id is only for system administrators");
		} else if (strcmp(why, "no_such_business") == 0) {
			http_reply_error(req, 404, "not_found",
					 "the business named by X-Business-Id does not exist",
					 NULL);
		} else {
			reply_unauthenticated(req, why, true);
		}
		return 1;
	}
	p = arena_calloc(req->arena, 1, sizeof(*p));
	p->user_id = db_i64(r, 0, 0);
	p->home_business_id = row.business_id;
	p->role = row.role;
	p->email = arena_strdup(req->arena, db_str(r, 0, 5));
	p->name = arena_strdup(req->arena, db_str(r, 0, 6));
	p->business_id = db_i64(r, 0, 7);
	p->business_name = arena_strdup(req->arena, db_str(r, 0, 10));
	p->impersonating = acting > 0;
	parse_pages(req->arena, db_str(r, 0, 11), p);
	req->principal = p;
	req->log_user = p->user_id;
	req->log_business = p->business_id;
	if (p->impersonating) {
		audit_event_t ev = {.tag = "AUDIT",
				    .action = "impersonate",
				    .resource_type = "business",
				    .resource_id = acting,
				    .business_id = acting,
				    .outcome = "ok"};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	return 0;
}

/* Role and page guards. Returns 0 when admitted, 1 after answering. */
static int check_guards(http_request_t *req, const http_guard_t *g)
{
	const auth_principal_t *p = req->principal;
	auth_role_t need = (auth_role_t)g->min_role;

	if ((g->flags & GUARD_SYSADMIN) && p->role != ROLE_SYSTEM_ADMIN) {
		http_reply_forbidden(req, "insufficient_role", "system administrators only");
		return 1;
	}
	if ((g->flags & GUARD_TENANT) && p->business_id == 0) {
		json_fielderr_t fe;

		json_fielderr_init(&fe, req->arena);
		json_fielderr_add(&fe, "X-Business-Id",
				  "is required for a system_admin on a tenant endpoint");
		http_reply_invalid(req, &fe);
		return 1;
	}
	if (g->page != NULL) {
		const auth_page_t *page = auth_page_find(g->page);

		if (!auth_has_page(p, g->page)) {
			http_reply_forbidden(req, "page_not_enabled",
					     "this page is not enabled for the business");
			return 1;
		}
		if (page != NULL && page->min_role > need)
			need = page->min_role;
	}
	if (p->role < need) {
		http_reply_forbidden(req, "insufficient_role", "your role does not allow this");
		return 1;
	}
	return 0;
}

/* One attempt of the transaction around the handler. */
static int run_once(http_request_t *req, const http_route_t *route, const auth_claims_t *claims,
		    int64_t acting)
{
	int rc = db_begin(req->db);

	if (rc < 0)
		return rc;
	if (claims != NULL) {
		rc = load_principal(req, claims, acting);
		if (rc == 0)
			rc = check_guards(req, &route->guard);
		if (rc == 1) {
			/* answered 401/403: keep what the guard audited */
			rc = db_commit(req->db);
			return rc;
		}
		if (rc < 0)
			goto fail;
	}
	rc = route->handler(req);
	if (rc < 0)
		goto fail;
	if (req->tx_rollback) {
		/* answered (a refusal) after writes that must not stay */
		db_rollback(req->db);
		return 0;
	}
	rc = db_commit(req->db);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	db_rollback(req->db);
	return rc;
}

/* Parse the optional X-Business-Id header. Returns 0, or -1 after answering 400. */
static int acting_business(http_request_t *req, int64_t *out)
{
	const char *h = http_env(req, "HTTP_X_BUSINESS_ID");
	json_fielderr_t fe;

	*out = 0;
	if (h == NULL)
		return 0;
	if (strnum_i64(h, 1, INT64_MAX, out) == 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	json_fielderr_add(&fe, "X-Business-Id", "must be a positive integer business id");
	http_reply_invalid(req, &fe);
	return -1;
}

/* Media type and JSON decoding. Returns 0, or -1 after answering 415/400. */
static int check_body(http_request_t *req, const http_route_t *route)
{
	const char *why = NULL;
	bool json_route = (route->body_types & HTTP_BODY_JSON) != 0;

	if (route->body_types == HTTP_BODY_NONE)
		return 0;
	if (req->body_len == 0 && req->content_type == NULL) {
		if (req->method == HTTP_POST || req->method == HTTP_PUT ||
		    req->method == HTTP_PATCH) {
			http_reply_error(req, 400, json_route ? "invalid_json" : "invalid_input",
					 "a request body is required", NULL);
			return -1;
		}
		return 0;
	}
	if (!(req->body_type & route->body_types)) {
		const char *want = route->body_types & HTTP_BODY_CSV
				       ? "send application/json or text/csv"
				   : json_route ? "send application/json; charset=utf-8"
						: "send application/x-www-form-urlencoded";

		http_reply_error(req, 415, "unsupported_media_type", want, NULL);
		return -1;
	}
	if (req->body_type == HTTP_BODY_JSON) {
		req->json = json_decode_strict(req->arena, req->body, req->body_len, &why);
		if (req->json == NULL) {
			http_reply_error(req, 400, "invalid_json", why, NULL);
			return -1;
		}
	}
	return 0;
}

static void dispatch(api_ctx_t *ctx, http_request_t *req, const http_route_t **matched)
{
	const http_route_t *route = NULL;
	auth_claims_t claims, *cp = NULL;
	unsigned allow = 0;
	int64_t acting = 0;
	int rc;

	req->db = ctx->db;
	req->app = ctx;
	req->cfg = &ctx->cfg;
	rc = api_route_match(req, &route, &allow);
	*matched = route;
	if (rc == ROUTE_NOT_FOUND) {
		http_reply_error(req, 404, "not_found", "no such endpoint", NULL);
		return;
	}
	if (rc == ROUTE_BAD_METHOD) {
		http_reply_error(req, 405, "method_not_allowed", "method not allowed here", NULL);
		http_add_header(req, "Allow", http_methods_str(req->arena, allow));
		return;
	}
	if (route->guard.flags & (GUARD_USER | GUARD_TENANT | GUARD_SYSADMIN)) {
		const char *h = http_env(req, "HTTP_AUTHORIZATION");
		const char *tok = NULL, *why = NULL;
		size_t len = 0;

		if (h == NULL) {
			reply_unauthenticated(req, "no_token", false);
			return;
		}
		if (auth_jwt_from_header(h, &tok, &len) < 0 ||
		    auth_jwt_verify(ctx->keys, &ctx->policy, tok, len, time(NULL), &claims, &why) <
			0) {
			if (why != NULL &&
			    (strcmp(why, "bad_signature") == 0 || strcmp(why, "alg_mismatch") == 0))
				log_warn("auth", "%s token rejected reason=%s ip=%s",
					 LOG_TAG_SECURITY, why,
					 req->remote_addr ? req->remote_addr : "-");
			reply_unauthenticated(req, why ? why : "malformed", true);
			return;
		}
		cp = &claims;
		if (!(route->guard.flags & GUARD_SYSADMIN) && acting_business(req, &acting) < 0)
			return;
	}
	if (check_body(req, route) < 0)
		return;
	if ((route->guard.flags & GUARD_PRINCIPAL_ONLY) && cp != NULL && acting == 0) {
		/* One round trip: no BEGIN/COMMIT around a read of the principal.
		 * Impersonation writes an audit row, so it takes the normal path. */
		rc = db_ensure(req->db);
		if (rc == 0) {
			rc = load_principal(req, cp, acting);
			if (rc == ERR_UNAVAIL && !db_is_up(req->db) && db_ensure(req->db) == 0)
				rc = load_principal(req, cp, acting); /* restarted server */
		}
		if (rc == 0 && check_guards(req, &route->guard) == 0)
			rc = route->handler(req);
		if (rc < 0)
			http_reply_err(req, rc);
		goto out;
	}
	if (route->guard.flags & GUARD_NO_TX) {
		rc = route->handler(req);
		if (rc < 0 && !req->responded)
			http_reply_err(req, rc);
		goto out;
	}
	for (int attempt = 1; attempt <= TX_ATTEMPTS; attempt++) {
		req->responded = false;
		req->principal = NULL;
		req->tx_rollback = false;
		req->audit_detached = NULL; /* a retried attempt records its own */
		rc = run_once(req, route, cp, acting);
		if (rc != ERR_RETRY)
			break;
		log_info("db", "serialization failure, retrying (attempt %d)", attempt);
	}
	if (rc == ERR_UNAVAIL || rc == ERR_RETRY || (rc < 0 && !req->responded))
		http_reply_err(req, rc);
out:
	/* refusals whose transaction did not commit, and pre-tenant events */
	(void)audit_flush_detached(req);
}

void api_dispatch(api_ctx_t *ctx, http_request_t *req)
{
	const http_route_t *route = NULL;
	struct timespec t0, t1;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	dispatch(ctx, req, &route);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* counted here rather than next to the access log line in server.c:
	 * only the dispatcher knows the route pattern */
	metrics_observe_request(ctx->metrics, req->method, route ? route->pattern : NULL,
				req->status, ms);
	metrics_observe_db_connects(ctx->metrics, db_connect_count(ctx->db));
}
