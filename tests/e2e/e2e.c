/*
 * e2e.c - see e2e.h.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"

#define DEFAULT_BASE_URL "https://localhost:18443"
/* How long a dialflow-admin command may take before the test gives up on it. */
#define CLI_TIMEOUT_MS 30000
#define LOG_WAIT_MS    2000

static bool curl_ready;

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL) {
		print_error("e2e: out of memory\n");
		abort();
	}
	return p;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL) {
		print_error("e2e: out of memory\n");
		abort();
	}
	return q;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *out = NULL;

	va_start(ap, fmt);
	if (vasprintf(&out, fmt, ap) < 0) {
		print_error("e2e: out of memory\n");
		abort();
	}
	va_end(ap);
	return out;
}

const char *e2e_env(const char *name, const char *def)
{
	const char *v = getenv(name);
	return (v != NULL && v[0] != '\0') ? v : def;
}

const char *e2e_env_required(const char *name)
{
	const char *v = e2e_env(name, NULL);
	if (v == NULL) {
		print_error("e2e: environment variable %s is not set (run through ./dev test)\n",
			    name);
		_fail(__FILE__, __LINE__);
	}
	return v;
}

void e2e_skip_without_stack(void)
{
	if (e2e_env("DIALFLOW_TEST_BASE_URL", NULL) == NULL) {
		printf(
		    "1..0 # SKIP DIALFLOW_TEST_BASE_URL is not set (./dev test runs this tier)\n");
		exit(0);
	}
}

double e2e_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void e2e_sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
	}
}

int e2e_global_setup(void **state)
{
	(void)state;
	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			return -1;
		}
		curl_ready = true;
	}
	return 0;
}

int e2e_global_teardown(void **state)
{
	(void)state;
	if (curl_ready) {
		curl_global_cleanup();
		curl_ready = false;
	}
	return 0;
}

/* --- requests ------------------------------------------------------------- */

typedef struct {
	char *data;
	size_t len;
	size_t cap;
} buf_t;

static void buf_append(buf_t *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1) {
			cap *= 2;
		}
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

static void headers_clear(e2e_resp_t *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	r->headers = NULL;
	r->nheaders = 0;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	e2e_resp_t *r = ud;
	size_t len = size * n, l = len;
	const char *colon, *v;

	while (l > 0 && (p[l - 1] == '\r' || p[l - 1] == '\n')) {
		l--;
	}
	if (l >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		/* A new status line: forget the headers of a 100 Continue. */
		headers_clear(r);
		return len;
	}
	colon = memchr(p, ':', l);
	if (colon == NULL) {
		return len;
	}
	v = colon + 1;
	while (v < p + l && (*v == ' ' || *v == '\t')) {
		v++;
	}
	r->headers = xrealloc(r->headers, (r->nheaders + 1) * sizeof(*r->headers));
	r->headers[r->nheaders].name = xstrndup(p, (size_t)(colon - p));
	r->headers[r->nheaders].value = xstrndup(v, (size_t)(p + l - v));
	r->nheaders++;
	return len;
}

const char *e2e_base_url(void)
{
	return e2e_env("DIALFLOW_TEST_BASE_URL", DEFAULT_BASE_URL);
}

