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
#include "dialflow/router.h"

typedef struct api_ctx {
	config_t cfg;
	db_t *db;
	auth_jwt_keyring_t *keys;
	auth_jwt_policy_t policy;
} api_ctx_t;

/* The route table of the API and its length. */
extern const http_route_t api_routes[];
extern const size_t api_nroutes;

/* Set up the context from the environment: config, key ring, database handle. */
int api_ctx_init(api_ctx_t *ctx, const char *app_name, const char **err);
void api_ctx_free(api_ctx_t *ctx);

/* Run one request to completion; always leaves a response in req. */
void api_dispatch(api_ctx_t *ctx, http_request_t *req);

/* The process context of the request being served. */
api_ctx_t *api_ctx(const http_request_t *req);

#endif
