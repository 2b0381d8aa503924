/*
 * scripts.c - call scripts: what an answered call says or does (say a text,
 * bridge to a number, gather digits). Agents read them, admins write them.
 *
 * A run keeps a snapshot of its script (runs.script), so a script may be
 * edited while a run uses it. Deleting one that an active run uses answers 409
 * `script_in_use`; finished runs that used it keep their snapshot and lose
 * only the reference.
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/err.h"
#include "dialflow/phone.h"
#include "dialflow/twiml.h"
#include "outbound_api.h"

#define SCRIPT_TEXT_MAX	   4000 /* characters, as call_scripts.text and .voicemail */
#define SCRIPT_OPTIONS_MAX 8192 /* bytes of the options object as JSON            */

#define SCRIPT_COLS                                                                                \
	"id, name, kind, text, language, voice, bridge_to, options::text, voicemail, "             \
	"to_char(created_at" OB_UTC ", to_char(updated_at" OB_UTC

static const db_stmt_t stmts[] = {
    {"ob_scripts_list", "SELECT " SCRIPT_COLS ", count(*) OVER () FROM call_scripts "
			"WHERE business_id = $1::bigint ORDER BY id "
			"LIMIT $2::bigint OFFSET $3::bigint"},
    {"ob_scripts_count", "SELECT count(*) FROM call_scripts WHERE business_id = $1::bigint"},
    {"ob_script_get", "SELECT " SCRIPT_COLS " FROM call_scripts WHERE id = $2::bigint "
		      "AND business_id = $1::bigint"},
    {"ob_script_lock", "SELECT id FROM call_scripts WHERE id = $2::bigint "
		       "AND business_id = $1::bigint FOR UPDATE"},
    {"ob_script_insert",
     "INSERT INTO call_scripts (business_id, name, kind, text, language, voice, bridge_to, "
     "options, voicemail) VALUES ($1::bigint, $2, $3, $4, $5, $6, $7, $8::jsonb, $9) "
     "RETURNING " SCRIPT_COLS},
    {"ob_script_update",
     "UPDATE call_scripts SET name = $3, kind = $4, text = $5, language = $6, voice = $7, "
     "bridge_to = $8, options = $9::jsonb, voicemail = $10, updated_at = now() "
     "WHERE id = $2::bigint AND business_id = $1::bigint RETURNING " SCRIPT_COLS},
    {"ob_script_in_use", "SELECT id FROM outbound_call_runs WHERE business_id = $1::bigint "
			 "AND script_id = $2::bigint AND status IN ('pending', 'running') "
			 "ORDER BY id LIMIT 1"},
    /* finished runs keep what they ran (their snapshot), only the reference goes */
    {"ob_script_detach",
     "UPDATE outbound_call_runs r SET script_id = NULL, script = coalesce(r.script, "
     "(SELECT json_build_object('id', s.id, 'name', s.name, 'kind', s.kind, 'text', s.text, "
     "'language', s.language, 'voice', s.voice, 'bridge_to', s.bridge_to, 'options', "
     "s.options, 'voicemail', s.voicemail)::jsonb FROM call_scripts s WHERE s.id = $2::bigint "
     "AND s.business_id = $1::bigint)) "
     "WHERE r.business_id = $1::bigint AND r.script_id = $2::bigint"},
    {"ob_script_delete", "DELETE FROM call_scripts WHERE id = $2::bigint "
			 "AND business_id = $1::bigint"},
};

void outbound_scripts_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static json_t *script_json(const PGresult *r, int i)
{
	json_t *o = json_object(), *opts = json_loads(db_str(r, i, 7), 0, NULL);

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "name", json_string(db_str(r, i, 1)));
	json_object_set_new(o, "kind", json_string(db_str(r, i, 2)));
	json_object_set_new(o, "text", json_string(db_str(r, i, 3)));
	json_object_set_new(o, "language", json_string(db_str(r, i, 4)));
	json_object_set_new(o, "voice", json_string(db_str(r, i, 5)));
	json_object_set_new(o, "bridge_to", outbound_jstr(r, i, 6));
	json_object_set_new(o, "options", opts != NULL ? opts : json_object());
	json_object_set_new(o, "voicemail", outbound_jstr(r, i, 8));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 9)));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, 10)));
	return o;
}