void e2e_curl_common(CURL *h)
{
	curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(h, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
	/* HTTP/1.1 as nginx speaks it to most API clients; h2 header limits differ. */
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, E2E_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (e2e_env("DIALFLOW_TEST_CA_FILE", NULL) != NULL) {
		curl_easy_setopt(h, CURLOPT_CAINFO, e2e_env("DIALFLOW_TEST_CA_FILE", NULL));
	}
}

static bool method_has_body(const char *method)
{
	return strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
	       strcmp(method, "PATCH") == 0;
}

e2e_resp_t e2e_req_ex(const e2e_opts_t *opts, const char *method, const char *path,
		      const char *token, const char *content_type, const char *body,
		      size_t body_len, const char *const extra_headers[])
{
	e2e_resp_t r;
	buf_t out = {0};
	struct curl_slist *hdrs = NULL;
	char *url, *auth = NULL, *ctype = NULL, *iface = NULL;
	CURL *h;
	double t0;
	CURLcode rc;

	memset(&r, 0, sizeof(r));
	snprintf(r.what, sizeof(r.what), "%s %.120s%s", method, path,
		 strlen(path) > 120 ? "..." : "");
	if (!curl_ready) {
		e2e_global_setup(NULL);
	}
	h = (opts != NULL && opts->handle != NULL) ? opts->handle : curl_easy_init();
	if (h == NULL) {
		print_error("e2e: curl_easy_init failed\n");
		abort();
	}
	if (opts != NULL && opts->handle != NULL) {
		/* Keeps the handle's live connections, drops the previous options. */
		curl_easy_reset(h);
	}

	url = xasprintf("%s%s", e2e_base_url(), path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	e2e_curl_common(h);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r.curl_error);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
	if (opts != NULL && opts->source_addr != NULL) {
		iface = xasprintf("host!%s", opts->source_addr);
		curl_easy_setopt(h, CURLOPT_INTERFACE, iface);
	}

	if (strcmp(method, "GET") == 0 && body == NULL) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (body != NULL || method_has_body(method)) {
			/* Always a Content-Length, even 0: nginx answers 411 without one. */
			curl_easy_setopt(h, CURLOPT_POST, 1L);
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, body != NULL ? body : "");
		}
		if (strcmp(method, "POST") != 0) {
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
		}
	}

	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", token);
		hdrs = curl_slist_append(hdrs, auth);
	}
	if (content_type != NULL) {
		ctype = xasprintf("Content-Type: %s", content_type);
		hdrs = curl_slist_append(hdrs, ctype);
	} else {
		/* libcurl would add application/x-www-form-urlencoded to a POST. */
		hdrs = curl_slist_append(hdrs, "Content-Type:");
	}
	for (size_t i = 0; extra_headers != NULL && extra_headers[i] != NULL; i++) {
		hdrs = curl_slist_append(hdrs, extra_headers[i]);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);

	t0 = e2e_now_ms();
	rc = curl_easy_perform(h);
	r.elapsed_ms = e2e_now_ms() - t0;
	r.curl_code = (int)rc;
	if (rc == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
	} else {
		r.status = 0;
		if (r.curl_error[0] == '\0') {
			snprintf(r.curl_error, sizeof(r.curl_error), "%s", curl_easy_strerror(rc));
		}
	}
	r.body = out.data != NULL ? out.data : xstrndup("", 0);
	r.body_len = out.len;
	if (r.body_len > 0) {
		r.json = json_loadb(r.body, r.body_len, JSON_REJECT_DUPLICATES, NULL);
	}

	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	if (opts == NULL || opts->handle == NULL) {
		curl_easy_cleanup(h);
	}
	curl_slist_free_all(hdrs);
	free(url);
	free(auth);
	free(ctype);
	free(iface);
	return r;
}

e2e_resp_t e2e_req(const char *method, const char *path, const char *token,
		   const char *content_type, const char *body, size_t body_len,
		   const char *const extra_headers[])
{
	return e2e_req_ex(NULL, method, path, token, content_type, body, body_len, extra_headers);
}

e2e_resp_t e2e_json_req(const char *method, const char *path, const char *token, json_t *body,
			const char *const extra_headers[])
{
	e2e_resp_t r;
	char *text = NULL;

	if (body != NULL) {
		text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text == NULL) {
			print_error("e2e: json_dumps failed\n");
			abort();
		}
	}
	r = e2e_req(method, path, token, body != NULL ? "application/json" : NULL, text,
		    text != NULL ? strlen(text) : 0, extra_headers);
	free(text);
	return r;
}

e2e_resp_t e2e_raw_json(const char *method, const char *path, const char *token, const char *body)
{
	return e2e_req(method, path, token, "application/json", body, strlen(body), NULL);
}

e2e_resp_t e2e_get(const char *path, const char *token, const char *const extra_headers[])
{
	return e2e_req("GET", path, token, NULL, NULL, 0, extra_headers);
}

void e2e_resp_free(e2e_resp_t *r)
{
	headers_clear(r);
	free(r->body);
	r->body = NULL;
	if (r->json != NULL) {
		json_decref(r->json);
		r->json = NULL;
	}
}

const char *e2e_header(const e2e_resp_t *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		if (strcasecmp(r->headers[i].name, name) == 0) {
			return r->headers[i].value;
		}
	}
	return NULL;
}

/* --- JSON access ---------------------------------------------------------- */

