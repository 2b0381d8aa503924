/*
 * e2e.h - helpers for the end-to-end tier: HTTPS requests through nginx,
 * fixtures made with dialflow-admin, and the API log.
 *
 * The tests talk to the whole running stack that `./dev test` starts, and
 * only through its public surfaces (HTTP, the admin CLI, the log file), so
 * these helpers depend on libcurl, jansson, cmocka and libc only.
 *
 * Environment (set by the harness):
 *   DIALFLOW_TEST_BASE_URL   https://localhost:18443 by default
 *   DIALFLOW_TEST_CA_FILE    CA bundle that signs nginx's certificate
 *   DIALFLOW_ADMIN_BIN       the dialflow-admin binary (uses DIALFLOW_DATABASE_URL)
 *   DIALFLOW_TEST_API_LOG    the API processes' log file
 *
 * Every helper that can fail a test does so through cmocka (it never returns
 * a half-made fixture). Include <setjmp.h>, <stdarg.h>, <stddef.h> and
 * <cmocka.h> before this header, as cmocka requires.
 */
#ifndef DIALFLOW_E2E_H
#define DIALFLOW_E2E_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-request timeout: no test may hang on a stuck server. */
#define E2E_TIMEOUT_MS 10000L
/* Default password of fixture users (meets the 10-character policy). */
#define E2E_PASSWORD "e2e-Correct-Horse-9"

typedef struct e2e_header {
	char *name;
	char *value;
} e2e_header_t;

/* One HTTP exchange. Free with e2e_resp_free(). */
typedef struct e2e_resp {
	char what[256]; /* "METHOD /path" (path cut), for failure messages */
	long status;	/* HTTP status; 0 when the transfer failed         */
	int curl_code;	/* CURLE_OK, or why the transfer failed            */
	char curl_error[CURL_ERROR_SIZE];
	e2e_header_t *headers; /* of the final response (not of a 100 Continue) */
	size_t nheaders;
	char *body; /* raw body, NUL-terminated; never NULL after a request */
	size_t body_len;
	json_t *json;	   /* the parsed body, NULL when it is not JSON     */
	double elapsed_ms; /* wall time of the whole exchange                */
} e2e_resp_t;

/* Per-request options for e2e_req_ex(); zero-initialise and set what you need. */
typedef struct e2e_opts {
	const char *source_addr; /* bind the client socket to this local address */
	CURL *handle;		 /* reuse this easy handle (and its connection)   */
} e2e_opts_t;

/*
 * First call of every e2e main(): without DIALFLOW_TEST_BASE_URL (a plain
 * `make check` or distcheck, with no stack running) print a TAP skip plan and
 * exit 0. ./dev test always sets it, and counts a skipped tier as a failure.
 */
void e2e_skip_without_stack(void);

/* Initialise libcurl once; call from every group setup. Returns 0. */
int e2e_global_setup(void **state);
/* Release what e2e_global_setup() took. Returns 0. */
int e2e_global_teardown(void **state);

/*
 * Send one request to base URL + `path` (sent as is: no encoding).
 * token: "Authorization: Bearer <token>" when non-NULL.
 * content_type: the Content-Type header; NULL sends none at all.
 * body: body_len bytes (may contain NUL); NULL with a body-carrying method
 * sends an empty body with Content-Length: 0.
 * extra_headers: NULL-terminated "Name: value" strings, or NULL.
 * Never fails the test by itself: a transport failure gives status 0.
 */
e2e_resp_t e2e_req(const char *method, const char *path, const char *token,
		   const char *content_type, const char *body, size_t body_len,
		   const char *const extra_headers[]);
e2e_resp_t e2e_req_ex(const e2e_opts_t *opts, const char *method, const char *path,
		      const char *token, const char *content_type, const char *body,
		      size_t body_len, const char *const extra_headers[]);
/* A JSON request: `body` (may be NULL) is dumped compactly, Content-Type application/json. */
e2e_resp_t e2e_json_req(const char *method, const char *path, const char *token, json_t *body,
			const char *const extra_headers[]);
/* A JSON request with a body given as text, e.g. e2e_raw_json("POST", p, tok, "{\"a\":1}"). */
e2e_resp_t e2e_raw_json(const char *method, const char *path, const char *token, const char *body);
/* GET without a body. */
e2e_resp_t e2e_get(const char *path, const char *token, const char *const extra_headers[]);
void e2e_resp_free(e2e_resp_t *r);

/* The value of response header `name` (case-insensitive), or NULL. */
const char *e2e_header(const e2e_resp_t *r, const char *name);

/* --- JSON access ---------------------------------------------------------- */

/* The value at a dotted path ("error.code", "user.id"), or NULL. */
json_t *e2e_jget(json_t *root, const char *path);
/* The string at `path`, or NULL when absent or not a string. */
const char *e2e_jstr(json_t *root, const char *path);
/* Whether `path` is a JSON integer; stores it in *out. */
bool e2e_jint(json_t *root, const char *path, json_int_t *out);
/* Whether array `arr` holds the string `s`. */
bool e2e_jarray_has_str(json_t *arr, const char *s);

/* --- assertions (fail the current test with the request and body) -------- */