static const char *jstr_or_null(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* BCP 47 as the schema allows it: "en", "heb", "en-US". */
static bool valid_language(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz");

	if (n < 2 || n > 3)
		return false;
	if (s[n] == '\0')
		return true;
	return s[n] == '-' && strspn(s + n + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == 2 &&
	       s[n + 3] == '\0';
}

static bool valid_voice(const char *s)
{
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") ==
	       strlen(s);
}

/* Copy fe's errors into out, each field name prefixed. */
static void fielderr_prefixed(arena_t *a, json_fielderr_t *out, const json_fielderr_t *fe,
			      const char *prefix)
{
	json_t *fv;
	size_t i;

	json_array_foreach(fe->list, i, fv)
	{
		json_fielderr_add(out,
				  arena_sprintf(a, "%s%s", prefix,
						json_string_value(json_object_get(fv, "field"))),
				  json_string_value(json_object_get(fv, "message")));
	}
}

/* A text field of at most SCRIPT_TEXT_MAX characters. */
static int text_field(json_t *obj, const char *key, const char **out, json_fielderr_t *fe)
{
	int rc = json_get_str(obj, key, false, 0, SCRIPT_TEXT_MAX * 4, out, fe);

	if (rc > 0 && outbound_utf8_chars(*out) > SCRIPT_TEXT_MAX) {
		json_fielderr_add(fe, key, "is longer than 4000 characters");
		return -1;
	}
	return rc;
}

/* DTMF a <Gather> can collect: [0-9*#], 1..max. */
static bool valid_digits(const char *s, int64_t max)
{
	size_t n = strspn(s, "0123456789*#");

	return n > 0 && s[n] == '\0' && (int64_t)n <= max;
}

/*
 * One gather choice (value `c` of digits `key`), errors under
 * "choices.<where>."; bridge_to is normalised in place. has_bridge: the
 * script has its own bridge_to.
 */
static void parse_choice(http_request_t *req, json_t *c, const char *where, bool has_bridge,
			 const char *country, json_fielderr_t *fe)
{
	arena_t *a = req->arena;
	const char *say = NULL, *action = NULL, *bridge = NULL;
	char e164[OUTBOUND_PHONE_BUFSZ], why[160];
	json_fielderr_t cf;

	json_fielderr_init(&cf, a);
	if (json_is_string(c)) {
		if (outbound_utf8_chars(json_string_value(c)) > SCRIPT_TEXT_MAX)
			json_fielderr_add(fe, arena_sprintf(a, "choices.%s", where),
					  "is longer than 4000 characters");
		return;
	}
	if (!json_is_object(c)) {
		json_fielderr_add(fe, arena_sprintf(a, "choices.%s", where),
				  "must be a text or an object {say, action, bridge_to}");
		return;
	}
	text_field(c, "say", &say, &cf);
	if (json_get_str(c, "action", false, 1, 16, &action, &cf) > 0 &&
	    strcmp(action, "bridge") != 0 && strcmp(action, "opt_out") != 0 &&
	    strcmp(action, "say") != 0) {
		json_fielderr_add(&cf, "action", "must be bridge, opt_out or say");
		action = NULL;
	}
	if (json_get_str(c, "bridge_to", false, 1, OUTBOUND_PHONE_INPUT_MAX, &bridge, &cf) > 0) {
		if (action != NULL && strcmp(action, "bridge") != 0)
			json_fielderr_add(&cf, "bridge_to", "is only for action bridge");
		else if (outbound_phone_normalize(bridge, country, e164, why, sizeof(why)) !=
			 OUTBOUND_PHONE_OK)
			json_fielderr_add(&cf, "bridge_to", arena_sprintf(a, "%s", why));
		else
			json_object_set_new(c, "bridge_to", json_string(e164));
	} else if (action != NULL && strcmp(action, "bridge") == 0 && !has_bridge &&
		   json_object_get(c, "bridge_to") == NULL) {
		json_fielderr_add(&cf, "bridge_to",
				  "is required for action bridge when the script has no bridge_to");
	}
	fielderr_prefixed(a, fe, &cf, arena_sprintf(a, "choices.%s.", where));
}

/*
 * The options of a script of `kind` (a deep copy the caller owns, bridge_to
 * numbers normalised), errors as "options.<name>" into fe.
 */
static void parse_options(http_request_t *req, json_t *o, const char *kind, bool has_bridge,
			  const char *country, json_fielderr_t *fe)
{
	static const char *const texts[] = {"whisper", "no_input", "invalid", "unavailable"};
	arena_t *a = req->arena;
	bool gather = kind != NULL && strcmp(kind, "gather") == 0;
	bool bridge = kind != NULL && strcmp(kind, "bridge") == 0;
	json_t *choices = json_object_get(o, "choices"), *c;
	int64_t v, num_digits = 1;
	const char *t, *key;
	json_fielderr_t of;
	size_t i;

	json_fielderr_init(&of, a);
	json_get_int(o, "repeat", false, 1, TWIML_REPEAT_MAX, &v, &of);
	json_get_int(o, "timeout", false, bridge ? 5 : 1, bridge ? 600 : 60, &v, &of);
	json_get_int(o, "num_digits", false, 1, TWIML_DIGITS_MAX, &num_digits, &of);
	json_get_int(o, "bridge_timeout", false, 5, 600, &v, &of);
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		text_field(o, texts[i], &t, &of);
	if (choices != NULL && !gather) {
		json_fielderr_add(&of, "choices", "is only for kind gather");
	} else if (json_is_object(choices)) {
		if (json_object_size(choices) > 12)
			json_fielderr_add(&of, "choices", "has more than 12 choices");
		json_object_foreach(choices, key, c)
		{
			if (!valid_digits(key, num_digits))
				json_fielderr_add(
				    &of, arena_sprintf(a, "choices.%s", key),
				    "must be keyed by 1 to num_digits of 0-9, * and #");
			else
				parse_choice(req, c, key, has_bridge, country, &of);
		}
	} else if (json_is_array(choices)) {
		if (json_array_size(choices) > 12)
			json_fielderr_add(&of, "choices", "has more than 12 choices");
		json_array_foreach(choices, i, c)
		{
			const char *d = jstr_or_null(c, "digit"),
				   *where = arena_sprintf(a, "%zu", i);

			if (d == NULL || !valid_digits(d, num_digits))
				json_fielderr_add(&of, arena_sprintf(a, "choices.%s.digit", where),
						  "must be 1 to num_digits of 0-9, * and #");
			else
				parse_choice(req, c, where, has_bridge, country, &of);
		}
	} else if (choices != NULL) {
		json_fielderr_add(&of, "choices", "must be an object keyed by digits, or a list");
	}
	fielderr_prefixed(a, fe, &of, "options.");
}

int outbound_script_parse(http_request_t *req, json_t *obj, const char *prefix, bool need_name,
			  const char *country, json_t **out, json_fielderr_t *fe)
{
	arena_t *a = req->arena;
	const char *name = NULL, *kind = NULL, *text = NULL, *language = "en-US", *voice = "alice";
	const char *bridge = NULL, *voicemail = NULL;
	char e164[OUTBOUND_PHONE_BUFSZ] = "", why[160];
	json_fielderr_t lf;
	json_t *options = json_object_get(obj, "options");
	bool has_choices;

	json_fielderr_init(&lf, a);
	if (json_get_str(obj, "name", need_name, 1, 800, &name, &lf) > 0 &&
	    outbound_utf8_chars(name) > 200)
		json_fielderr_add(&lf, "name", "is longer than 200 characters");
	if (json_get_str(obj, "kind", true, 1, 16, &kind, &lf) > 0 && strcmp(kind, "say") != 0 &&
	    strcmp(kind, "bridge") != 0 && strcmp(kind, "gather") != 0) {
		json_fielderr_add(&lf, "kind", "must be say, bridge or gather");
		kind = NULL;
	}
	text_field(obj, "text", &text, &lf);
	if (kind != NULL && strcmp(kind, "bridge") != 0 && json_object_get(obj, "text") == NULL)
		json_fielderr_add(&lf, "text", "is required for kind say and gather");
	else if (kind != NULL && strcmp(kind, "bridge") != 0 && text != NULL && text[0] == '\0')
		json_fielderr_add(&lf, "text", "must not be empty for kind say and gather");
	if (json_get_str(obj, "language", false, 2, 6, &language, &lf) > 0 &&
	    !valid_language(language))
		json_fielderr_add(&lf, "language", "must be a language tag like en or en-US");
	if (json_get_str(obj, "voice", false, 1, 64, &voice, &lf) > 0 && !valid_voice(voice))
		json_fielderr_add(&lf, "voice", "may hold letters, digits, '.', '_', ':' and '-'");
	if (json_get_str(obj, "bridge_to", false, 1, OUTBOUND_PHONE_INPUT_MAX, &bridge, &lf) > 0) {
		if (kind != NULL && strcmp(kind, "say") == 0)
			json_fielderr_add(&lf, "bridge_to", "is only for kinds bridge and gather");
		else if (outbound_phone_normalize(bridge, country, e164, why, sizeof(why)) !=
			 OUTBOUND_PHONE_OK)
			json_fielderr_add(&lf, "bridge_to", arena_sprintf(a, "%s", why));
	} else if (kind != NULL && strcmp(kind, "bridge") == 0 &&
		   json_object_get(obj, "bridge_to") == NULL) {
		json_fielderr_add(&lf, "bridge_to", "is required for kind bridge");
	}
	has_choices = json_object_size(json_object_get(options, "choices")) > 0 ||
		      json_array_size(json_object_get(options, "choices")) > 0;
	/* the default menu (no choices): 1 bridges to bridge_to, 2 opts out */
	if (kind != NULL && strcmp(kind, "gather") == 0 && !has_choices &&
	    json_object_get(obj, "bridge_to") == NULL)
		json_fielderr_add(&lf, "bridge_to",
				  "is required for kind gather without options.choices (1 bridges "
				  "to it, 2 opts out)");
	if (options != NULL) {
		size_t len;

		if (!json_is_object(options)) {
			json_fielderr_add(&lf, "options", "must be an object");
		} else if ((json_dump_arena(a, options, &len), len) > SCRIPT_OPTIONS_MAX) {
			json_fielderr_add(&lf, "options", "is larger than 8 KiB");
		} else {
			/* validated on a copy, whose numbers are normalised */
			options = json_arena(a, json_deep_copy(options));
			parse_options(req, options, kind, e164[0] != '\0', country, &lf);
		}
	}
	text_field(obj, "voicemail", &voicemail, &lf);
	if (json_fielderr_any(&lf)) {
		fielderr_prefixed(a, fe, &lf, prefix);
		return -1;
	}
	*out = json_arena(
	    a,
	    json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:o}", "kind", kind, "text", text ? text : "",
		      "language", language, "voice", voice, "bridge_to",
		      e164[0] ? json_string(e164) : json_null(), "options",
		      json_is_object(options) ? json_incref(options) : json_object(), "voicemail",
		      voicemail != NULL && voicemail[0] ? json_string(voicemail) : json_null()));
	if (name != NULL)
		json_object_set_new(*out, "name", json_string(name));
	return 0;
}

