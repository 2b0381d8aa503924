/* response.c - buffered JSON responses and the uniform error shape (DESIGN §4). */
#include <stdio.h>
#include <string.h>

#include "dialflow/config.h"
#include "dialflow/err.h"
#include "dialflow/http.h"
#include "dialflow/strnum.h"

#define JSON_CTYPE "application/json; charset=utf-8"

static void reset_response(http_request_t *req)
{
	req->resp_nheaders = 0;
	req->resp_body = NULL;
	req->resp_len = 0;
	req->resp_ctype = NULL;
	req->responded = true;
}

void http_add_header(http_request_t *req, const char *name, const char *value)
{
	if (req->resp_nheaders >= HTTP_MAX_HEADERS)
		return;
	req->resp_hname[req->resp_nheaders] = arena_strdup(req->arena, name);
	req->resp_hvalue[req->resp_nheaders] = arena_strdup(req->arena, value);
	req->resp_nheaders++;
}

void http_reply_raw(http_request_t *req, int status, const char *ctype, const char *body,
		    size_t len)
{
	reset_response(req);
	req->status = status;
	req->resp_ctype = ctype;
	req->resp_body = body;
	req->resp_len = len;
}

void http_reply_empty(http_request_t *req, int status)
{
	http_reply_raw(req, status, NULL, NULL, 0);
}

void http_reply_json(http_request_t *req, int status, json_t *body)
{
	size_t len;
	char *text = json_dump_arena(req->arena, body, &len);

	json_decref(body);
	http_reply_raw(req, status, JSON_CTYPE, text, len);
}

void http_reply_error(http_request_t *req, int status, const char *code, const char *msg,
		      json_t *extra)
{
	json_t *err = json_pack("{s:s,s:s}", "code", code, "message", msg ? msg : code);

	if (extra != NULL) {
		json_object_update(err, extra);
		json_decref(extra);
	}
	http_reply_json(req, status, json_pack("{s:o}", "error", err));
}

void http_reply_invalid(http_request_t *req, const json_fielderr_t *fe)
{
	json_t *fields = fe->list ? json_incref(fe->list) : json_array();

	http_reply_error(req, 400, "invalid_input", "the request has invalid fields",
			 json_pack("{s:o}", "fields", fields));
}

void http_reply_forbidden(http_request_t *req, const char *reason, const char *msg)
{
	http_reply_error(req, 403, "forbidden", msg ? msg : "access denied",
			 json_pack("{s:s}", "reason", reason));
}

void http_reply_err(http_request_t *req, int err)
{
	int status = err_http_status(err);

	switch (err) {
	case ERR_UNAVAIL:
	case ERR_RETRY: {
		char ra[16];

		snprintf(ra, sizeof(ra), "%d", req->cfg ? req->cfg->db_retry_after : 1);
		http_reply_error(req, 503, "db_unavailable",
				 "the database is unavailable, retry shortly", NULL);
		http_add_header(req, "Retry-After", ra);
		break;
	}
	case ERR_NOTFOUND:
		http_reply_error(req, 404, "not_found", "no such resource", NULL);
		break;
	case ERR_CONFLICT:
		http_reply_error(req, 409, "conflict", "the request conflicts with existing data",
				 NULL);
		break;
	case ERR_INVAL:
		http_reply_error(req, 400, "invalid_input", "the request is invalid",
				 json_pack("{s:[]}", "fields"));
		break;
	case ERR_AUTH:
		http_reply_error(req, 401, "unauthenticated", "authentication required", NULL);
		break;
	case ERR_FORBIDDEN:
		http_reply_forbidden(req, "forbidden", NULL);
		break;
	default:
		http_reply_error(req, status, "internal_error", "internal error", NULL);
		break;
	}
}

json_t *http_list_envelope(json_t *items, int64_t total, int64_t page, int64_t page_size)
{
	return json_pack("{s:o,s:I,s:I,s:I}", "items", items, "total", (json_int_t)total, "page",
			 (json_int_t)page, "page_size", (json_int_t)page_size);
}

int http_paging(http_request_t *req, int64_t *page, int64_t *page_size)
{
	const char *p = http_query(req, "page");
	const char *s = http_query(req, "page_size");
	json_fielderr_t fe;

	json_fielderr_init(&fe, req->arena);
	*page = 1;
	*page_size = 50;
	if (p != NULL && strnum_i64(p, 1, 1000000, page) < 0)
		json_fielderr_add(&fe, "page", "must be an integer from 1");
	if (s != NULL && strnum_i64(s, 1, 200, page_size) < 0)
		json_fielderr_add(&fe, "page_size", "must be an integer from 1 to 200");
	if (json_fielderr_any(&fe)) {
		http_reply_invalid(req, &fe);
		return -1;
	}
	return 0;
}
