/*
 * test_e2e_edge.c - the nginx edge of the stack (nginx/dev.conf.in, the same
 * rules as the production nginx/dialflow.conf), seen from a client:
 *   - plain http is redirected to https (301/308 with a Location);
 *   - TLS 1.0 and 1.1 are refused by the server (its protocol_version alert),
 *     TLS 1.2 and 1.3 are accepted;
 *   - the security headers (HSTS, CSP without inline script, nosniff,
 *     Referrer-Policy, frame-ancestors 'none') are on every answer: a 200, a
 *     404, a 429, a 413 and a 403;
 *   - Cache-Control: no-store (exactly one) on API and webhook answers; the
 *     admin UI's index and modules are revalidated (no-cache), images cached;
 *   - a login burst from one address gets a JSON 429 with Retry-After;
 *   - bodies: 1 MiB + 1 refused on an API route, 1 MiB accepted; a 2 MiB CSV
 *     accepted by the lead import, 10 MiB + 1 refused, 10 MiB not (JSON 413s);
 *   - /metrics answers loopback (127.0.0.1) only; another address gets a JSON 403.
 * Sources other than 127.0.0.1 (127.0.0.0/8 is all loopback on Linux) keep the
 * burst and the deny rule away from the other tests' rate-limit buckets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "e2e.h"

#define MIB	       (1024 * 1024)
#define BURST_SOURCE   "127.0.0.6"
#define METRICS_DENIED "127.0.0.7"
#define BURST_REQUESTS 400
#define CSP_NEEDLE     "script-src 'self'"

static int64_t biz;
static e2e_user_t owner;

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0)
		return -1;
	biz = e2e_business_create("e2e-edge", "calls_outbound,settings", NULL);
	e2e_user_create(&owner, biz, "owner");
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&owner);
	return e2e_global_teardown(state);
}

static size_t count_headers(const e2e_resp_t *r, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			n++;
	return n;
}

/* The security headers every answer carries. */
#define SECURITY_HEADERS(r) security_headers_at(&(r), __FILE__, __LINE__)
static void security_headers_at(const e2e_resp_t *r, const char *file, int line)
{
	const char *hsts = e2e_header(r, "Strict-Transport-Security");
	const char *csp = e2e_header(r, "Content-Security-Policy");
	const char *xcto = e2e_header(r, "X-Content-Type-Options");
	const char *refp = e2e_header(r, "Referrer-Policy");

	e2e_expect_true_at(r, hsts != NULL && strstr(hsts, "max-age=") != NULL, file, line,
			   "no Strict-Transport-Security max-age");
	e2e_expect_true_at(r, csp != NULL, file, line, "no Content-Security-Policy");
	e2e_expect_true_at(r, strstr(csp, "frame-ancestors 'none'") != NULL, file, line,
			   "CSP without frame-ancestors 'none': %s", csp);
	e2e_expect_true_at(r, strstr(csp, CSP_NEEDLE) != NULL, file, line, "CSP without %s: %s",
			   CSP_NEEDLE, csp);
	e2e_expect_true_at(r, strstr(csp, "unsafe-inline") == NULL, file, line,
			   "CSP allows inline code: %s", csp);
	e2e_expect_true_at(r, xcto != NULL && strcasecmp(xcto, "nosniff") == 0, file, line,
			   "X-Content-Type-Options is %s", xcto ? xcto : "(none)");
	e2e_expect_true_at(r, refp != NULL && refp[0] != '\0', file, line, "no Referrer-Policy");
	e2e_expect_true_at(r, count_headers(r, "Content-Security-Policy") == 1, file, line,
			   "Content-Security-Policy sent %zu times",
			   count_headers(r, "Content-Security-Policy"));
}

/* Exactly one Cache-Control, equal to `want`. */
#define CACHE_CONTROL(r, want) cache_control_at(&(r), (want), __FILE__, __LINE__)
static void cache_control_at(const e2e_resp_t *r, const char *want, const char *file, int line)
{
	const char *cc = e2e_header(r, "Cache-Control");

	e2e_expect_true_at(r, count_headers(r, "Cache-Control") == 1, file, line,
			   "Cache-Control sent %zu times", count_headers(r, "Cache-Control"));
	e2e_expect_true_at(r, cc != NULL && strcmp(cc, want) == 0, file, line,
			   "Cache-Control is %s, expected %s", cc ? cc : "(none)", want);
}