/* The statement parameters for a validated script s (name, kind, ... voicemail). */
static void script_params(http_request_t *req, json_t *s, const char **p)
{
	size_t len;

	p[0] = json_string_value(json_object_get(s, "name"));
	p[1] = json_string_value(json_object_get(s, "kind"));
	p[2] = json_string_value(json_object_get(s, "text"));
	p[3] = json_string_value(json_object_get(s, "language"));
	p[4] = json_string_value(json_object_get(s, "voice"));
	p[5] = json_string_value(json_object_get(s, "bridge_to")); /* NULL for null */
	p[6] = json_dump_arena(req->arena, json_object_get(s, "options"), &len);
	p[7] = json_string_value(json_object_get(s, "voicemail"));
}

/* Validate the body as a whole script into *s; 0, or 1 after answering 400, or ERR_*. */
static int script_body(http_request_t *req, json_t **s)
{
	json_fielderr_t fe;
	const char *country = NULL;
	int rc;

	json_fielderr_init(&fe, req->arena);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 1;
	}
	rc = outbound_business_country(req, &country);
	if (rc < 0)
		return rc;
	if (outbound_script_parse(req, req->json, "", true, country, s, &fe) < 0) {
		http_reply_invalid(req, &fe);
		return 1;
	}
	return 0;
}