json_t *e2e_jget(json_t *root, const char *path)
{
	json_t *cur = root;
	const char *p = path;

	while (cur != NULL && *p != '\0') {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		char key[128];

		if (n >= sizeof(key)) {
			return NULL;
		}
		memcpy(key, p, n);
		key[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, key);
		} else if (json_is_array(cur) && n > 0 && strspn(key, "0123456789") == n) {
			cur = json_array_get(cur, (size_t)strtoul(key, NULL, 10));
		} else {
			return NULL;
		}
		p += n;
		if (*p == '.') {
			p++;
		}
	}
	return cur;
}

const char *e2e_jstr(json_t *root, const char *path)
{
	json_t *v = e2e_jget(root, path);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool e2e_jint(json_t *root, const char *path, json_int_t *out)
{
	json_t *v = e2e_jget(root, path);
	if (!json_is_integer(v)) {
		return false;
	}
	if (out != NULL) {
		*out = json_integer_value(v);
	}
	return true;
}

bool e2e_jarray_has_str(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	if (!json_is_array(arr)) {
		return false;
	}
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0) {
			return true;
		}
	}
	return false;
}

/* --- assertions ----------------------------------------------------------- */

static void dump_resp(const e2e_resp_t *r)
{
	size_t shown = r->body_len < 2000 ? r->body_len : 2000;

	print_error("  request:  %s\n", r->what);
	if (r->status == 0) {
		print_error("  transfer failed: curl %d: %s\n", r->curl_code, r->curl_error);
	}
	print_error("  status:   %ld (%.0f ms)\n", r->status, r->elapsed_ms);
	for (size_t i = 0; i < r->nheaders; i++) {
		print_error("  header:   %s: %.200s\n", r->headers[i].name, r->headers[i].value);
	}
	print_error("  body:     %.*s%s\n", (int)shown, r->body ? r->body : "",
		    shown < r->body_len ? "..." : "");
}