/* --- http -> https ---------------------------------------------------------- */

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* The https port of the base URL (https://host:PORT). */
static long https_port(void)
{
	const char *base = e2e_base_url();
	const char *colon = strrchr(base, ':');
	long port = colon ? strtol(colon + 1, NULL, 10) : 0;

	return port > 0 ? port : 443;
}

static void test_http_redirects_to_https(void **state)
{
	(void)state;
	char url[256], want[256], defurl[64];
	const char *http;
	CURL *h = curl_easy_init();
	long status = 0;
	char *location = NULL;
	struct curl_slist *hdrs;
	CURLcode rc;

	/* The stack's plain http listener is the https port - 1 (tests/harness/stack.sh). */
	snprintf(defurl, sizeof(defurl), "http://127.0.0.1:%ld", https_port() - 1);
	http = e2e_env("DIALFLOW_TEST_HTTP_URL", defurl);
	snprintf(url, sizeof(url), "%s/api/health?probe=1", http);
	snprintf(want, sizeof(want), "https://localhost:%ld/api/health?probe=1", https_port());
	assert_non_null(h);
	e2e_curl_common(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	/* A Host header as a browser sends it for http://localhost:port. */
	hdrs = curl_slist_append(NULL, "Host: localhost");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		fail_msg("GET %s: %s", url, curl_easy_strerror(rc));
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &location);
	if (status != 301 && status != 308)
		fail_msg("GET %s: status %ld, expected 301 or 308", url, status);
	if (location == NULL || strcmp(location, want) != 0)
		fail_msg("GET %s: Location %s, expected %s", url, location ? location : "(none)",
			 want);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
}

/* --- TLS versions ------------------------------------------------------------- */

/* One handshake with TLS versions [min, max]; returns the curl code, errbuf filled. */
static CURLcode tls_try(long version, char *errbuf, long *status)
{
	char url[512];
	CURL *h = curl_easy_init();
	CURLcode rc;

	assert_non_null(h);
	snprintf(url, sizeof(url), "%s/api/health", e2e_base_url());
	e2e_curl_common(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, version);
	/* Debian's OpenSSL refuses TLS < 1.2 client-side at SECLEVEL 2: lower it, so
	 * that a refusal observed here is the server's. */
	curl_easy_setopt(h, CURLOPT_SSL_CIPHER_LIST, "DEFAULT@SECLEVEL=0");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
	errbuf[0] = '\0';
	rc = curl_easy_perform(h);
	*status = 0;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	return rc;
}

static void test_tls_old_versions_refused(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		long version;
	} old[] = {
	    {"TLS 1.0", CURL_SSLVERSION_TLSv1_0 | CURL_SSLVERSION_MAX_TLSv1_0},
	    {"TLS 1.1", CURL_SSLVERSION_TLSv1_1 | CURL_SSLVERSION_MAX_TLSv1_1},
	};
	static const struct {
		const char *name;
		long version;
	} ok[] = {
	    {"TLS 1.2", CURL_SSLVERSION_TLSv1_2 | CURL_SSLVERSION_MAX_TLSv1_2},
	    {"TLS 1.3", CURL_SSLVERSION_TLSv1_3 | CURL_SSLVERSION_MAX_TLSv1_3},
	};
	char err[CURL_ERROR_SIZE];
	long status;
	CURLcode rc;

	for (size_t i = 0; i < sizeof(old) / sizeof(old[0]); i++) {
		rc = tls_try(old[i].version, err, &status);
		if (rc == CURLE_OK)
			fail_msg("%s handshake accepted (status %ld)", old[i].name, status);
		/* The server's alert 70 (protocol_version), not a client-side refusal. */
		if (strstr(err, "protocol version") == NULL)
			fail_msg(
			    "%s refused, but not by the server's protocol_version alert: %s (%s)",
			    old[i].name, err, curl_easy_strerror(rc));
	}
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		rc = tls_try(ok[i].version, err, &status);
		if (rc != CURLE_OK || status != 200)
			fail_msg("%s: %s %s (status %ld)", ok[i].name, curl_easy_strerror(rc), err,
				 status);
	}
}

