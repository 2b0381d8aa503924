/*
 * flows_api.h - inside the flows module: the HTTP handlers of the WhatsApp
 * flows API (API.md "WhatsApp flows", listed in routes.c) and the helpers
 * they share. Not a public contract: other modules use flow.h and
 * flow_store.h.
 *
 * Every handler runs inside the dispatcher's transaction, scoped to the
 * caller's tenant (RLS), and also filters on business_id explicitly. A
 * lookup by id that finds nothing ends with api_tenant_guard_miss()
 * (handlers.h), which tells "another tenant's" (403 + [SECURITY]) from "does
 * not exist" (404).
 * Writers of a contact's conversation lock the contact row first (contacts
 * FOR UPDATE), the order the webhook processing uses.
 */
#ifndef DIALFLOW_FLOWS_API_H
#define DIALFLOW_FLOWS_API_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "dialflow/api.h"
#include "dialflow/handlers.h"
#include "dialflow/http.h"

/*
 * The tail of an SQL expression that renders a timestamptz as RFC 3339 UTC
 * text: "to_char(f.created_at" FLOW_API_UTC.
 */
#define FLOW_API_UTC " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

/* The pages the endpoints belong to (auth/roles.c registers them). */
#define FLOW_API_PAGE	  "whatsapp_flows"
#define FLOW_API_CONTACTS "contacts"
#define FLOW_API_SETTINGS "settings"

/* A flow definition (the body of POST/PUT /api/flows) is at most this big. */
#define FLOW_API_BODY_MAX (1024 * 1024)
/* simulate: at most this many user messages, each at most this many bytes. */
#define FLOW_API_SIM_MESSAGES_MAX 50
#define FLOW_API_SIM_TEXT_MAX	  4096
/* An agent's reply: 1..4096 characters (the WhatsApp text body limit). */
#define FLOW_API_REPLY_MAX 4096
/* GET /api/contacts/{id}: the last this many messages. */
#define FLOW_API_CONTACT_MESSAGES 50

/* Statement registration, one per file (flows_api_register() calls them all). */
void flow_api_flows_register(void);
void flow_api_contacts_register(void);
void flow_api_settings_register(void);

/* src/flows/api_flows.c */
int flows_list(http_request_t *req);
int flows_create(http_request_t *req);
int flows_get(http_request_t *req);
int flows_replace(http_request_t *req);
int flows_delete(http_request_t *req);
int flows_activate(http_request_t *req);
int flows_deactivate(http_request_t *req);
int flows_versions(http_request_t *req);
int flows_simulate(http_request_t *req);

/* src/flows/api_contacts.c */
int flows_contacts_list(http_request_t *req);
int flows_contacts_get(http_request_t *req);
int flows_contacts_reply(http_request_t *req);
int flows_contacts_resolve(http_request_t *req);

/* src/flows/api_settings.c */
int flows_settings_get(http_request_t *req);
int flows_settings_put(http_request_t *req);

/* --- helpers (src/flows/routes.c) ----------------------------------------- */

/* Column helpers for JSON answers: SQL NULL becomes JSON null. */
json_t *flow_api_jstr(const PGresult *r, int row, int col);
json_t *flow_api_jint(const PGresult *r, int row, int col);
/* A jsonb column (as text) decoded; SQL NULL (or garbage) becomes `dflt` (stolen). */
json_t *flow_api_jdoc(const PGresult *r, int row, int col, json_t *dflt);

/*
 * An optional boolean query parameter ("true"/"false"): 1 or 0 into *out and
 * returns 1; returns 0 when absent; records a field error and returns -1
 * otherwise.
 */
int flow_api_bool_query(http_request_t *req, const char *name, int *out, json_fielderr_t *fe);

/* Record an audit event of the caller's tenant. details is borrowed (may be NULL). */
int flow_api_audit(http_request_t *req, const char *tag, const char *action, const char *type,
		   int64_t id, json_t *details);

#endif
