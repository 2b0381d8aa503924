/*
 * handlers.h - every API handler, by module. Each takes the request, answers
 * with http_reply_*, and returns 0 (commit) or a negative ERR_* (roll back;
 * the dispatcher answers for the code when the handler did not).
 */
#ifndef DIALFLOW_HANDLERS_H
#define DIALFLOW_HANDLERS_H

#include "dialflow/http.h"

/* Statement registration, called once per process before connecting. */
void api_health_register(void);
void auth_handlers_register(void);
void admin_register(void); /* the three below */
void admin_users_register(void);
void admin_businesses_register(void);
void admin_audit_register(void);

/* src/api/health.c */
int api_health(http_request_t *req);

/* src/auth/handlers.c */
int auth_handle_login(http_request_t *req);
int auth_handle_refresh(http_request_t *req);
int auth_handle_logout(http_request_t *req);
int auth_handle_me(http_request_t *req);

/* src/admin/businesses.c */
int admin_businesses_list(http_request_t *req);
int admin_businesses_create(http_request_t *req);
int admin_businesses_set_pages(http_request_t *req);
void admin_ratelimits_register(void);
int admin_ratelimits_get(http_request_t *req);
int admin_ratelimits_put(http_request_t *req);

/* src/admin/users.c */
int admin_users_list(http_request_t *req);
int admin_users_create(http_request_t *req);
int admin_users_update(http_request_t *req);

/* src/admin/audit.c */
int admin_audit_list_all(http_request_t *req);
int admin_audit_list_tenant(http_request_t *req);

/*
 * For handlers of tenant resources: check that resource `type`/`id` is
 * visible to the caller. Returns 0 when it is the caller's; otherwise answers
 * 404 (no such resource) or 403 forbidden with a [SECURITY] line and audit
 * row naming the user, both businesses and the resource, and returns 1.
 * Returns a negative ERR_* on database failure.
 */
int api_tenant_guard(http_request_t *req, const char *type, int64_t id);

/*
 * After a tenant-scoped lookup of type/id found nothing: answer 403 (+
 * [SECURITY] line and audit row) for another tenant's resource, else 404.
 * Returns 0 (the handler returns it) or ERR_*.
 */
int api_tenant_guard_miss(http_request_t *req, const char *type, int64_t id);

#endif
