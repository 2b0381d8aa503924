/*
 * outbound_api.h - inside the outbound module: its HTTP handlers (listed in
 * routes.c) and the helpers they share. Not a public contract: other modules
 * use outbound.h.
 *
 * Every handler runs inside the dispatcher's transaction, scoped to the
 * caller's tenant (RLS), and also filters on business_id explicitly. A
 * lookup by id that finds nothing ends with api_tenant_guard_miss()
 * (handlers.h), which tells "another tenant's" (403 + [SECURITY]) from "does
 * not exist" (404).
 */
#ifndef DIALFLOW_OUTBOUND_API_H
#define DIALFLOW_OUTBOUND_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "dialflow/api.h"
#include "dialflow/handlers.h"
#include "dialflow/http.h"

/*
 * The tail of an SQL expression that renders a timestamptz as RFC 3339 UTC
 * text: "to_char(r.created_at" OB_UTC.
 */
#define OB_UTC " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The page every outbound endpoint belongs to. */
#define OUTBOUND_PAGE "calls_outbound"

/* Statement registration, one per file (outbound_register() calls them all). */
void outbound_leads_register(void);
void outbound_runs_register(void);
void outbound_calls_register(void);
void outbound_scripts_register(void);
void outbound_apiutil_register(void);

/* src/outbound/leads.c */
int outbound_leads_import(http_request_t *req);
int outbound_leads_list(http_request_t *req);
int outbound_leads_update(http_request_t *req);
int outbound_lists_list(http_request_t *req);

/* src/outbound/runs.c */
int outbound_runs_create(http_request_t *req);
int outbound_runs_list(http_request_t *req);
int outbound_runs_get(http_request_t *req);
int outbound_runs_jobs(http_request_t *req);
int outbound_runs_active(http_request_t *req);
int outbound_runs_cancel(http_request_t *req);
int outbound_runs_force_cancel(http_request_t *req);

/* src/outbound/calls.c */
int outbound_calls_list(http_request_t *req);

/* src/outbound/scripts.c */
int outbound_scripts_list(http_request_t *req);
int outbound_scripts_create(http_request_t *req);
int outbound_scripts_get(http_request_t *req);
int outbound_scripts_replace(http_request_t *req);
int outbound_scripts_delete(http_request_t *req);

/*
 * Validate a script object (the body of POST/PUT scripts, or a run's inline
 * `script`) into *out as the JSON stored in call_scripts / runs.script
 * ({name, kind, text, language, voice, bridge_to, options, voicemail}).
 * prefix ("" or "script.") is put before field names in fe. need_name:
 * whether name is required. country: for normalising bridge_to. Returns 0,
 * or -1 with problems added to fe. *out is tied to the request arena.
 */
int outbound_script_parse(http_request_t *req, json_t *obj, const char *prefix, bool need_name,
			  const char *country, json_t **out, json_fielderr_t *fe);

/* --- src/outbound/apiutil.c ------------------------------------------------ */

/* The business's default country (ISO alpha-2) into *out. Returns 0 or ERR_*. */
int outbound_business_country(http_request_t *req, const char **out);

/* NOTIFY the workers (queue.h's channel) with payload, delivered at commit. Returns 0 or ERR_*. */
int outbound_notify(http_request_t *req, const char *payload);

/* A PostgreSQL array literal of n strings (NULL elements are SQL NULL), in the arena. */
const char *outbound_text_array(arena_t *a, const char *const *v, size_t n);
/* A PostgreSQL bigint[] literal, in the arena. */
const char *outbound_int_array(arena_t *a, const int64_t *v, size_t n);

/* Column helpers for JSON answers: SQL NULL becomes JSON null. */
json_t *outbound_jstr(const PGresult *r, int row, int col);
json_t *outbound_jint(const PGresult *r, int row, int col);

/* The number of rows a command changed (PQcmdTuples), 0 when none. */
int64_t outbound_changed(const PGresult *r);

/* Number of UTF-8 characters (code points) of s. */
size_t outbound_utf8_chars(const char *s);

/*
 * A query filter that must be one of the NULL-terminated `allowed` values;
 * NULL when absent. Records a field error otherwise.
 */
const char *outbound_enum_filter(http_request_t *req, const char *name, const char *const *allowed,
				 json_fielderr_t *fe);
/* A positive id query filter into *out (0 when absent). Records a field error otherwise. */
void outbound_id_filter(http_request_t *req, const char *name, int64_t *out, json_fielderr_t *fe);

#endif