static void fail_resp(const e2e_resp_t *r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static void fail_resp(const e2e_resp_t *r, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprint_error(fmt, ap);
	va_end(ap);
	print_error("\n");
	dump_resp(r);
	_fail(file, line);
	abort(); /* _fail() longjmps out of the test and never returns */
}

void e2e_expect_status_at(const e2e_resp_t *r, long st, const char *file, int line)
{
	if (r->status != st) {
		fail_resp(r, file, line, "expected HTTP %ld, got %ld", st, r->status);
	}
}

static void expect_json_ctype(const e2e_resp_t *r, const char *file, int line)
{
	const char *ct = e2e_header(r, "Content-Type");
	if (ct == NULL || strncasecmp(ct, "application/json", 16) != 0) {
		fail_resp(r, file, line, "expected a JSON Content-Type, got %s",
			  ct ? ct : "(none)");
	}
}

void e2e_expect_error_at(const e2e_resp_t *r, long st, const char *code, const char *file, int line)
{
	const char *c;

	e2e_expect_status_at(r, st, file, line);
	expect_json_ctype(r, file, line);
	if (!json_is_object(r->json) || !json_is_object(json_object_get(r->json, "error"))) {
		fail_resp(r, file, line, "expected a JSON body {\"error\":{...}}");
	}
	c = e2e_jstr(r->json, "error.code");
	if (c == NULL) {
		fail_resp(r, file, line, "error.code is not a string");
	}
	if (code != NULL && strcmp(c, code) != 0) {
		fail_resp(r, file, line, "expected error.code \"%s\", got \"%s\"", code, c);
	}
	if (e2e_jstr(r->json, "error.message") == NULL) {
		fail_resp(r, file, line, "error.message is not a string");
	}
}

void e2e_expect_forbidden_at(const e2e_resp_t *r, const char *reason, const char *file, int line)
{
	const char *got;

	e2e_expect_error_at(r, 403, "forbidden", file, line);
	got = e2e_jstr(r->json, "error.reason");
	if (reason != NULL && (got == NULL || strcmp(got, reason) != 0)) {
		fail_resp(r, file, line, "expected error.reason \"%s\", got \"%s\"", reason,
			  got ? got : "(none)");
	}
}

void e2e_expect_field_error_at(const e2e_resp_t *r, const char *field, const char *file, int line)
{
	json_t *fields, *f;
	size_t i;

	e2e_expect_error_at(r, 400, "invalid_input", file, line);
	fields = e2e_jget(r->json, "error.fields");
	if (!json_is_array(fields)) {
		fail_resp(r, file, line, "error.fields is not an array");
	}
	json_array_foreach(fields, i, f)
	{
		const char *name = e2e_jstr(f, "field");
		if (e2e_jstr(f, "message") == NULL || name == NULL) {
			fail_resp(r, file, line, "error.fields[%zu] lacks field/message strings",
				  i);
		}
		size_t n = strlen(field);

		/* "enabled_pages[1]" or "user.name" also name the field. */
		if (strncmp(name, field, n) == 0 &&
		    (name[n] == '\0' || name[n] == '[' || name[n] == '.')) {
			return;
		}
	}
	fail_resp(r, file, line, "error.fields does not name \"%s\"", field);
}

void e2e_expect_4xx_json_at(const e2e_resp_t *r, const char *file, int line)
{
	if (r->status < 400 || r->status > 499) {
		fail_resp(r, file, line, "expected a 4xx, got %ld", r->status);
	}
	if (!json_is_object(r->json)) {
		fail_resp(r, file, line, "the body of the %ld is not a JSON object", r->status);
	}
	if (e2e_jstr(r->json, "error.code") == NULL) {
		fail_resp(r, file, line, "error.code is not a string");
	}
}

void e2e_expect_json_headers_at(const e2e_resp_t *r, const char *file, int line)
{
	const char *ct = e2e_header(r, "Content-Type");
	const char *cc = e2e_header(r, "Cache-Control");

	if (ct == NULL || strcasecmp(ct, "application/json; charset=utf-8") != 0) {
		fail_resp(r, file, line,
			  "expected Content-Type: application/json; charset=utf-8, got %s",
			  ct ? ct : "(none)");
	}
	if (cc == NULL || strstr(cc, "no-store") == NULL) {
		fail_resp(r, file, line, "expected Cache-Control: no-store, got %s",
			  cc ? cc : "(none)");
	}
}

void e2e_expect_list_at(const e2e_resp_t *r, json_int_t page, json_int_t size, const char *file,
			int line)
{
	json_t *items;
	json_int_t total, p, ps;

	e2e_expect_status_at(r, 200, file, line);
	items = e2e_jget(r->json, "items");
	if (!json_is_array(items) || !e2e_jint(r->json, "total", &total) ||
	    !e2e_jint(r->json, "page", &p) || !e2e_jint(r->json, "page_size", &ps)) {
		fail_resp(r, file, line, "expected {items:[],total,page,page_size}");
	}
	if (total < (json_int_t)json_array_size(items) && p == 1) {
		fail_resp(r, file, line, "total %lld < items on page 1", (long long)total);
	}
	if ((json_int_t)json_array_size(items) > ps) {
		fail_resp(r, file, line, "more items than page_size %lld", (long long)ps);
	}
	if (page >= 0 && p != page) {
		fail_resp(r, file, line, "expected page %lld", (long long)page);
	}
	if (size >= 0 && ps != size) {
		fail_resp(r, file, line, "expected page_size %lld", (long long)size);
	}
}

void e2e_expect_true_at(const e2e_resp_t *r, bool cond, const char *file, int line, const char *fmt,
			...)
{
	va_list ap;

	if (cond) {
		return;
	}
	va_start(ap, fmt);
	vprint_error(fmt, ap);
	va_end(ap);
	print_error("\n");
	dump_resp(r);
	_fail(file, line);
	abort(); /* _fail() longjmps out of the test and never returns */
}

void e2e_expect_jstr_at(const e2e_resp_t *r, const char *path, const char *want, const char *file,
			int line)
{
	const char *got = e2e_jstr(r->json, path);
	if (got == NULL || strcmp(got, want) != 0) {
		fail_resp(r, file, line, "expected %s == \"%s\", got %s%s%s", path, want,
			  got ? "\"" : "", got ? got : "(not a string)", got ? "\"" : "");
	}
}

void e2e_expect_jint_at(const e2e_resp_t *r, const char *path, json_int_t want, const char *file,
			int line)
{
	json_int_t got = 0;
	if (!e2e_jint(r->json, path, &got)) {
		fail_resp(r, file, line, "expected %s == %lld, got no integer", path,
			  (long long)want);
	}
	if (got != want) {
		fail_resp(r, file, line, "expected %s == %lld, got %lld", path, (long long)want,
			  (long long)got);
	}
}

/* --- fixtures ------------------------------------------------------------- */

static unsigned unique_counter;

char *e2e_unique(const char *prefix)
{
	return xasprintf("%s-%ld-%lld-%u", prefix, (long)getpid(), (long long)time(NULL),
			 ++unique_counter);
}

char *e2e_unique_email(const char *prefix)
{
	char *u = e2e_unique(prefix);
	char *e = xasprintf("%s@e2e.example.com", u);
	free(u);
	for (char *p = e; *p; p++) {
		*p = (char)tolower((unsigned char)*p);
	}
	return e;
}

static void cli_describe(const char *const argv[])
{
	print_error("  command: dialflow-admin");
	for (size_t i = 0; argv[i] != NULL; i++) {
		print_error(" %s", argv[i]);
	}
	print_error("\n");
}

char *e2e_cli(const char *const argv[])
{
	const char *bin = e2e_env_required("DIALFLOW_ADMIN_BIN");
	size_t argc = 0;
	const char **args;
	int fds[2], status = 0;
	buf_t out = {0};
	pid_t pid;
	double deadline = e2e_now_ms() + CLI_TIMEOUT_MS;
	bool timed_out = false;

	while (argv[argc] != NULL) {
		argc++;
	}
	args = xmalloc((argc + 2) * sizeof(*args));
	args[0] = bin;
	memcpy(args + 1, argv, (argc + 1) * sizeof(*args));

	if (pipe2(fds, O_CLOEXEC) != 0) {
		print_error("e2e: pipe: %s\n", strerror(errno));
		_fail(__FILE__, __LINE__);
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		print_error("e2e: fork: %s\n", strerror(errno));
		_fail(__FILE__, __LINE__);
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		execv(bin, (char *const *)args);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		char chunk[4096];
		struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
		int left = (int)(deadline - e2e_now_ms());
		ssize_t n;

		if (left <= 0) {
			timed_out = true;
			kill(pid, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, left) <= 0) {
			continue;
		}
		n = read(fds[0], chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n <= 0) {
			break;
		}
		buf_append(&out, chunk, (size_t)n);
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
	}
	free(args);
	if (out.data == NULL) {
		buf_append(&out, "", 0);
	}
	if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("e2e: dialflow-admin %s (status %d)\n",
			    timed_out ? "timed out" : "failed", status);
		cli_describe(argv);
		print_error("  stdout: %s\n", out.data);
		_fail(__FILE__, __LINE__);
	}
	while (out.len > 0 && isspace((unsigned char)out.data[out.len - 1])) {
		out.data[--out.len] = '\0';
	}
	return out.data;
}

