/*
 * api_settings.c - the business's WhatsApp Cloud API account (one per
 * business): GET and PUT /api/settings/whatsapp, for owners.
 *
 * The secrets (access_token, app_secret, verify_token) are write-only: the
 * API's role may write those columns but not read them (migration 0005), so
 * answers carry only *_set flags, and nothing here logs or audits a value.
 * The first PUT needs every field; later ones may leave a secret out to keep
 * it. Each provided field is its own UPDATE because "keep the old value"
 * (coalesce(new, column)) would read a column the role cannot read.
 */
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "flows_api.h"

/* Secret lengths in bytes: the schema's limits (app_secret, verify_token <= 256). */
#define WA_TOKEN_MIN	    8
#define WA_ACCESS_TOKEN_MAX 4096
#define WA_APP_SECRET_MAX   256
#define WA_VERIFY_TOKEN_MAX 256
#define WA_META_ID_MAX	    32

#define ACCOUNT_COLS                                                                               \
	"id, phone_number_id, waba_id, access_token_set, app_secret_set, verify_token_set, "       \
	"to_char(created_at" FLOW_API_UTC ", to_char(updated_at" FLOW_API_UTC

static const db_stmt_t stmts[] = {
    {"fapi_wa_get",
     "SELECT " ACCOUNT_COLS " FROM whatsapp_accounts WHERE business_id = $1::bigint"},
    {"fapi_wa_lock", "SELECT id, phone_number_id, waba_id FROM whatsapp_accounts "
		     "WHERE business_id = $1::bigint FOR UPDATE"},
    /* who else uses the id or the token; the definers see every tenant, and only the
     * business_id column is read (never the secret they also return) */
    {"fapi_wa_phone_owner", "SELECT business_id FROM wa_account_by_phone_number_id($1) LIMIT 1"},
    {"fapi_wa_token_owner", "SELECT business_id FROM wa_account_by_verify_token($1) LIMIT 1"},
    {"fapi_wa_insert",
     "INSERT INTO whatsapp_accounts (business_id, phone_number_id, waba_id, access_token, "
     "app_secret, verify_token) VALUES ($1::bigint, $2, $3, $4, $5, $6) RETURNING id"},
    {"fapi_wa_set_phone", "UPDATE whatsapp_accounts SET phone_number_id = $2, updated_at = now() "
			  "WHERE business_id = $1::bigint"},
    {"fapi_wa_set_waba", "UPDATE whatsapp_accounts SET waba_id = $2, updated_at = now() "
			 "WHERE business_id = $1::bigint"},
    {"fapi_wa_set_access", "UPDATE whatsapp_accounts SET access_token = $2, updated_at = now() "
			   "WHERE business_id = $1::bigint"},
    {"fapi_wa_set_secret", "UPDATE whatsapp_accounts SET app_secret = $2, updated_at = now() "
			   "WHERE business_id = $1::bigint"},
    {"fapi_wa_set_verify", "UPDATE whatsapp_accounts SET verify_token = $2, updated_at = now() "
			   "WHERE business_id = $1::bigint"},
};

void flow_api_settings_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* The answer: never a secret, only whether each is set. */
static json_t *account_json(const PGresult *r)
{
	return json_pack("{s:s,s:o,s:b,s:b,s:b,s:s,s:s}", "phone_number_id", db_str(r, 0, 1),
			 "waba_id", flow_api_jstr(r, 0, 2), "access_token_set", db_bool(r, 0, 3),
			 "app_secret_set", db_bool(r, 0, 4), "verify_token_set", db_bool(r, 0, 5),
			 "created_at", db_str(r, 0, 6), "updated_at", db_str(r, 0, 7));
}

int flows_settings_get(http_request_t *req)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "fapi_wa_get", api_business_param(req));

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0) {
		http_reply_error(req, 404, "not_found",
				 "WhatsApp is not configured for this business", NULL);
		return 0;
	}
	http_reply_json(req, 200, account_json(r));
	return 0;
}

/* The fields of a PUT; NULL = not given. */
typedef struct wa_fields {
	const char *phone_number_id, *waba_id, *access_token, *app_secret, *verify_token;
} wa_fields_t;

static bool all_digits(const char *s)
{
	return s[0] != '\0' && strspn(s, "0123456789") == strlen(s);
}

/* No control characters (and, when strict, no white space either). */
static bool printable(const char *s, bool strict)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f || (strict && *c == ' '))
			return false;
	return true;
}

/* A Meta id: 1..32 digits. */
static void meta_id(json_t *obj, const char *key, bool required, const char **out,
		    json_fielderr_t *fe)
{
	if (json_get_str(obj, key, required, 1, WA_META_ID_MAX, out, fe) > 0 && !all_digits(*out)) {
		json_fielderr_add(fe, key, "must be 1 to 32 digits");
		*out = NULL;
	}
}