/* --- headers and cache policy ----------------------------------------------- */

static void test_headers_and_cache_policy(void **state)
{
	(void)state;
	e2e_resp_t r;

	/* an API 200 */
	r = e2e_get("/api/health", NULL, NULL);
	E2E_STATUS(r, 200);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* an authenticated API 200 */
	r = e2e_get("/api/me", owner.token, NULL);
	E2E_STATUS(r, 200);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* an API 404 (the app's JSON) */
	r = e2e_get("/api/no-such-route", NULL, NULL);
	E2E_ERROR(r, 404, NULL);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* a webhook answer (unsigned: refused by the app) */
	r = e2e_req("POST", "/webhooks/twilio/call-status", NULL,
		    "application/x-www-form-urlencoded", "CallSid=x", 9, NULL);
	E2E_TRUE(r, r.status >= 400 && r.status < 500, "unsigned webhook: status %ld", r.status);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* the admin UI: revalidated on every load, with validators for a 304 */
	r = e2e_get("/", NULL, NULL);
	E2E_STATUS(r, 200);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-cache");
	E2E_TRUE(r, e2e_header(&r, "ETag") != NULL, "index.html without an ETag");
	E2E_TRUE(r, strstr(r.body, "<script type=\"module\" src=") != NULL,
		 "index.html does not load its code as a module file");
	e2e_resp_free(&r);

	r = e2e_get("/app.js", NULL, NULL);
	E2E_STATUS(r, 200);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-cache");
	e2e_resp_free(&r);

	r = e2e_get("/favicon.svg", NULL, NULL);
	E2E_STATUS(r, 200);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "public, max-age=604800");
	e2e_resp_free(&r);

	/* a static 404 */
	r = e2e_get("/no-such-file.html", NULL, NULL);
	E2E_STATUS(r, 404);
	SECURITY_HEADERS(r);
	e2e_resp_free(&r);
}

/* --- rate limit --------------------------------------------------------------- */

static void test_login_burst_gets_json_429(void **state)
{
	(void)state;
	e2e_opts_t o = {.source_addr = BURST_SOURCE};
	e2e_resp_t r = {0};
	int n;

	/* GET on the login route is answered at once (405) by the app, so the
	 * burst outruns the zone's refill even under ASan. */
	for (n = 0; n < BURST_REQUESTS; n++) {
		r = e2e_req_ex(&o, "GET", "/api/auth/login", NULL, NULL, NULL, 0, NULL);
		if (r.status == 429)
			break;
		E2E_TRUE(r, r.status == 405, "login burst request %d: status %ld", n, r.status);
		e2e_resp_free(&r);
	}
	if (n == BURST_REQUESTS)
		fail_msg("%d requests to /api/auth/login from %s and not one 429", BURST_REQUESTS,
			 BURST_SOURCE);
	E2E_ERROR(r, 429, "rate_limited");
	E2E_TRUE(r, e2e_header(&r, "Retry-After") != NULL, "a 429 without Retry-After");
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* the limit is per address: 127.0.0.1 still logs in */
	r = e2e_get("/api/health", NULL, NULL);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
}

/* --- body limits ---------------------------------------------------------------- */

static char *filled(size_t len, char c)
{
	char *b = malloc(len + 1);

	assert_non_null(b);
	memset(b, c, len);
	b[len] = '\0';
	return b;
}

static void test_api_body_limit(void **state)
{
	(void)state;
	char *body = filled(MIB + 1, ' ');
	e2e_resp_t r;

	body[0] = '{';
	body[MIB] = '}';
	r = e2e_req("POST", "/api/users", owner.token, "application/json", body, MIB + 1, NULL);
	E2E_ERROR(r, 413, "payload_too_large");
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* exactly 1 MiB passes the edge (the app then judges the JSON) */
	body[MIB - 1] = '}';
	r = e2e_req("POST", "/api/users", owner.token, "application/json", body, MIB, NULL);
	E2E_TRUE(r, r.status != 413 && r.status >= 400 && r.status < 500,
		 "a 1 MiB body: status %ld", r.status);
	e2e_resp_free(&r);
	free(body);
}

