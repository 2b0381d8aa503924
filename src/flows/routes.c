/*
 * routes.c - the WhatsApp flows endpoints (API.md "WhatsApp flows"): flows
 * on page whatsapp_flows (agents read and simulate, admins write), the
 * contacts inbox on page contacts (agents), the WhatsApp account on page
 * settings (owners). One line per endpoint, so its access rule reads at a
 * glance. Also the small helpers the handlers share (flows_api.h).
 */
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/audit.h"
#include "dialflow/flow_store.h"
#include "dialflow/handlers.h"
#include "dialflow/whatsapp.h"
#include "flows_api.h"

#define GUARD(role, page)                                                                          \
	{                                                                                          \
		GUARD_USER | GUARD_TENANT, role, page                                              \
	}
#define AGENT GUARD(ROLE_AGENT, FLOW_API_PAGE)
#define ADMIN GUARD(ROLE_ADMIN, FLOW_API_PAGE)
#define INBOX GUARD(ROLE_AGENT, FLOW_API_CONTACTS)
#define OWNER GUARD(ROLE_OWNER, FLOW_API_SETTINGS)
#define JSON  HTTP_BODY_JSON

const http_route_t flow_api_routes[] = {
    /* flows */
    {HTTP_GET, "/api/flows", flows_list, AGENT, 0},
    {HTTP_POST, "/api/flows", flows_create, ADMIN, JSON},
    {HTTP_GET, "/api/flows/{id:int}", flows_get, AGENT, 0},
    {HTTP_PUT, "/api/flows/{id:int}", flows_replace, ADMIN, JSON},
    {HTTP_DELETE, "/api/flows/{id:int}", flows_delete, ADMIN, 0},
    {HTTP_GET, "/api/flows/{id:int}/versions", flows_versions, AGENT, 0},
    {HTTP_POST, "/api/flows/{id:int}/activate", flows_activate, ADMIN, 0},
    {HTTP_POST, "/api/flows/{id:int}/deactivate", flows_deactivate, ADMIN, 0},
    {HTTP_POST, "/api/flows/{id:int}/simulate", flows_simulate, AGENT, JSON},

    /* contacts and the handover inbox */
    {HTTP_GET, "/api/contacts", flows_contacts_list, INBOX, 0},
    {HTTP_GET, "/api/contacts/{id:int}", flows_contacts_get, INBOX, 0},
    {HTTP_POST, "/api/contacts/{id:int}/messages", flows_contacts_reply, INBOX, JSON},
    {HTTP_POST, "/api/contacts/{id:int}/handover/resolve", flows_contacts_resolve, INBOX, 0},

    /* the WhatsApp Cloud API account */
    {HTTP_GET, "/api/settings/whatsapp", flows_settings_get, OWNER, 0},
    {HTTP_PUT, "/api/settings/whatsapp", flows_settings_put, OWNER, JSON},
};
const size_t flow_api_nroutes = sizeof(flow_api_routes) / sizeof(flow_api_routes[0]);

void flows_api_register(void)
{
	flow_api_flows_register();
	flow_api_contacts_register();
	flow_api_settings_register();
	/* the simulator's reads and the agent's replies; registering twice is harmless */
	flow_store_register();
	wa_outbox_register();
}

/* --- helpers -------------------------------------------------------------- */

json_t *flow_api_jstr(const PGresult *r, int row, int col)
{
	return db_isnull(r, row, col) ? json_null() : json_string(db_str(r, row, col));
}

json_t *flow_api_jint(const PGresult *r, int row, int col)
{
	return db_isnull(r, row, col) ? json_null() : json_integer(db_i64(r, row, col));
}

json_t *flow_api_jdoc(const PGresult *r, int row, int col, json_t *dflt)
{
	json_t *v = db_isnull(r, row, col) ? NULL : json_loads(db_str(r, row, col), 0, NULL);

	if (v == NULL)
		return dflt;
	json_decref(dflt);
	return v;
}

int flow_api_bool_query(http_request_t *req, const char *name, int *out, json_fielderr_t *fe)
{
	const char *v = http_query(req, name);

	if (v == NULL)
		return 0;
	if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) {
		*out = 1;
		return 1;
	}
	if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) {
		*out = 0;
		return 1;
	}
	json_fielderr_add(fe, name, "must be true or false");
	return -1;
}

int flow_api_audit(http_request_t *req, const char *tag, const char *action, const char *type,
		   int64_t id, json_t *details)
{
	audit_event_t ev = {.tag = tag,
			    .action = action,
			    .resource_type = type,
			    .resource_id = id,
			    .business_id = req->principal->business_id,
			    .outcome = "ok",
			    .details = details};

	return audit_record(req, &ev);
}
