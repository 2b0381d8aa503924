/*
 * routes.c - the API's route table: method, path, handler and guard in one
 * line each, so the access rules of every endpoint are read in one place.
 */
#include "dialflow/api.h"
#include "dialflow/handlers.h"
#include "dialflow/metrics.h"

#define PUBLIC                                                                                     \
	{                                                                                          \
		GUARD_PUBLIC, 0, NULL                                                              \
	}
#define USER(role)                                                                                 \
	{                                                                                          \
		GUARD_USER, role, NULL                                                             \
	}
#define TENANT(role, page)                                                                         \
	{                                                                                          \
		GUARD_USER | GUARD_TENANT, role, page                                              \
	}
#define SYSADMIN                                                                                   \
	{                                                                                          \
		GUARD_USER | GUARD_SYSADMIN, ROLE_SYSTEM_ADMIN, NULL                               \
	}
#define JSON HTTP_BODY_JSON

const http_route_t api_routes[] = {
    {HTTP_GET, "/api/health", api_health, {GUARD_NO_TX, 0, NULL}, 0},
    /* Prometheus scrape: no token, nginx allows it from loopback only */
    {HTTP_GET, "/metrics", metrics_handle, {GUARD_NO_TX, 0, NULL}, 0},

    /* identity */
    {HTTP_POST, "/api/auth/login", auth_handle_login, PUBLIC, JSON},
    {HTTP_POST, "/api/auth/refresh", auth_handle_refresh, PUBLIC, JSON},
    {HTTP_POST, "/api/auth/logout", auth_handle_logout, USER(ROLE_AGENT), 0},
    {HTTP_GET, "/api/me", auth_handle_me, {GUARD_USER | GUARD_PRINCIPAL_ONLY, ROLE_AGENT, NULL}, 0},

    /* tenant administration */
    {HTTP_GET, "/api/users", admin_users_list, TENANT(ROLE_ADMIN, NULL), 0},
    {HTTP_POST, "/api/users", admin_users_create, USER(ROLE_OWNER), JSON},
    {HTTP_PATCH, "/api/users/{id:int}", admin_users_update, TENANT(ROLE_OWNER, NULL), JSON},
    {HTTP_GET, "/api/audit", admin_audit_list_tenant, TENANT(ROLE_OWNER, "settings"), 0},

    /* platform administration */
    {HTTP_GET, "/api/admin/businesses", admin_businesses_list, SYSADMIN, 0},
    {HTTP_POST, "/api/admin/businesses", admin_businesses_create, SYSADMIN, JSON},
    {HTTP_PATCH, "/api/admin/businesses/{id:int}/pages", admin_businesses_set_pages, SYSADMIN,
     JSON},
    {HTTP_GET, "/api/admin/businesses/{id:int}/rate_limits", admin_ratelimits_get, SYSADMIN, 0},
    {HTTP_PUT, "/api/admin/businesses/{id:int}/rate_limits", admin_ratelimits_put, SYSADMIN, JSON},
    {HTTP_GET, "/api/admin/audit", admin_audit_list_all, SYSADMIN, 0},
};

const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* Every module's table; a module adds its routes in its own routes.c. */
const api_route_table_t api_route_tables[] = {
    {api_routes, &api_nroutes},
    {outbound_routes, &outbound_nroutes},
    {webhook_routes, &webhook_nroutes},
    {flow_api_routes, &flow_api_nroutes},
};
const size_t api_ntables = sizeof(api_route_tables) / sizeof(api_route_tables[0]);

int api_route_match(http_request_t *req, const http_route_t **out, unsigned *allow)
{
	unsigned methods = 0;
	const http_route_t *found = NULL;

	for (size_t t = 0; t < api_ntables; t++) {
		const api_route_table_t *tab = &api_route_tables[t];
		unsigned a = 0;

		if (http_route_match(tab->routes, *tab->n, req, &found, &a) == ROUTE_FOUND) {
			*out = found;
			*allow = 0;
			return ROUTE_FOUND;
		}
		methods |= a;
	}
	*out = NULL;
	*allow = methods;
	return methods == 0 ? ROUTE_NOT_FOUND : ROUTE_BAD_METHOD;
}