/* A CSV of leads: header, then rows "+1555XXXNNNN,Lead N,<notes>" up to >= size bytes. */
static char *leads_csv(size_t size, size_t notes_len, size_t *len_out, int *rows_out)
{
	size_t cap = size + 4096, len = 0;
	char *csv = malloc(cap);
	char *notes = filled(notes_len, 'n');
	int exch = 200 + (int)(biz % 800), n = 0;

	assert_non_null(csv);
	len += (size_t)snprintf(csv, cap, "phone,name,notes\n");
	while (len < size) {
		len += (size_t)snprintf(csv + len, cap - len, "+1555%03d%04d,Lead %d,%s\n", exch, n,
					n, notes);
		n++;
	}
	free(notes);
	*len_out = len;
	*rows_out = n;
	return csv;
}

static void test_import_body_limit(void **state)
{
	(void)state;
	size_t len;
	int rows;
	char *csv;
	char *big;
	e2e_resp_t r;
	json_int_t imported = 0;

	/* 2 MiB: over the API's 1 MiB, under the import's 10 MiB, accepted */
	csv = leads_csv(2 * MIB, 1900, &len, &rows);
	r = e2e_req("POST", "/api/leads/import?list_name=edge", owner.token, "text/csv", csv, len,
		    NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, e2e_jint(r.json, "imported", &imported) && imported == rows,
		 "imported %lld of %d rows", (long long)imported, rows);
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);
	free(csv);

	/* 10 MiB + 1: refused with a JSON 413 before the app reads it */
	big = filled(10 * MIB + 1, 'x');
	memcpy(big, "phone\n", 6);
	r = e2e_req("POST", "/api/leads/import", owner.token, "text/csv", big, 10 * MIB + 1, NULL);
	E2E_ERROR(r, 413, "payload_too_large");
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* exactly 10 MiB passes nginx and the app's own limit (then fails as a CSV) */
	r = e2e_req("POST", "/api/leads/import", owner.token, "text/csv", big, 10 * MIB, NULL);
	E2E_TRUE(r, r.status != 413 && r.status >= 400 && r.status < 500,
		 "a 10 MiB CSV: status %ld", r.status);
	e2e_resp_free(&r);
	free(big);
}

/* --- /metrics --------------------------------------------------------------------- */

static void test_metrics_loopback_only(void **state)
{
	(void)state;
	e2e_opts_t o = {.source_addr = METRICS_DENIED};
	e2e_resp_t r;

	r = e2e_req_ex(&o, "GET", "/metrics", NULL, NULL, NULL, 0, NULL);
	E2E_ERROR(r, 403, "forbidden");
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);

	/* 127.0.0.1 reaches the API's GET /metrics: Prometheus text, requests counted by
	 * route across the stack's API processes, and the database's gauges */
	r = e2e_get("/metrics", NULL, NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, strstr(r.body, "# TYPE dialflow_http_requests_total counter") != NULL,
		 "no request counter in /metrics");
	E2E_TRUE(r, strstr(r.body, "route=\"/api/health\"") != NULL, "/api/health not counted");
	E2E_TRUE(r, strstr(r.body, "dialflow_db_up 1") != NULL, "dialflow_db_up is not 1");
	E2E_TRUE(r, strstr(r.body, "dialflow_workers_alive") != NULL, "no worker gauge");
	SECURITY_HEADERS(r);
	CACHE_CONTROL(r, "no-store");
	e2e_resp_free(&r);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_redirects_to_https),
	    cmocka_unit_test(test_tls_old_versions_refused),
	    cmocka_unit_test(test_headers_and_cache_policy),
	    cmocka_unit_test(test_login_burst_gets_json_429),
	    cmocka_unit_test(test_api_body_limit),
	    cmocka_unit_test(test_import_body_limit),
	    cmocka_unit_test(test_metrics_loopback_only),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