json_t *e2e_cli_json(const char *const argv[])
{
	char *text = e2e_cli(argv);
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);

	if (!json_is_object(j)) {
		print_error("e2e: dialflow-admin printed no JSON object: %s\n", err.text);
		cli_describe(argv);
		print_error("  stdout: %s\n", text);
		free(text);
		_fail(__FILE__, __LINE__);
	}
	free(text);
	return j;
}

static int64_t cli_id(json_t *j, const char *const argv[])
{
	json_int_t id = 0;
	if (!e2e_jint(j, "id", &id) || id <= 0) {
		print_error("e2e: dialflow-admin output has no positive \"id\"\n");
		cli_describe(argv);
		_fail(__FILE__, __LINE__);
	}
	return (int64_t)id;
}

int64_t e2e_business_create(const char *prefix, const char *pages_csv, char **name_out)
{
	char *name = e2e_unique(prefix);
	const char *argv[] = {"business", "create", "--name", name, NULL};
	json_t *j = e2e_cli_json(argv);
	int64_t id = cli_id(j, argv);

	json_decref(j);
	if (pages_csv != NULL) {
		e2e_pages_set(id, pages_csv);
	}
	/* tests import and start runs far faster than people do: lift the app's limits
	 * (test_e2e_guards puts them back for its own business to test them) */
	{
		char bid[32];
		snprintf(bid, sizeof(bid), "%lld", (long long)id);
		const char *lim[] = {"limits",
				     "set",
				     "--business",
				     bid,
				     "run_create=10000/60",
				     "lead_import=10000/60",
				     "flow_start=10000/10",
				     "flow_inbound=10000/60",
				     NULL};
		free(e2e_cli(lim));
	}
	if (name_out != NULL) {
		*name_out = name;
	} else {
		free(name);
	}
	return id;
}