#define E2E_STATUS(r, st)	   e2e_expect_status_at(&(r), (st), __FILE__, __LINE__)
#define E2E_ERROR(r, st, code)	   e2e_expect_error_at(&(r), (st), (code), __FILE__, __LINE__)
#define E2E_FORBIDDEN(r, reason)   e2e_expect_forbidden_at(&(r), (reason), __FILE__, __LINE__)
#define E2E_FIELD_ERROR(r, field)  e2e_expect_field_error_at(&(r), (field), __FILE__, __LINE__)
#define E2E_4XX_JSON(r)		   e2e_expect_4xx_json_at(&(r), __FILE__, __LINE__)
#define E2E_JSON_HEADERS(r)	   e2e_expect_json_headers_at(&(r), __FILE__, __LINE__)
#define E2E_LIST(r, page, size)	   e2e_expect_list_at(&(r), (page), (size), __FILE__, __LINE__)
#define E2E_TRUE(r, cond, ...)	   e2e_expect_true_at(&(r), (cond), __FILE__, __LINE__, __VA_ARGS__)
#define E2E_JSTR_EQ(r, path, want) e2e_expect_jstr_at(&(r), (path), (want), __FILE__, __LINE__)
#define E2E_JINT_EQ(r, path, want) e2e_expect_jint_at(&(r), (path), (want), __FILE__, __LINE__)

/* status == st, and a transfer that completed. */
void e2e_expect_status_at(const e2e_resp_t *r, long st, const char *file, int line);
/* status == st and {"error":{"code":code,"message":string}}; code NULL accepts any string. */
void e2e_expect_error_at(const e2e_resp_t *r, long st, const char *code, const char *file,
			 int line);
/* 403 {"error":{"code":"forbidden","reason":reason}}. */
void e2e_expect_forbidden_at(const e2e_resp_t *r, const char *reason, const char *file, int line);
/* 400 invalid_input whose "fields" names `field` (or "field[i]", "field.x"). */
void e2e_expect_field_error_at(const e2e_resp_t *r, const char *field, const char *file, int line);
/* 400..499 with a JSON body {"error":{"code":string}}. */
void e2e_expect_4xx_json_at(const e2e_resp_t *r, const char *file, int line);
/* Content-Type: application/json; charset=utf-8 and Cache-Control: no-store. */
void e2e_expect_json_headers_at(const e2e_resp_t *r, const char *file, int line);
/* 200 and the list envelope {items[],total,page,page_size}; page/size -1 skip their check. */
void e2e_expect_list_at(const e2e_resp_t *r, json_int_t page, json_int_t size, const char *file,
			int line);
void e2e_expect_true_at(const e2e_resp_t *r, bool cond, const char *file, int line, const char *fmt,
			...) __attribute__((format(printf, 5, 6)));
void e2e_expect_jstr_at(const e2e_resp_t *r, const char *path, const char *want, const char *file,
			int line);
void e2e_expect_jint_at(const e2e_resp_t *r, const char *path, json_int_t want, const char *file,
			int line);

/* --- fixtures through dialflow-admin -------------------------------------- */

/* A string unique to this run: "<prefix>-<pid>-<epoch>-<n>" (malloc'd). */
char *e2e_unique(const char *prefix);
/* A unique lowercase e-mail address "<prefix>-<pid>-<epoch>-<n>@e2e.example.com". */
char *e2e_unique_email(const char *prefix);

/* Run $DIALFLOW_ADMIN_BIN with argv (NULL-terminated, without argv[0]); fail unless it exits
 * 0. Returns its stdout, trimmed, malloc'd. */
char *e2e_cli(const char *const argv[]);
/* The same, parsing stdout as one JSON object (new reference). */
json_t *e2e_cli_json(const char *const argv[]);

/* A business named e2e_unique(prefix); pages_csv (e.g. "calls_outbound,settings") is set
 * when non-NULL. Returns its id; *name_out (malloc'd) when non-NULL. */
int64_t e2e_business_create(const char *prefix, const char *pages_csv, char **name_out);
/* Replace the enabled pages of a business. */
void e2e_pages_set(int64_t business_id, const char *pages_csv);
/* Mint an access token for a user (malloc'd). */
char *e2e_token_issue(int64_t user_id);

typedef struct e2e_user {
	int64_t id;
	int64_t business_id; /* 0 for a system_admin */
	char role[32];
	char email[256];
	char name[128];
	char password[64];
	char *token; /* an access token from `token issue` */
} e2e_user_t;

/* Create a user with a unique e-mail, E2E_PASSWORD, and an access token.
 * business_id 0 creates a user without a business (system_admin). */
void e2e_user_create(e2e_user_t *u, int64_t business_id, const char *role);
/* Replace u->token with a fresh one (after its token_version was bumped). */
void e2e_user_retoken(e2e_user_t *u);
void e2e_user_free(e2e_user_t *u);

/* --- the API log ---------------------------------------------------------- */

/* The current size of $DIALFLOW_TEST_API_LOG: take it before the action. */
long long e2e_log_offset(void);
/* Whether one line written after `offset` contains every string of `needles`
 * (NULL-terminated), polling for up to timeout_ms. */
bool e2e_log_wait(long long offset, const char *const needles[], int timeout_ms);
/* Fail unless such a line appears within 2 s. */
#define E2E_LOG_EXPECT(offset, ...)                                                                \
	e2e_log_expect_at((offset), (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)
void e2e_log_expect_at(long long offset, const char *const needles[], const char *file, int line);

/* --- time ----------------------------------------------------------------- */

/* Monotonic milliseconds. */
double e2e_now_ms(void);
void e2e_sleep_ms(long ms);

/* DIALFLOW_TEST_BASE_URL, or https://localhost:18443. */
const char *e2e_base_url(void);
/* Apply the TLS, timeout and address-family options every request uses to easy handle h. */
void e2e_curl_common(CURL *h);

/* An environment variable, or `def` when unset or empty. */
const char *e2e_env(const char *name, const char *def);
/* An environment variable the test cannot run without (fails the test when unset). */
const char *e2e_env_required(const char *name);

#endif
