/*
 * routes.c - the outbound-calls endpoints (API.md "Outbound calls"), all on
 * page calls_outbound: agents read and run, admins import, edit leads and
 * write scripts. One line per endpoint, so its access rule reads at a glance.
 */
#include "dialflow/api.h"
#include "dialflow/outbound.h"
#include "outbound_api.h"

#define AGENT                                                                                      \
	{                                                                                          \
		GUARD_USER | GUARD_TENANT, ROLE_AGENT, OUTBOUND_PAGE                               \
	}
#define ADMIN                                                                                      \
	{                                                                                          \
		GUARD_USER | GUARD_TENANT, ROLE_ADMIN, OUTBOUND_PAGE                               \
	}
#define JSON HTTP_BODY_JSON
#define CSV  HTTP_BODY_CSV

const http_route_t outbound_routes[] = {
    /* leads */
    {HTTP_POST, "/api/leads/import", outbound_leads_import, ADMIN, JSON | CSV},
    {HTTP_GET, "/api/leads", outbound_leads_list, AGENT, 0},
    {HTTP_PATCH, "/api/leads/{id:int}", outbound_leads_update, ADMIN, JSON},
    {HTTP_GET, "/api/lead_lists", outbound_lists_list, AGENT, 0},

    /* runs */
    {HTTP_POST, "/api/outbound_calls/runs", outbound_runs_create, AGENT, JSON},
    {HTTP_GET, "/api/outbound_calls/runs", outbound_runs_list, AGENT, 0},
    {HTTP_GET, "/api/outbound_calls/runs/{id:int}", outbound_runs_get, AGENT, 0},
    {HTTP_GET, "/api/outbound_calls/runs/{id:int}/jobs", outbound_runs_jobs, AGENT, 0},
    {HTTP_GET, "/api/outbound_calls/jobs/active", outbound_runs_active, AGENT, 0},
    {HTTP_POST, "/api/outbound_calls/runs/{id:int}/cancel", outbound_runs_cancel, AGENT, 0},
    {HTTP_POST, "/api/outbound_calls/runs/{id:int}/force-cancel", outbound_runs_force_cancel, AGENT,
     0},
    /* the same, kept for existing clients: {id} is the run id */
    {HTTP_POST, "/api/outbound_calls/jobs/{id:int}/force-cancel", outbound_runs_force_cancel, AGENT,
     0},

    /* call scripts */
    {HTTP_GET, "/api/outbound_calls/scripts", outbound_scripts_list, AGENT, 0},
    {HTTP_POST, "/api/outbound_calls/scripts", outbound_scripts_create, ADMIN, JSON},
    {HTTP_GET, "/api/outbound_calls/scripts/{id:int}", outbound_scripts_get, AGENT, 0},
    {HTTP_PUT, "/api/outbound_calls/scripts/{id:int}", outbound_scripts_replace, ADMIN, JSON},
    {HTTP_DELETE, "/api/outbound_calls/scripts/{id:int}", outbound_scripts_delete, ADMIN, 0},

    /* the call log */
    {HTTP_GET, "/api/calls", outbound_calls_list, AGENT, 0},
};
const size_t outbound_nroutes = sizeof(outbound_routes) / sizeof(outbound_routes[0]);

void outbound_register(void)
{
	outbound_apiutil_register();
	outbound_leads_register();
	outbound_runs_register();
	outbound_scripts_register();
	outbound_calls_register();
	/* outbound_call_event()'s statements (callevents.c); registering twice is harmless */
	outbound_events_register();
}
