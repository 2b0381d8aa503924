/*
 * leads.c - leads and lead lists: the import (JSON rows or CSV, one
 * transaction, one multi-row upsert), the list with search, the lead update
 * (do-not-call), and the lists of imports.
 *
 * Import semantics (API.md is silent on these, so they are decided here):
 *   - every import creates one lead list holding every valid row's lead;
 *   - a phone already known to the business is not imported again: the lead
 *     keeps its fields, only an empty name/email/notes is filled from the row,
 *     and it never loses do_not_call or its status; it still joins the list;
 *   - imported = new leads; skipped = valid rows that made no new lead (the
 *     phone was known, or repeated an earlier row); every invalid row is in
 *     errors; imported + skipped + errors = the rows sent;
 *   - no valid row at all answers 400 (nothing is created), with the errors.
 */
#include <string.h>
#include <time.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/csv.h"
#include "dialflow/err.h"
#include "dialflow/ratelimit.h"
#include "dialflow/handlers.h"
#include "dialflow/leadimport.h"
#include "dialflow/phone.h"
#include "outbound_api.h"

#define LEAD_COLS                                                                                  \
	"l.id, l.name, l.phone_e164, l.email, l.status, l.source, l.do_not_call, "                 \
	"to_char(l.created_at" OB_UTC ", to_char(l.last_call_at" OB_UTC ", l.notes, "              \
	"to_char(l.updated_at" OB_UTC

/* $1 business, $2 name pattern, $3 phone pattern, $4 status, $5 do_not_call, $6 list. */
#define LEADS_WHERE                                                                                \
	" WHERE l.business_id = $1::bigint"                                                        \
	" AND ($2::text IS NULL OR l.name ILIKE $2 OR ($3::text IS NOT NULL AND "                  \
	"l.phone_e164 LIKE $3))"                                                                   \
	" AND ($4::text IS NULL OR l.status = $4)"                                                 \
	" AND ($5::boolean IS NULL OR l.do_not_call = $5::boolean)"                                \
	" AND ($6::bigint IS NULL OR EXISTS (SELECT 1 FROM lead_list_members m WHERE m.list_id = " \
	"$6::bigint AND m.lead_id = l.id AND m.business_id = $1::bigint))"

static const db_stmt_t stmts[] = {
    {"ob_list_insert", "INSERT INTO lead_lists (business_id, name, created_by) "
		       "VALUES ($1::bigint, $2, $3::bigint) RETURNING id"},
    /* One statement for the whole import: new leads are inserted, known ones
     * only get their empty fields filled, and all of them join the list.
     * (xmax = 0) tells an inserted row from an updated one. */
    {"ob_leads_upsert",
     "WITH input AS (SELECT t.phone, t.name, t.email, t.notes, t.ord FROM "
     "unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY "
     "AS t(phone, name, email, notes, ord)), "
     "up AS (INSERT INTO leads AS l (business_id, phone_e164, name, email, notes, source) "
     "SELECT $1::bigint, i.phone, i.name, i.email, i.notes, 'import' FROM input i "
     "ORDER BY i.ord "
     "ON CONFLICT (business_id, phone_e164) DO UPDATE SET "
     "name = CASE WHEN l.name = '' THEN EXCLUDED.name ELSE l.name END, "
     "email = coalesce(l.email, EXCLUDED.email), notes = coalesce(l.notes, EXCLUDED.notes), "
     "updated_at = CASE WHEN (l.name = '' AND EXCLUDED.name <> '') OR (l.email IS NULL AND "
     "EXCLUDED.email IS NOT NULL) OR (l.notes IS NULL AND EXCLUDED.notes IS NOT NULL) "
     "THEN now() ELSE l.updated_at END "
     "RETURNING l.id, (l.xmax = 0) AS inserted, (l.updated_at = now()) AS touched), "
     "mem AS (INSERT INTO lead_list_members (list_id, lead_id, business_id) "
     "SELECT $6::bigint, up.id, $1::bigint FROM up ON CONFLICT DO NOTHING RETURNING 1) "
     "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted), "
     "count(*) FILTER (WHERE NOT inserted AND touched), (SELECT count(*) FROM mem) FROM up"},
    {"ob_leads_list",
     "SELECT " LEAD_COLS ", (SELECT count(*) FROM leads l" LEADS_WHERE ") FROM leads l" LEADS_WHERE
     " ORDER BY l.id DESC LIMIT $7::bigint OFFSET $8::bigint"},
    {"ob_leads_count", "SELECT count(*) FROM leads l" LEADS_WHERE},
    {"ob_lead_lock", "SELECT id FROM leads WHERE id = $2::bigint AND business_id = $1::bigint "
		     "FOR UPDATE"},
    {"ob_lead_update",
     "UPDATE leads l SET name = coalesce($3, l.name), status = coalesce($4, l.status), "
     "do_not_call = coalesce($5::boolean, l.do_not_call), "
     "email = CASE WHEN $6::text IS NULL THEN l.email ELSE nullif($6, '') END, "
     "notes = CASE WHEN $7::text IS NULL THEN l.notes ELSE nullif($7, '') END, "
     "updated_at = now() WHERE l.id = $2::bigint AND l.business_id = $1::bigint "
     "RETURNING " LEAD_COLS},
    /* A lead marked do-not-call loses the jobs still waiting for it, at once. */
    {"ob_lead_jobs_dnc", "UPDATE outbound_call_jobs SET status = 'cancelled', "
			 "error_code = 'do_not_call', error_message = 'Lead marked do-not-call', "
			 "completed_at = now(), updated_at = now() "
			 "WHERE lead_id = $2::bigint AND business_id = $1::bigint "
			 "AND status = 'queued'"},
    {"ob_lists_list", "SELECT ll.id, ll.name, ll.created_by, to_char(ll.created_at" OB_UTC ", "
		      "(SELECT count(*) FROM lead_list_members m WHERE m.list_id = ll.id "
		      "AND m.business_id = ll.business_id), "
		      "(SELECT count(*) FROM lead_lists WHERE business_id = $1::bigint) "
		      "FROM (SELECT * FROM lead_lists WHERE business_id = $1::bigint ORDER BY "
		      "id DESC "
		      "LIMIT $2::bigint OFFSET $3::bigint) ll ORDER BY ll.id DESC"},
};