static int audit_script(http_request_t *req, const char *action, int64_t id)
{
	audit_event_t ev = {.tag = "AUDIT",
			    .action = action,
			    .resource_type = "script",
			    .resource_id = id,
			    .business_id = req->principal->business_id,
			    .outcome = "ok"};

	return audit_record(req, &ev);
}

int outbound_scripts_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	r = DB_EXEC(req->db, req->arena, &err, "ob_scripts_list", api_business_param(req),
		    db_i64s(req->arena, size), db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, script_json(r, i));
		total = db_i64(r, i, 11);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c =
		    DB_EXEC(req->db, req->arena, &err, "ob_scripts_count", api_business_param(req));

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

int outbound_scripts_get(http_request_t *req)
{
	int64_t id = req->params[0];
	int err;
	PGresult *r = DB_EXEC(req->db, req->arena, &err, "ob_script_get", api_business_param(req),
			      db_i64s(req->arena, id));

	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "script", id);
	http_reply_json(req, 200, json_pack("{s:o}", "script", script_json(r, 0)));
	return 0;
}

int outbound_scripts_create(http_request_t *req)
{
	const char *p[9];
	json_t *s = NULL;
	PGresult *r;
	int rc, err;

	rc = script_body(req, &s);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	p[0] = api_business_param(req);
	script_params(req, s, p + 1);
	r = db_exec(req->db, req->arena, "ob_script_insert", 9, p, &err);
	if (r == NULL)
		return err;
	err = audit_script(req, "script.create", db_i64(r, 0, 0));
	if (err < 0)
		return err;
	http_reply_json(req, 201, json_pack("{s:o}", "script", script_json(r, 0)));
	return 0;
}