void e2e_pages_set(int64_t business_id, const char *pages_csv)
{
	char id[32];
	snprintf(id, sizeof(id), "%lld", (long long)business_id);
	const char *argv[] = {"pages", "set", "--business", id, pages_csv, NULL};
	free(e2e_cli(argv));
}

char *e2e_token_issue(int64_t user_id)
{
	char id[32];
	char *tok;

	snprintf(id, sizeof(id), "%lld", (long long)user_id);
	const char *argv[] = {"token", "issue", "--user", id, NULL};
	tok = e2e_cli(argv);
	if (tok[0] == '\0' || strchr(tok, ' ') != NULL || strchr(tok, '\n') != NULL) {
		print_error("e2e: `token issue` printed no token: %s\n", tok);
		_fail(__FILE__, __LINE__);
	}
	return tok;
}

void e2e_user_create(e2e_user_t *u, int64_t business_id, const char *role)
{
	char prefix[64], biz[32];
	char *email, *name;
	json_t *j;
	json_int_t got_biz = 0;

	memset(u, 0, sizeof(*u));
	snprintf(prefix, sizeof(prefix), "e2e-%s", role);
	email = e2e_unique_email(prefix);
	name = e2e_unique(role);
	snprintf(biz, sizeof(biz), "%lld", (long long)business_id);
	const char *argv[] = {"user",	    "create", "--email", email,	       "--name",
			      name,	    "--role", role,	 "--password", E2E_PASSWORD,
			      "--business", biz,      NULL};
	if (business_id == 0) {
		argv[10] = NULL; /* no --business */
	}
	j = e2e_cli_json(argv);
	u->id = cli_id(j, argv);
	if (business_id != 0 && (!e2e_jint(j, "business_id", &got_biz) || got_biz != business_id)) {
		print_error("e2e: `user create` put the user in business %lld, not %lld\n",
			    (long long)got_biz, (long long)business_id);
		_fail(__FILE__, __LINE__);
	}
	json_decref(j);
	u->business_id = business_id;
	snprintf(u->role, sizeof(u->role), "%s", role);
	snprintf(u->email, sizeof(u->email), "%s", email);
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->password, sizeof(u->password), "%s", E2E_PASSWORD);
	free(email);
	free(name);
	u->token = e2e_token_issue(u->id);
}

void e2e_user_retoken(e2e_user_t *u)
{
	free(u->token);
	u->token = e2e_token_issue(u->id);
}

void e2e_user_free(e2e_user_t *u)
{
	free(u->token);
	u->token = NULL;
}

/* --- the API log ---------------------------------------------------------- */

long long e2e_log_offset(void)
{
	struct stat st;
	if (stat(e2e_env_required("DIALFLOW_TEST_API_LOG"), &st) != 0) {
		return 0;
	}
	return (long long)st.st_size;
}

static bool log_scan(const char *path, long long offset, const char *const needles[])
{
	FILE *f = fopen(path, "r");
	struct stat st;
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	if (f == NULL) {
		return false;
	}
	/* A log that shrank was rotated or truncated: read it all. */
	if (fstat(fileno(f), &st) == 0 && st.st_size < offset) {
		offset = 0;
	}
	if (fseeko(f, (off_t)offset, SEEK_SET) != 0) {
		fclose(f);
		return false;
	}
	while (!found && getline(&line, &cap, f) >= 0) {
		found = true;
		for (size_t i = 0; needles[i] != NULL; i++) {
			if (strstr(line, needles[i]) == NULL) {
				found = false;
				break;
			}
		}
	}
	free(line);
	fclose(f);
	return found;
}

bool e2e_log_wait(long long offset, const char *const needles[], int timeout_ms)
{
	const char *path = e2e_env_required("DIALFLOW_TEST_API_LOG");
	double deadline = e2e_now_ms() + timeout_ms;

	for (;;) {
		if (log_scan(path, offset, needles)) {
			return true;
		}
		if (e2e_now_ms() >= deadline) {
			return false;
		}
		e2e_sleep_ms(50);
	}
}

void e2e_log_expect_at(long long offset, const char *const needles[], const char *file, int line)
{
	if (!e2e_log_wait(offset, needles, LOG_WAIT_MS)) {
		print_error("no line in %s after offset %lld contains all of:\n",
			    e2e_env("DIALFLOW_TEST_API_LOG", "?"), offset);
		for (size_t i = 0; needles[i] != NULL; i++) {
			print_error("  \"%s\"\n", needles[i]);
		}
		_fail(file, line);
	}
}