void outbound_leads_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

static const char *const lead_statuses[] = {
    "new", "contacted", "interested", "not_interested", "converted", "invalid", NULL};

static json_t *lead_json(const PGresult *r, int i)
{
	json_t *o = json_object();

	json_object_set_new(o, "id", json_integer(db_i64(r, i, 0)));
	json_object_set_new(o, "name", json_string(db_str(r, i, 1)));
	json_object_set_new(o, "phone", json_string(db_str(r, i, 2)));
	json_object_set_new(o, "email", outbound_jstr(r, i, 3));
	json_object_set_new(o, "status", json_string(db_str(r, i, 4)));
	json_object_set_new(o, "source", json_string(db_str(r, i, 5)));
	json_object_set_new(o, "do_not_call", json_boolean(db_bool(r, i, 6)));
	json_object_set_new(o, "created_at", json_string(db_str(r, i, 7)));
	json_object_set_new(o, "last_call_at", outbound_jstr(r, i, 8));
	json_object_set_new(o, "notes", outbound_jstr(r, i, 9));
	json_object_set_new(o, "updated_at", json_string(db_str(r, i, 10)));
	return o;
}

/* --- POST /api/leads/import ------------------------------------------------ */

static json_t *errors_json(const outbound_import_t *imp)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < imp->nerrors; i++) {
		const outbound_import_error_t *e = &imp->errors[i];
		json_t *o = json_pack("{s:I,s:s}", "row", (json_int_t)e->row, "reason", e->reason);

		if (e->line > 0)
			json_object_set_new(o, "line", json_integer((json_int_t)e->line));
		json_array_append_new(arr, o);
	}
	return arr;
}

/* Options of the import: from the JSON body, or from the query of a CSV upload. */
static void import_options(http_request_t *req, const char **list_name, const char **country,
			   json_fielderr_t *fe)
{
	if (req->body_type == HTTP_BODY_JSON) {
		json_get_str(req->json, "list_name", false, 1, 800, list_name, fe);
		json_get_str(req->json, "default_country", false, 2, 2, country, fe);
	} else {
		*list_name = http_query(req, "list_name");
		*country = http_query(req, "default_country");
		if (*list_name != NULL && ((*list_name)[0] == '\0' ||
					   !outbound_utf8_valid(*list_name, strlen(*list_name)))) {
			json_fielderr_add(fe, "list_name", "must be non-empty UTF-8 text");
			*list_name = NULL;
		}
	}
	if (*list_name != NULL && outbound_utf8_chars(*list_name) > 200)
		json_fielderr_add(fe, "list_name", "is longer than 200 characters");
	if (*country != NULL && outbound_phone_country_code(*country) == 0)
		json_fielderr_add(fe, "default_country",
				  "must be an ISO 3166-1 alpha-2 country code, e.g. US");
}