/* A secret of WA_TOKEN_MIN..max bytes. The messages never echo the value. */
static void secret(json_t *obj, const char *key, bool required, size_t max, bool strict,
		   const char **out, json_fielderr_t *fe)
{
	if (json_get_str(obj, key, required, WA_TOKEN_MIN, max, out, fe) > 0 &&
	    !printable(*out, strict)) {
		json_fielderr_add(fe, key,
				  strict ? "must not contain spaces or control characters"
					 : "must not contain control characters");
		*out = NULL;
	}
}

/* Answer 409 when another business has `value`. Returns 0, 1 after answering, or ERR_*. */
static int taken(http_request_t *req, const char *stmt, const char *value, const char *code,
		 const char *msg)
{
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, stmt, value);

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0 || db_i64(r, 0, 0) == req->principal->business_id)
		return 0;
	http_reply_error(req, 409, code, msg, NULL);
	return 1;
}

int flows_settings_put(http_request_t *req)
{
	arena_t *a = req->arena;
	const char *bid = api_business_param(req);
	json_fielderr_t fe;
	wa_fields_t f = {0};
	json_t *changed, *body = req->json;
	int64_t account = 0;
	bool first;
	PGresult *cur, *r;
	int rc, err;

	cur = DB_EXEC(req->db, a, &err, "fapi_wa_lock", bid);
	if (cur == NULL)
		return err;
	first = PQntuples(cur) == 0;
	json_fielderr_init(&fe, a);
	if (!json_is_object(body)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
	} else {
		meta_id(body, "phone_number_id", first, &f.phone_number_id, &fe);
		meta_id(body, "waba_id", first, &f.waba_id, &fe);
		secret(body, "access_token", first, WA_ACCESS_TOKEN_MAX, true, &f.access_token,
		       &fe);
		secret(body, "app_secret", first, WA_APP_SECRET_MAX, false, &f.app_secret, &fe);
		secret(body, "verify_token", first, WA_VERIFY_TOKEN_MAX, false, &f.verify_token,
		       &fe);
	}
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (f.phone_number_id != NULL &&
	    (rc = taken(req, "fapi_wa_phone_owner", f.phone_number_id, "phone_number_id_taken",
			"this phone_number_id is configured for another business")) != 0)
		return rc < 0 ? rc : 0;
	if (f.verify_token != NULL && (rc = taken(req, "fapi_wa_token_owner", f.verify_token,
						  "conflict", "choose another verify_token")) != 0)
		return rc < 0 ? rc : 0;

	/* the changed fields by name, for the audit row: never their values */
	changed = json_arena(a, json_array());
	if (first) {
		r = DB_EXEC(req->db, a, &err, "fapi_wa_insert", bid, f.phone_number_id, f.waba_id,
			    f.access_token, f.app_secret, f.verify_token);
		if (r == NULL)
			return err; /* a concurrent claim of the id: ERR_CONFLICT, 409 */
		account = db_i64(r, 0, 0);
		json_array_append_new(changed, json_string("phone_number_id"));
		json_array_append_new(changed, json_string("waba_id"));
		json_array_append_new(changed, json_string("access_token"));
		json_array_append_new(changed, json_string("app_secret"));
		json_array_append_new(changed, json_string("verify_token"));
	} else {
		const struct {
			const char *name, *stmt, *value, *old;
		} set[] = {
		    {"phone_number_id", "fapi_wa_set_phone", f.phone_number_id, db_str(cur, 0, 1)},
		    {"waba_id", "fapi_wa_set_waba", f.waba_id, db_str(cur, 0, 2)},
		    {"access_token", "fapi_wa_set_access", f.access_token, NULL},
		    {"app_secret", "fapi_wa_set_secret", f.app_secret, NULL},
		    {"verify_token", "fapi_wa_set_verify", f.verify_token, NULL},
		};

		account = db_i64(cur, 0, 0);
		for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
			if (set[i].value == NULL ||
			    (set[i].old != NULL && strcmp(set[i].old, set[i].value) == 0))
				continue;
			if (DB_EXEC(req->db, a, &err, set[i].stmt, bid, set[i].value) == NULL)
				return err;
			json_array_append_new(changed, json_string(set[i].name));
		}
	}
	rc = flow_api_audit(
	    req, "AUDIT", "settings.whatsapp", "whatsapp_account", account,
	    json_arena(a, json_pack("{s:O,s:b}", "fields", changed, "created", first)));
	if (rc < 0)
		return rc;
	r = DB_EXEC(req->db, a, &err, "fapi_wa_get", bid);
	if (r == NULL)
		return err;
	http_reply_json(req, 200, account_json(r));
	return 0;
}
