/*
 * http.h - the request/response model of the API, independent of FastCGI.
 *
 * src/http/server.c fills an http_request_t from a FastCGI request (reading
 * the body under the configured limit), the dispatcher routes it, and the
 * handler answers with one of the http_reply_* calls. The response is
 * buffered in the request and written once, after the handler returns, so a
 * retried transaction can replace it.
 */
#ifndef DIALFLOW_HTTP_H
#define DIALFLOW_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/jsonutil.h"

typedef enum {
	HTTP_OTHER = 0,
	HTTP_GET = 1 << 0,
	HTTP_POST = 1 << 1,
	HTTP_PUT = 1 << 2,
	HTTP_PATCH = 1 << 3,
	HTTP_DELETE = 1 << 4,
	HTTP_HEAD = 1 << 5,
	HTTP_OPTIONS = 1 << 6,
} http_method_t;

/* Body media types a route accepts. */
enum {
	HTTP_BODY_NONE = 0,
	HTTP_BODY_JSON = 1 << 0,
	HTTP_BODY_CSV = 1 << 1,
	HTTP_BODY_FORM = 1 << 2
};

#define HTTP_MAX_PARAMS	  4
#define HTTP_MAX_HEADERS  8
#define HTTP_MAX_AUTH_LEN 8192

struct auth_principal;
struct db;
struct config;

typedef struct http_request {
	arena_t *arena;
	const struct config *cfg;
	struct db *db;

	http_method_t method;
	const char *method_name; /* as sent, sanitised for logs              */
	const char *path;	 /* REQUEST_URI before '?', not decoded       */
	const char *query;	 /* raw query string, "" when absent          */
	const char *content_type;
	const char *remote_addr;
	const char *request_id;
	const char *const *envp; /* CGI variables (HTTP_* headers), NAME=VALUE */

	const char *body; /* exactly body_len bytes, NUL-terminated for safety */
	size_t body_len;
	unsigned body_type; /* HTTP_BODY_* of the Content-Type, 0 if none/other */
	json_t *json;	    /* decoded body for JSON routes, borrowed from arena */

	int64_t params[HTTP_MAX_PARAMS];      /* typed {x:int} path segments, in order */
	const char *sparams[HTTP_MAX_PARAMS]; /* {x:str} segments              */
	int nparams;

	struct auth_principal *principal; /* set by the guard; NULL when public */
	void *app;			  /* the application context (api_ctx_t) */
	int64_t log_user;		  /* for the access log line             */
	int64_t log_business;

	/* response */
	int status;
	const char *resp_ctype;
	const char *resp_body;
	size_t resp_len;
	const char *resp_hname[HTTP_MAX_HEADERS];
	const char *resp_hvalue[HTTP_MAX_HEADERS];
	int resp_nheaders;
	bool responded;
	int db_err;	      /* the last database error seen, for the 503 mapping */
	const char *log_note; /* short extra note for the access log           */

	/* transaction control for the API pipeline (src/api/dispatch.c) */
	bool tx_rollback;		       /* the answer must not commit the handler's writes */
	struct audit_detached *audit_detached; /* events written after the transaction */
} http_request_t;

/* Method enum for a method name; HTTP_OTHER when unknown. */
http_method_t http_method_parse(const char *name);
/* Comma-separated method list for an Allow header, into the arena. */
char *http_methods_str(arena_t *a, unsigned mask);

/* A CGI variable (e.g. "HTTP_AUTHORIZATION") or NULL. */
const char *http_env(const http_request_t *req, const char *name);
/* Decoded value of query parameter `name` (first occurrence) or NULL; arena-owned. */
const char *http_query(const http_request_t *req, const char *name);
/* Classify a Content-Type value into HTTP_BODY_*; 0 for anything else. */
unsigned http_body_type(const char *content_type);

/*
 * Percent-decode `len` bytes of a query component ('+' is a space) into the
 * arena. Returns NULL on a malformed escape or an embedded NUL.
 */
char *http_urldecode(arena_t *a, const char *s, size_t len);

/* Responses: each replaces whatever was set before. */
void http_reply_json(http_request_t *req, int status, json_t *body); /* steals body */
void http_reply_raw(http_request_t *req, int status, const char *ctype, const char *body,
		    size_t len);
void http_reply_empty(http_request_t *req, int status);
/* {"error":{"code":code,"message":msg}}; extra (stolen, may be NULL) is merged into "error". */
void http_reply_error(http_request_t *req, int status, const char *code, const char *msg,
		      json_t *extra);
/* 400 invalid_input with the field list. */
void http_reply_invalid(http_request_t *req, const json_fielderr_t *fe);
/* 403 {"error":{"code":"forbidden","reason":reason}}. */
void http_reply_forbidden(http_request_t *req, const char *reason, const char *msg);
/* The answer for a negative ERR_* code (503 adds Retry-After). */
void http_reply_err(http_request_t *req, int err);
/* Add a response header (name and value are copied). Silently capped at HTTP_MAX_HEADERS. */
void http_add_header(http_request_t *req, const char *name, const char *value);

/* The list envelope {"items":[...],"total":N,"page":P,"page_size":S}; steals items. */
json_t *http_list_envelope(json_t *items, int64_t total, int64_t page, int64_t page_size);
/*
 * Read ?page= and ?page_size= (1..200, default 50). Returns 0, or -1 after
 * answering 400.
 */
int http_paging(http_request_t *req, int64_t *page, int64_t *page_size);

#endif