int outbound_scripts_replace(http_request_t *req)
{
	int64_t id = req->params[0];
	const char *p[10];
	json_t *s = NULL;
	PGresult *r;
	int rc, err;

	r = DB_EXEC(req->db, req->arena, &err, "ob_script_lock", api_business_param(req),
		    db_i64s(req->arena, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "script", id);
	rc = script_body(req, &s);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	p[0] = api_business_param(req);
	p[1] = db_i64s(req->arena, id);
	script_params(req, s, p + 2);
	r = db_exec(req->db, req->arena, "ob_script_update", 10, p, &err);
	if (r == NULL)
		return err;
	err = audit_script(req, "script.update", id);
	if (err < 0)
		return err;
	http_reply_json(req, 200, json_pack("{s:o}", "script", script_json(r, 0)));
	return 0;
}

int outbound_scripts_delete(http_request_t *req)
{
	int64_t id = req->params[0];
	const char *bid = api_business_param(req), *ids = db_i64s(req->arena, id);
	PGresult *r;
	int err;

	r = DB_EXEC(req->db, req->arena, &err, "ob_script_lock", bid, ids);
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "script", id);
	r = DB_EXEC(req->db, req->arena, &err, "ob_script_in_use", bid, ids);
	if (r == NULL)
		return err;
	if (PQntuples(r) > 0) {
		http_reply_error(req, 409, "script_in_use",
				 "an active run uses this script; cancel the run first",
				 json_pack("{s:I}", "run_id", (json_int_t)db_i64(r, 0, 0)));
		return 0;
	}
	if (DB_EXEC(req->db, req->arena, &err, "ob_script_detach", bid, ids) == NULL ||
	    DB_EXEC(req->db, req->arena, &err, "ob_script_delete", bid, ids) == NULL)
		return err;
	err = audit_script(req, "script.delete", id);
	if (err < 0)
		return err;
	http_reply_empty(req, 204);
	return 0;
}
