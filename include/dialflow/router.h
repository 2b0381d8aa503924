/*
 * router.h - a static table of {methods, pattern, handler, guard}.
 *
 * Patterns are literal segments and typed captures: `{name:int}` matches a
 * positive decimal int64 without leading zeros or sign, `{name:str}` a
 * segment of [A-Za-z0-9_.-] up to 128 bytes. Anything else does not match, so
 * `1'OR'1'='1`, `-1` and `99999999999999999999` are 404, never a handler call.
 */
#ifndef DIALFLOW_ROUTER_H
#define DIALFLOW_ROUTER_H

#include "dialflow/http.h"

typedef int (*http_handler_fn)(http_request_t *req);

/* Guard flags. */
enum {
	GUARD_PUBLIC = 0,	 /* no token                                      */
	GUARD_USER = 1 << 0,	 /* a valid token of an active user               */
	GUARD_TENANT = 1 << 1,	 /* needs a business (system_admin: X-Business-Id) */
	GUARD_SYSADMIN = 1 << 2, /* system_admin only, acting for no tenant        */
	GUARD_NO_TX = 1 << 3,	 /* the handler manages the database itself       */
	/* The handler answers from the principal alone: the principal is loaded
	 * in one autocommit statement and no transaction is opened (GET /api/me). */
	GUARD_PRINCIPAL_ONLY = 1 << 4,
};

typedef struct http_guard {
	unsigned flags;
	int min_role;	  /* auth_role_t; 0 = any authenticated user   */
	const char *page; /* page key that must be enabled, or NULL     */
} http_guard_t;

typedef struct http_route {
	unsigned methods; /* HTTP_* mask                                */
	const char *pattern;
	http_handler_fn handler;
	http_guard_t guard;
	unsigned body_types; /* HTTP_BODY_* accepted when a body is sent */
} http_route_t;

enum { ROUTE_FOUND = 0, ROUTE_NOT_FOUND = -1, ROUTE_BAD_METHOD = -2 };

/*
 * Match `path` against the table. On ROUTE_FOUND *out is the route and the
 * typed captures are stored in req->params/sparams. On ROUTE_BAD_METHOD,
 * *allow holds the methods the path accepts.
 */
int http_route_match(const http_route_t *routes, size_t n, http_request_t *req,
		     const http_route_t **out, unsigned *allow);

#endif
