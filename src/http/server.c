/*
 * server.c - the FastCGI responder loop (libfcgi, one request at a time).
 *
 * Each accepted request gets the process arena (reset afterwards), a strictly
 * parsed CONTENT_LENGTH, a body read under the configured limit, then the
 * application's dispatch, and exactly one access log line with its duration.
 */
#include <fcgiapp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dialflow/config.h"
#include "dialflow/http.h"
#include "dialflow/log.h"
#include "dialflow/server.h"
#include "dialflow/strnum.h"

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
	FCGX_ShutdownPending();
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	case 429:
		return "Too Many Requests";
	case 503:
		return "Service Unavailable";
	default:
		return status >= 500 ? "Internal Server Error" : "Error";
	}
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Read exactly len bytes of body into the arena; -1 on a short read. */
static int read_body(FCGX_Request *fr, http_request_t *req, size_t len)
{
	char *buf = arena_alloc(req->arena, len + 1);
	size_t got = 0;

	while (got < len) {
		int n = FCGX_GetStr(buf + got, (int)(len - got), fr->in);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	buf[len] = '\0';
	req->body = buf;
	req->body_len = len;
	return 0;
}

/* Parse the request line and body; on a defect, leaves an error response and returns -1. */
static int prepare_request(FCGX_Request *fr, http_request_t *req, const config_t *cfg)
{
	const char *uri = FCGX_GetParam("REQUEST_URI", fr->envp);
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", fr->envp);
	const char *q;
	int64_t len = 0;

	req->envp = (const char *const *)fr->envp;
	req->method_name = FCGX_GetParam("REQUEST_METHOD", fr->envp);
	req->method = http_method_parse(req->method_name);
	req->content_type = FCGX_GetParam("CONTENT_TYPE", fr->envp);
	req->body_type = http_body_type(req->content_type);
	req->remote_addr = FCGX_GetParam("REMOTE_ADDR", fr->envp);
	req->request_id = FCGX_GetParam("REQUEST_ID", fr->envp);
	if (uri == NULL)
		uri = FCGX_GetParam("DOCUMENT_URI", fr->envp);
	if (uri == NULL)
		uri = "/";
	q = strchr(uri, '?');
	req->path = q ? arena_strndup(req->arena, uri, (size_t)(q - uri)) : uri;
	req->query = q ? q + 1 : "";
	req->body = "";
	if (cl != NULL && cl[0] != '\0') {
		if (strnum_i64(cl, 0, INT64_MAX, &len) < 0) {
			http_reply_error(req, 400, "invalid_input", "malformed Content-Length",
					 NULL);
			return -1;
		}
		/* The lead import (CSV uploads) alone may send up to max_import_body;
		 * nginx's client_max_body_size of each location says the same. */
		size_t limit = strcmp(req->path, "/api/leads/import") == 0 ? cfg->max_import_body
									   : cfg->max_body;

		if ((uint64_t)len > limit) {
			http_reply_error(req, 413, "payload_too_large",
					 "the request body exceeds the limit", NULL);
			return -1;
		}
		if (len > 0 && read_body(fr, req, (size_t)len) < 0) {
			http_reply_error(req, 400, "invalid_input", "truncated request body", NULL);
			return -1;
		}
	}
	return 0;
}

static void write_response(FCGX_Request *fr, http_request_t *req)
{
	/* Headers are formatted with snprintf: libfcgi's own FCGX_FPrintF does
	 * not know every C99 conversion (%zu). */
	char head[4096];
	size_t n = 0;

#define HEAD(...)                                                                                  \
	do {                                                                                       \
		int w_ = snprintf(head + n, sizeof(head) - n, __VA_ARGS__);                        \
		if (w_ > 0 && (size_t)w_ < sizeof(head) - n)                                       \
			n += (size_t)w_;                                                           \
	} while (0)
	HEAD("Status: %d %s\r\n", req->status, reason_phrase(req->status));
	if (req->resp_ctype != NULL)
		HEAD("Content-Type: %s\r\n", req->resp_ctype);
	HEAD("Cache-Control: no-store\r\n");
	if (req->request_id != NULL && strlen(req->request_id) <= 64)
		HEAD("X-Request-Id: %s\r\n", req->request_id);
	for (int i = 0; i < req->resp_nheaders; i++)
		HEAD("%s: %s\r\n", req->resp_hname[i], req->resp_hvalue[i]);
	HEAD("Content-Length: %zu\r\n\r\n", req->resp_len);
#undef HEAD
	FCGX_PutStr(head, (int)n, fr->out);
	if (req->resp_len > 0 && req->method != HTTP_HEAD)
		FCGX_PutStr(req->resp_body, (int)req->resp_len, fr->out);
}

static void access_log(const http_request_t *req, double ms)
{
	char path[200], method[16], rid[48];
	long long uid = req->log_user, bid = req->log_business;

	log_info("http",
		 "method=%s path=%s status=%d dur_ms=%.2f ip=%s req=%s user=%lld business=%lld%s%s",
		 log_sanitize(req->method_name ? req->method_name : "-", method, sizeof(method)),
		 log_sanitize(req->path, path, sizeof(path)), req->status, ms,
		 req->remote_addr ? req->remote_addr : "-",
		 log_sanitize(req->request_id ? req->request_id : "-", rid, sizeof(rid)), uid, bid,
		 req->log_note ? " note=" : "", req->log_note ? req->log_note : "");
}

int http_server_run(const config_t *cfg, http_serve_fn serve, void *app, arena_t *arena)
{
	FCGX_Request fr;
	struct sigaction sa;

	if (FCGX_Init() != 0) {
		log_error("http", "FCGX_Init failed");
		return -1;
	}
	if (FCGX_InitRequest(&fr, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		log_error("http", "FCGX_InitRequest failed");
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: accept() must return on SIGTERM */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	while (!stopping && FCGX_Accept_r(&fr) >= 0) {
		http_request_t req;
		struct timespec t0;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		memset(&req, 0, sizeof(req));
		req.arena = arena;
		req.cfg = cfg;
		req.app = app;
		if (prepare_request(&fr, &req, cfg) == 0)
			serve(app, &req);
		if (!req.responded)
			http_reply_error(&req, 500, "internal_error", "internal error", NULL);
		write_response(&fr, &req);
		access_log(&req, elapsed_ms(&t0));
		FCGX_Finish_r(&fr);
		arena_reset(arena);
	}
	FCGX_Free(&fr, 1);
	log_info("http", "shutting down");
	return 0;
}