static const char *default_list_name(arena_t *a)
{
	time_t now = time(NULL);
	struct tm tm;
	char buf[32];

	gmtime_r(&now, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
	return arena_sprintf(a, "Import %s", buf);
}

/* Run the upsert for the valid rows into list list_id. */
static PGresult *upsert(http_request_t *req, const outbound_import_t *imp, int64_t list_id,
			int *err)
{
	arena_t *a = req->arena;
	const char **phone = arena_calloc(a, imp->nrows, sizeof(char *));
	const char **name = arena_calloc(a, imp->nrows, sizeof(char *));
	const char **email = arena_calloc(a, imp->nrows, sizeof(char *));
	const char **notes = arena_calloc(a, imp->nrows, sizeof(char *));

	for (size_t i = 0; i < imp->nrows; i++) {
		phone[i] = imp->rows[i].phone;
		name[i] = imp->rows[i].name;
		email[i] = imp->rows[i].email;
		notes[i] = imp->rows[i].notes;
	}
	return DB_EXEC(req->db, a, err, "ob_leads_upsert", api_business_param(req),
		       outbound_text_array(a, phone, imp->nrows),
		       outbound_text_array(a, name, imp->nrows),
		       outbound_text_array(a, email, imp->nrows),
		       outbound_text_array(a, notes, imp->nrows), db_i64s(a, list_id));
}

int outbound_leads_import(http_request_t *req)
{
	arena_t *a = req->arena;
	const char *list_name = NULL, *country = NULL, *field = NULL, *why = NULL;
	outbound_import_t imp;
	json_fielderr_t fe;
	int64_t list_id, inserted, known, filled;
	PGresult *r;
	int rc, err;

	json_fielderr_init(&fe, a);
	if (req->body_type == HTTP_BODY_JSON && !json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object {list_name?, rows:[...]}");
		http_reply_invalid(req, &fe);
		return 0;
	}
	import_options(req, &list_name, &country, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (country == NULL) {
		rc = outbound_business_country(req, &country);
		if (rc < 0)
			return rc;
	}
	if (req->body_type == HTTP_BODY_JSON)
		rc = outbound_import_json(a, json_object_get(req->json, "rows"), country, &imp,
					  &field, &why);
	else
		rc = outbound_import_csv(a, req->body, req->body_len, country, &imp, &field, &why);
	if (rc < 0) {
		json_fielderr_add(&fe, field, why);
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (imp.nrows == 0) {
		json_fielderr_add(&fe, "rows", "has no valid row (see errors)");
		http_reply_error(
		    req, 400, "invalid_input", "no row of the import is valid",
		    json_pack("{s:O,s:o}", "fields", fe.list, "errors", errors_json(&imp)));
		return 0;
	}
	/* a valid import counts against the business's limit; a refused body does not */
	rc = ratelimit_guard(req, &RATELIMIT_LEAD_IMPORT, "business");
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (list_name == NULL)
		list_name = default_list_name(a);
	r = DB_EXEC(req->db, a, &err, "ob_list_insert", api_business_param(req), list_name,
		    db_i64s(a, req->principal->user_id));
	if (r == NULL)
		return err;
	list_id = db_i64(r, 0, 0);
	r = upsert(req, &imp, list_id, &err);
	if (r == NULL)
		return err;
	inserted = db_i64(r, 0, 0);
	known = db_i64(r, 0, 1);
	filled = db_i64(r, 0, 2);
	{
		audit_event_t ev = {
		    .tag = "AUDIT",
		    .action = "lead.import",
		    .resource_type = "list",
		    .resource_id = list_id,
		    .business_id = req->principal->business_id,
		    .outcome = "ok",
		    .details = json_arena(
			a, json_pack("{s:s,s:I,s:I,s:I,s:I}", "format",
				     req->body_type == HTTP_BODY_JSON ? "json" : "csv", "rows",
				     (json_int_t)imp.total, "imported", (json_int_t)inserted,
				     "skipped", (json_int_t)(known + (int64_t)imp.duplicates),
				     "errors", (json_int_t)imp.nerrors))};

		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	http_reply_json(req, 200,
			json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:o}", "list_id", (json_int_t)list_id,
				  "list_name", list_name, "total_rows", (json_int_t)imp.total,
				  "imported", (json_int_t)inserted, "skipped",
				  (json_int_t)(known + (int64_t)imp.duplicates), "updated",
				  (json_int_t)filled, "errors", errors_json(&imp)));
	return 0;
}

/* --- GET /api/leads ----------------------------------------------------------- */

/* q as ILIKE pattern on the name (metacharacters escaped), and as a LIKE on the
 * phone's digits when q looks like a phone number. */
static void search_patterns(arena_t *a, const char *q, const char **name_pat,
			    const char **phone_pat)
{
	size_t n = strlen(q), digits = 0;
	char *np = arena_alloc(a, 2 * n + 3), *pp = arena_alloc(a, n + 3), *p;
	bool phoneish = true;

	p = np;
	*p++ = '%';
	for (const char *c = q; *c; c++) {
		if (*c == '%' || *c == '_' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	*p++ = '%';
	*p = '\0';
	*name_pat = np;
	p = pp;
	*p++ = '%';
	for (const char *c = q; *c; c++) {
		if (*c >= '0' && *c <= '9') {
			*p++ = *c;
			digits++;
		} else if (strchr("+ -().", *c) == NULL) {
			phoneish = false;
		}
	}
	*p++ = '%';
	*p = '\0';
	*phone_pat = phoneish && digits > 0 ? pp : NULL;
}

int outbound_leads_list(http_request_t *req)
{
	static const char *const dnc_values[] = {"true", "false", NULL};
	json_fielderr_t fe;
	int64_t page, size, list_id;
	const char *q, *p[8] = {NULL};
	PGresult *r;
	json_t *items;
	int64_t total = 0;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	json_fielderr_init(&fe, req->arena);
	q = http_query(req, "q");
	if (q != NULL && (strlen(q) > 200 || !outbound_utf8_valid(q, strlen(q))))
		json_fielderr_add(&fe, "q", "must be UTF-8 text of at most 200 bytes");
	else if (q != NULL && q[0] != '\0')
		search_patterns(req->arena, q, &p[1], &p[2]);
	p[3] = outbound_enum_filter(req, "status", lead_statuses, &fe);
	p[4] = outbound_enum_filter(req, "do_not_call", dnc_values, &fe);
	outbound_id_filter(req, "list_id", &list_id, &fe);
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	p[0] = api_business_param(req);
	if (list_id > 0) {
		/* a filter naming another tenant's list is refused like a path id */
		int rc = api_tenant_guard(req, "list", list_id);

		if (rc != 0)
			return rc < 0 ? rc : 0;
		p[5] = db_i64s(req->arena, list_id);
	}
	p[6] = db_i64s(req->arena, size);
	p[7] = db_i64s(req->arena, (page - 1) * size);
	r = db_exec(req->db, req->arena, "ob_leads_list", 8, p, &err);
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(items, lead_json(r, i));
		total = db_i64(r, i, 11);
	}
	if (PQntuples(r) == 0 && page > 1) {
		PGresult *c = db_exec(req->db, req->arena, "ob_leads_count", 6, p, &err);

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = db_i64(c, 0, 0);
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}

/* --- PATCH /api/leads/{id} ------------------------------------------------- */

/* Whether s has no control characters (a name is one line of text). */
static bool one_line(const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (*c < 0x20 || *c == 0x7f)
			return false;
	return true;
}

int outbound_leads_update(http_request_t *req)
{
	arena_t *a = req->arena;
	int64_t id = req->params[0];
	const char *name = NULL, *status = NULL, *email = NULL, *notes = NULL;
	bool dnc = false;
	int has_dnc;
	json_fielderr_t fe;
	int64_t cancelled = 0;
	PGresult *r, *lead;
	int err;

	r = DB_EXEC(req->db, a, &err, "ob_lead_lock", api_business_param(req), db_i64s(a, id));
	if (r == NULL)
		return err;
	if (PQntuples(r) == 0)
		return api_tenant_guard_miss(req, "lead", id);
	json_fielderr_init(&fe, a);
	if (!json_is_object(req->json)) {
		json_fielderr_add(&fe, "body", "must be a JSON object");
		http_reply_invalid(req, &fe);
		return 0;
	}
	if (json_get_str(req->json, "name", false, 0, 800, &name, &fe) > 0 &&
	    (outbound_utf8_chars(name) > OUTBOUND_LEAD_NAME_MAX || !one_line(name)))
		json_fielderr_add(&fe, "name", "must be one line of at most 200 characters");
	if (json_get_str(req->json, "status", false, 1, 32, &status, &fe) > 0) {
		bool ok = false;

		for (size_t i = 0; lead_statuses[i] != NULL; i++)
			ok = ok || strcmp(status, lead_statuses[i]) == 0;
		if (!ok)
			json_fielderr_add(&fe, "status",
					  "must be new, contacted, interested, not_interested, "
					  "converted or invalid");
	}
	has_dnc = json_get_bool(req->json, "do_not_call", false, &dnc, &fe);
	if (json_get_str(req->json, "email", false, 0, OUTBOUND_LEAD_EMAIL_MAX, &email, &fe) > 0 &&
	    email[0] != '\0' && !outbound_email_valid(email))
		json_fielderr_add(&fe, "email", "is not a valid e-mail address");
	if (json_get_str(req->json, "notes", false, 0, 8000, &notes, &fe) > 0 &&
	    outbound_utf8_chars(notes) > OUTBOUND_LEAD_NOTES_MAX)
		json_fielderr_add(&fe, "notes", "is longer than 2000 characters");
	if (!json_fielderr_any(&fe) && name == NULL && status == NULL && has_dnc == 0 &&
	    email == NULL && notes == NULL)
		json_fielderr_add(&fe, "body", "send do_not_call, name, status, email or notes");
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return 0;
	}
	lead = DB_EXEC(req->db, a, &err, "ob_lead_update", api_business_param(req), db_i64s(a, id),
		       name, status, has_dnc > 0 ? (dnc ? "true" : "false") : NULL, email, notes);
	if (lead == NULL)
		return err;
	if (has_dnc > 0 && dnc) {
		r = DB_EXEC(req->db, a, &err, "ob_lead_jobs_dnc", api_business_param(req),
			    db_i64s(a, id));
		if (r == NULL)
			return err;
		cancelled = outbound_changed(r);
	}
	{
		json_t *d = json_object(), *fields = json_array();
		audit_event_t ev = {.tag = "AUDIT",
				    .action = "lead.update",
				    .resource_type = "lead",
				    .resource_id = id,
				    .business_id = req->principal->business_id,
				    .outcome = "ok"};

		/* field names only: the values are personal data */
		if (name != NULL)
			json_array_append_new(fields, json_string("name"));
		if (status != NULL)
			json_array_append_new(fields, json_string("status"));
		if (email != NULL)
			json_array_append_new(fields, json_string("email"));
		if (notes != NULL)
			json_array_append_new(fields, json_string("notes"));
		json_object_set_new(d, "fields", fields);
		if (has_dnc > 0) {
			json_object_set_new(d, "do_not_call", json_boolean(dnc));
			json_object_set_new(d, "jobs_cancelled", json_integer(cancelled));
		}
		ev.details = json_arena(a, d);
		err = audit_record(req, &ev);
		if (err < 0)
			return err;
	}
	http_reply_json(req, 200,
			json_pack("{s:o,s:I}", "lead", lead_json(lead, 0), "jobs_cancelled",
				  (json_int_t)cancelled));
	return 0;
}

/* --- GET /api/lead_lists --------------------------------------------------- */

int outbound_lists_list(http_request_t *req)
{
	int64_t page, size, total = 0;
	PGresult *r;
	json_t *items;
	int err;

	if (http_paging(req, &page, &size) < 0)
		return 0;
	r = DB_EXEC(req->db, req->arena, &err, "ob_lists_list", api_business_param(req),
		    db_i64s(req->arena, size), db_i64s(req->arena, (page - 1) * size));
	if (r == NULL)
		return err;
	items = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_array_append_new(
		    items,
		    json_pack("{s:I,s:s,s:o,s:s,s:I}", "id", (json_int_t)db_i64(r, i, 0), "name",
			      db_str(r, i, 1), "created_by", outbound_jint(r, i, 2), "created_at",
			      db_str(r, i, 3), "lead_count", (json_int_t)db_i64(r, i, 4)));
		total = db_i64(r, i, 5);
	}
	if (PQntuples(r) == 0) {
		/* the count rides on the page's rows; an empty page needs it asked */
		PGresult *c = DB_EXEC(req->db, req->arena, &err, "ob_lists_list",
				      api_business_param(req), "1", "0");

		if (c == NULL) {
			json_decref(items);
			return err;
		}
		total = PQntuples(c) > 0 ? db_i64(c, 0, 5) : 0;
	}
	http_reply_json(req, 200, http_list_envelope(items, total, page, size));
	return 0;
}
