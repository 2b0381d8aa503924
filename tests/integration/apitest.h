/*
 * apitest.h - driving the API pipeline in-process for integration tests:
 * one request through api_dispatch() (route, token, guards, one transaction)
 * on a real database, as the API's own role, with the answer decoded.
 *
 * Several api_ctx_t stand for several API processes (one connection each).
 */
#ifndef DIALFLOW_APITEST_H
#define DIALFLOW_APITEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dialflow/api.h"
#include "itest.h"

typedef struct at_resp {
	int status;
	json_t *json;	      /* NULL for an empty or non-JSON body */
	char retry_after[16]; /* the Retry-After header, "" when absent */
} at_resp_t;

/*
 * Set up ctx as an API process would, on the test database as dialflow_app,
 * with a fresh JWT secret (secret_out, 64 bytes, keeps it alive).
 */
void at_ctx_init(api_ctx_t *ctx, char *secret_out);
/* The same with the database connection's application_name (pg_stat_activity). */
void at_ctx_init_named(api_ctx_t *ctx, char *secret_out, const char *application_name);
void at_ctx_free(api_ctx_t *ctx);

/* An access token for user on ctx's key ring. Caller frees. */
char *at_token(api_ctx_t *ctx, int64_t user);

/*
 * One request. uri may carry a query; token and body may be NULL; extra is
 * one more CGI variable ("HTTP_X_BUSINESS_ID=7") or NULL. The request id is
 * request_id (NULL: "apitest").
 */
at_resp_t at_call(api_ctx_t *ctx, const char *method, const char *uri, const char *token,
		  const char *ctype, const char *body, const char *extra, const char *request_id);
/* at_call with a JSON body (or none). */
at_resp_t at_json(api_ctx_t *ctx, const char *method, const char *uri, const char *token,
		  const char *json);
void at_free(at_resp_t *r);

/* The value at a dotted path ("run.id", "items.0.status"), borrowed; NULL when absent. */
json_t *at_get(const at_resp_t *r, const char *path);
/* Fail the test unless the value at path is an integer / a string. */
int64_t at_int(const at_resp_t *r, const char *path);
const char *at_str(const at_resp_t *r, const char *path);

void at_expect_status(const at_resp_t *r, int want, const char *file, int line);
void at_expect_error(const at_resp_t *r, int status, const char *code, const char *file, int line);
#define AT_STATUS(r, want)    at_expect_status(&(r), (want), __FILE__, __LINE__)
#define AT_ERROR(r, st, code) at_expect_error(&(r), (st), (code), __FILE__, __LINE__)

#endif
