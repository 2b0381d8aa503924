/*
 * api.h - the API process: its shared context, dispatch and route table.
 *
 * One api_ctx_t lives for the whole process (configuration, the database
 * handle, the JWT key ring). api_dispatch() runs one request through route
 * matching, body checks, authentication, guards and one database
 * transaction around the handler.
 */
#ifndef DIALFLOW_API_H
#define DIALFLOW_API_H

#include "dialflow/auth.h"
#include "dialflow/config.h"
#include "dialflow/db.h"
#include "dialflow/metrics.h"
#include "dialflow/router.h"

typedef struct api_ctx {
	config_t cfg;
	db_t *db;
	auth_jwt_keyring_t *keys;
	auth_jwt_policy_t policy;
	metrics_t *metrics; /* request counters shared by the deployment's processes */
} api_ctx_t;

/* A module's route table. */
typedef struct api_route_table {
	const http_route_t *routes;
	const size_t *n; /* the module's own count, defined next to its table */
} api_route_table_t;

/* The core routes (identity, administration) and every module's table. */
extern const http_route_t api_routes[];
extern const size_t api_nroutes;
extern const http_route_t outbound_routes[];
extern const size_t outbound_nroutes;
extern const http_route_t webhook_routes[];
extern const size_t webhook_nroutes;
extern const http_route_t flow_api_routes[];
extern const size_t flow_api_nroutes;
extern const api_route_table_t api_route_tables[];
extern const size_t api_ntables;

/*
 * Match across every table: ROUTE_FOUND, ROUTE_NOT_FOUND or ROUTE_BAD_METHOD
 * (with *allow the union of the methods the path accepts).
 */
int api_route_match(http_request_t *req, const http_route_t **out, unsigned *allow);

/* Register the WhatsApp flows API's statements (src/flows/routes.c). */
void flows_api_register(void);

/* Set up the context from the environment: config, key ring, database handle. */
int api_ctx_init(api_ctx_t *ctx, const char *app_name, const char **err);
void api_ctx_free(api_ctx_t *ctx);

/* Run one request to completion; always leaves a response in req. */
void api_dispatch(api_ctx_t *ctx, http_request_t *req);

/* The process context of the request being served. */
api_ctx_t *api_ctx(const http_request_t *req);

/* The business in effect for the request's principal, as a query parameter (request arena). */
const char *api_business_param(http_request_t *req);

#endif
