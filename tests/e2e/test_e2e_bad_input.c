/*
 * test_e2e_bad_input.c - the bad-input tier. Every JSON route of the
 * foundation gets malformed JSON, duplicate keys, wrong types, huge and
 * negative numbers, invalid UTF-8 and NUL, SQL metacharacters in fields and
 * path segments, oversized bodies, foreign content types and abusive headers.
 * Each answer must be a 4xx JSON error (never a 5xx, never a hang); then the
 * API must still be healthy and hostile strings must round-trip byte-exact.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define MIB	 (1024 * 1024)
#define SQL_DROP "'; DROP TABLE users; --"
#define SQL_OR	 "1' OR '1'='1"
/* Marks the e-mail field whose valid value is a fresh unique address per request. */
#define FRESH_EMAIL "@fresh-email@"

typedef enum { FT_STR, FT_INT, FT_BOOL, FT_STRS } ftype_t;

typedef struct {
	const char *key;
	ftype_t type;
	const char *valid; /* raw JSON text of a valid value */
} field_t;

typedef struct {
	const char *name;
	const char *method;
	char path[128];
	char **token; /* the caller's token, set up at run time */
	field_t fields[4];
	size_t nfields;
	long ok_status; /* the answer to the valid body */
} target_t;

static int64_t biz;
static e2e_user_t sysadmin, owner, victim;
static char *login_email_raw;
static target_t targets[5];
#define NTARGETS (sizeof(targets) / sizeof(targets[0]))

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz = e2e_business_create("e2e-bad-input", "calls_outbound,whatsapp_flows,settings", NULL);
	e2e_user_create(&sysadmin, 0, "system_admin");
	e2e_user_create(&owner, biz, "owner");
	e2e_user_create(&victim, biz, "agent");
	if (asprintf(&login_email_raw, "\"%s\"", owner.email) < 0) {
		return -1;
	}

	targets[0] = (target_t){.name = "login",
				.method = "POST",
				.path = "/api/auth/login",
				.token = NULL,
				.fields = {{"email", FT_STR, login_email_raw},
					   {"password", FT_STR, "\"" E2E_PASSWORD "\""}},
				.nfields = 2,
				.ok_status = 200};
	targets[1] = (target_t){.name = "create business",
				.method = "POST",
				.path = "/api/admin/businesses",
				.token = &sysadmin.token,
				.fields = {{"name", FT_STR, "\"e2e bad-input business\""},
					   {"timezone", FT_STR, "\"UTC\""},
					   {"default_country", FT_STR, "\"US\""},
					   {"max_concurrent_calls", FT_INT, "3"}},
				.nfields = 4,
				.ok_status = 201};
	targets[2] = (target_t){.name = "create user",
				.method = "POST",
				.path = "/api/users",
				.token = &owner.token,
				.fields = {{"email", FT_STR, FRESH_EMAIL},
					   {"name", FT_STR, "\"E2E Bad Input\""},
					   {"password", FT_STR, "\"" E2E_PASSWORD "\""},
					   {"role", FT_STR, "\"agent\""}},
				.nfields = 4,
				.ok_status = 201};
	targets[3] =
	    (target_t){.name = "patch user",
		       .method = "PATCH",
		       .token = &owner.token,
		       .fields = {{"role", FT_STR, "\"agent\""}, {"is_active", FT_BOOL, "true"}},
		       .nfields = 2,
		       .ok_status = 200};
	snprintf(targets[3].path, sizeof(targets[3].path), "/api/users/%lld", (long long)victim.id);
	targets[4] =
	    (target_t){.name = "set pages",
		       .method = "PATCH",
		       .token = &sysadmin.token,
		       .fields = {{"enabled_pages", FT_STRS,
				   "[\"calls_outbound\",\"whatsapp_flows\",\"settings\"]"}},
		       .nfields = 1,
		       .ok_status = 200};
	snprintf(targets[4].path, sizeof(targets[4].path), "/api/admin/businesses/%lld/pages",
		 (long long)biz);
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&sysadmin);
	e2e_user_free(&owner);
	e2e_user_free(&victim);
	free(login_email_raw);
	return e2e_global_teardown(state);
}

/* --- building and sending bodies ------------------------------------------ */

typedef struct {
	char *s;
	size_t len, cap;
} sb_t;

static void sb_add(sb_t *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(sb_t *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void add_value(sb_t *b, const char *raw)
{
	if (strcmp(raw, FRESH_EMAIL) == 0) {
		char *e = e2e_unique_email("e2e-bad");
		sb_str(b, "\"");
		sb_str(b, e);
		sb_str(b, "\"");
		free(e);
	} else {
		sb_str(b, raw);
	}
}

/*
 * The valid body of target t with field `idx` replaced by the raw JSON text
 * `raw` (idx -1: unchanged). dup: the field appears a second time.
 */
static char *build_body(const target_t *t, int idx, const char *raw, bool dup)
{
	sb_t b = {0};

	sb_str(&b, "{");
	for (size_t i = 0; i < t->nfields; i++) {
		if (i > 0) {
			sb_str(&b, ",");
		}
		sb_str(&b, "\"");
		sb_str(&b, t->fields[i].key);
		sb_str(&b, "\":");
		add_value(&b, ((int)i == idx && raw != NULL) ? raw : t->fields[i].valid);
		if ((int)i == idx && dup) {
			sb_str(&b, ",\"");
			sb_str(&b, t->fields[i].key);
			sb_str(&b, "\":");
			add_value(&b, t->fields[i].valid);
		}
	}
	sb_str(&b, "}");
	return b.s;
}

/*
 * The barrage is not a rate-limit test, but it sends over a hundred bodies to
 * /api/auth/login, whose per-client nginx limit is strict. Spreading those over
 * a few loopback source addresses keeps each client under its burst, so every
 * answer is the API's verdict on the input rather than a 429.
 */
static const char *auth_source_addr(void)
{
	static const char *const addrs[] = {"127.0.0.20", "127.0.0.21", "127.0.0.22", "127.0.0.23",
					    "127.0.0.24", "127.0.0.25", "127.0.0.26", "127.0.0.27"};
	static unsigned next;

	return addrs[next++ % (sizeof(addrs) / sizeof(addrs[0]))];
}

static e2e_resp_t send_raw(const target_t *t, const char *ctype, const char *body, size_t len)
{
	e2e_opts_t o = {0};

	if (strncmp(t->path, "/api/auth/", 10) == 0) {
		o.source_addr = auth_source_addr();
	}
	return e2e_req_ex(&o, t->method, t->path, t->token ? *t->token : NULL, ctype, body, len,
			  NULL);
}

/* Append what was sent to r->what, so a failure names the case. */
static void label(e2e_resp_t *r, const char *body, size_t len)
{
	size_t used = strlen(r->what);
	snprintf(r->what + used, sizeof(r->what) - used, "  body(%zu): %.*s", len,
		 (int)(len < 120 ? len : 120), body);
}

static e2e_resp_t send_body(const target_t *t, const char *body)
{
	e2e_resp_t r = send_raw(t, "application/json", body, strlen(body));
	label(&r, body, strlen(body));
	return r;
}

static void expect_400(const e2e_resp_t *r)
{
	E2E_4XX_JSON(*r);
	E2E_STATUS(*r, 400);
}

/* Not a 5xx, and JSON; a 4xx carries an error code. */
static void expect_handled(const e2e_resp_t *r)
{
	E2E_TRUE(*r, r->status >= 200 && r->status < 500, "expected no 5xx, got %ld", r->status);
	E2E_TRUE(*r, json_is_object(r->json), "the body is not a JSON object");
	if (r->status >= 400) {
		E2E_4XX_JSON(*r);
	}
}

static void expect_alive(void)
{
	e2e_resp_t h = e2e_get("/api/health", NULL, NULL);
	E2E_STATUS(h, 200);
	E2E_JSTR_EQ(h, "status", "ok");
	e2e_resp_free(&h);
}

/* --- tests ---------------------------------------------------------------- */

static void test_valid_bodies_pass(void **state)
{
	(void)state;
	/* The control: each target's valid body, with a charset parameter, is accepted. */
	for (size_t t = 0; t < NTARGETS; t++) {
		char *body = build_body(&targets[t], -1, NULL, false);
		e2e_resp_t r =
		    send_raw(&targets[t], "application/json; charset=utf-8", body, strlen(body));
		label(&r, body, strlen(body));
		E2E_STATUS(r, targets[t].ok_status);
		e2e_resp_free(&r);
		free(body);
	}
}

static void test_malformed_json(void **state)
{
	(void)state;
	static const char *const not_json[] = {
	    "{",	  "}",		"{\"a\":",     "{\"a\":1,}",	     "{'a':1}",
	    "{a:1}",	  "[1,2",	"nul",	       "{\"a\":1}{\"b\":2}", "{\"a\":tru}",
	    "{\"a\":01}", "{\"a\":.5}", "{\"a\":\"x}", "\xef\xbb\xbf{}",     NULL};
	static const char *const not_object[] = {"[]",	 "\"str\"", "123", "null",
						 "true", "[{}]",    NULL};

	for (size_t t = 0; t < NTARGETS; t++) {
		char *valid = build_body(&targets[t], -1, NULL, false);
		size_t n = strlen(valid);
		char *truncated = strndup(valid, n - 5);
		char *trailing = NULL;
		e2e_resp_t r;

		assert_true(asprintf(&trailing, "%s garbage", valid) > 0);
		const char *cases[] = {truncated, trailing};
		for (size_t i = 0; i < 2; i++) {
			r = send_body(&targets[t], cases[i]);
			E2E_ERROR(r, 400, "invalid_json");
			e2e_resp_free(&r);
		}
		for (size_t i = 0; not_json[i] != NULL; i++) {
			r = send_body(&targets[t], not_json[i]);
			E2E_ERROR(r, 400, "invalid_json");
			e2e_resp_free(&r);
		}
		/* Valid JSON, but not an object: 400, invalid_json or invalid_input. */
		for (size_t i = 0; not_object[i] != NULL; i++) {
			r = send_body(&targets[t], not_object[i]);
			expect_400(&r);
			e2e_resp_free(&r);
		}
		/* An empty body with a JSON content type. */
		r = send_body(&targets[t], "");
		expect_400(&r);
		e2e_resp_free(&r);
		r = send_body(&targets[t], "   \n");
		expect_400(&r);
		e2e_resp_free(&r);
		free(valid);
		free(truncated);
		free(trailing);
	}
}

static void test_duplicate_keys(void **state)
{
	(void)state;
	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t f = 0; f < targets[t].nfields; f++) {
			/* The same value twice is still ambiguous input. */
			char *body = build_body(&targets[t], (int)f, NULL, true);
			e2e_resp_t r = send_body(&targets[t], body);
			expect_400(&r);
			e2e_resp_free(&r);
			free(body);
		}
	}
	/* The brief's own example, on login. */
	e2e_resp_t r =
	    send_body(&targets[0], "{\"email\":\"a\",\"email\":\"b\",\"password\":\"c\"}");
	expect_400(&r);
	e2e_resp_free(&r);
}

static void test_wrong_types(void **state)
{
	(void)state;
	static const char *const for_str[] = {"123", "1.5",  "true",	"false",	 "[]",
					      "{}",  "null", "[\"x\"]", "{\"x\":\"y\"}", NULL};
	static const char *const for_int[] = {"\"3\"", "true", "1.5", "3.0", "[]",
					      "{}",    "null", "[3]", NULL};
	static const char *const for_bool[] = {"\"true\"", "1",	 "0",	    "null",
					       "[]",	   "{}", "\"yes\"", NULL};
	static const char *const for_strs[] = {"\"calls_outbound\"",
					       "123",
					       "null",
					       "{}",
					       "[1]",
					       "[null]",
					       "[[\"calls_outbound\"]]",
					       "[true]",
					       "[{\"key\":\"settings\"}]",
					       NULL};

	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t f = 0; f < targets[t].nfields; f++) {
			const field_t *fd = &targets[t].fields[f];
			const char *const *vals = fd->type == FT_STR	? for_str
						  : fd->type == FT_INT	? for_int
						  : fd->type == FT_BOOL ? for_bool
									: for_strs;
			for (size_t v = 0; vals[v] != NULL; v++) {
				char *body = build_body(&targets[t], (int)f, vals[v], false);
				e2e_resp_t r = send_body(&targets[t], body);
				E2E_FIELD_ERROR(r, fd->key);
				e2e_resp_free(&r);
				free(body);
			}
		}
	}
}

static void test_huge_and_negative_numbers(void **state)
{
	(void)state;
	static const char *const huge[] = {
	    "1e400",
	    "-1e400",
	    "99999999999999999999",
	    "-99999999999999999999",
	    "1e308",
	    "-1",
	    "-9223372036854775808",
	    "9223372036854775807",
	    "123456789012345678901234567890123456789012345678901234567890",
	    NULL};

	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t f = 0; f < targets[t].nfields; f++) {
			for (size_t v = 0; huge[v] != NULL; v++) {
				char *body = build_body(&targets[t], (int)f, huge[v], false);
				e2e_resp_t r = send_body(&targets[t], body);
				expect_400(&r);
				e2e_resp_free(&r);
				free(body);
			}
		}
	}
	/* Out of range for the one integer field, with a field error. */
	static const char *const out_of_range[] = {"-1", "0", "-9223372036854775808", NULL};
	for (size_t v = 0; out_of_range[v] != NULL; v++) {
		char *body = build_body(&targets[1], 3, out_of_range[v], false);
		e2e_resp_t r = send_body(&targets[1], body);
		E2E_FIELD_ERROR(r, "max_concurrent_calls");
		e2e_resp_free(&r);
		free(body);
	}
}

static void test_invalid_utf8_and_nul(void **state)
{
	(void)state;
	/* Raw bytes (careful: a hex escape in C eats every hex digit after it). */
	static const char *const bad[] = {"\"\xff\xfe\"",     /* never valid in UTF-8          */
					  "\"x\xc0\xaf\"",    /* overlong "/"                  */
					  "\"\xe0\x80\xaf\"", /* overlong, 3 bytes             */
					  "\"\xed\xa0\x80\"", /* an encoded surrogate (CESU)   */
					  "\"\xf4\x90\x80\x80\"", /* beyond U+10FFFF */
					  "\"x\xc3\"",	   /* truncated sequence            */
					  "\"\\ud800\"",   /* lone high surrogate escape    */
					  "\"\\udc00x\"",  /* lone low surrogate escape     */
					  "\"a\\u0000b\"", /* NUL escape                    */
					  "\"\\u0000\"",
					  NULL};

	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t f = 0; f < targets[t].nfields; f++) {
			const field_t *fd = &targets[t].fields[f];
			if (fd->type != FT_STR && fd->type != FT_STRS) {
				continue;
			}
			for (size_t v = 0; bad[v] != NULL; v++) {
				char *raw = NULL;
				char *body;
				e2e_resp_t r;

				if (fd->type == FT_STRS) {
					assert_true(asprintf(&raw, "[%s]", bad[v]) > 0);
				}
				body = build_body(&targets[t], (int)f, raw ? raw : bad[v], false);
				r = send_body(&targets[t], body);
				expect_400(&r);
				e2e_resp_free(&r);
				free(body);
				free(raw);
			}
		}
		/* In a key, too. */
		e2e_resp_t r = send_body(&targets[t], "{\"\xff\xfe\":1}");
		expect_400(&r);
		e2e_resp_free(&r);
		r = send_body(&targets[t], "{\"a\\u0000\":1}");
		expect_400(&r);
		e2e_resp_free(&r);
	}
}

static void test_sql_metacharacters_in_fields(void **state)
{
	(void)state;
	static const char *const sql[] = {"\"" SQL_DROP "\"",
					  "\"" SQL_OR "\"",
					  "\"\\\"; DROP TABLE businesses; --\"",
					  "\"%' OR 1=1 --\"",
					  "\"\\\\'; SELECT pg_sleep(30); --\"",
					  "\"x'||(SELECT current_user)||'\"",
					  "\"$1\"",
					  NULL};
	double t0 = e2e_now_ms();

	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t f = 0; f < targets[t].nfields; f++) {
			const field_t *fd = &targets[t].fields[f];
			if (fd->type != FT_STR && fd->type != FT_STRS) {
				continue;
			}
			for (size_t v = 0; sql[v] != NULL; v++) {
				char *raw = NULL;
				char *body;
				e2e_resp_t r;

				if (fd->type == FT_STRS) {
					assert_true(asprintf(&raw, "[%s]", sql[v]) > 0);
				}
				body = build_body(&targets[t], (int)f, raw ? raw : sql[v], false);
				r = send_body(&targets[t], body);
				/* Some are valid data (a name, a password): those may succeed. */
				expect_handled(&r);
				if (fd->type == FT_STRS || strcmp(fd->key, "role") == 0 ||
				    strcmp(fd->key, "timezone") == 0 ||
				    strcmp(fd->key, "default_country") == 0 ||
				    (strcmp(fd->key, "email") == 0 && t != 0)) {
					E2E_FIELD_ERROR(r, fd->key);
				}
				e2e_resp_free(&r);
				free(body);
				free(raw);
			}
		}
	}
	/* pg_sleep(30) never ran: the whole barrage took far less. */
	assert_true(e2e_now_ms() - t0 < 30000);
	expect_alive();
}

static void test_sql_metacharacters_in_paths(void **state)
{
	(void)state;
	char *long_digits = malloc(4097), *long_alpha = malloc(4097);
	char body_user[] = "{\"role\":\"agent\"}";
	char body_pages[] = "{\"enabled_pages\":[\"calls_outbound\"]}";
	char path[4300];

	assert_non_null(long_digits);
	assert_non_null(long_alpha);
	memset(long_digits, '9', 4096);
	long_digits[4096] = '\0';
	memset(long_alpha, 'a', 4096);
	long_alpha[4096] = '\0';
	const char *segs[] = {"1'OR'1'='1",
			      "1%27%20OR%20%271%27=%271",
			      "-1",
			      "0",
			      "99999999999999999999",
			      "9223372036854775808",
			      "-9223372036854775809",
			      "1.5",
			      "1e3",
			      "0x10",
			      "+1",
			      "%27",
			      "1;DROP%20TABLE%20users",
			      "1%00",
			      "%2e%2e",
			      "%ff%fe",
			      "$1",
			      long_digits,
			      long_alpha,
			      NULL};

	for (size_t i = 0; segs[i] != NULL; i++) {
		e2e_resp_t r;

		snprintf(path, sizeof(path), "/api/users/%s", segs[i]);
		r = e2e_raw_json("PATCH", path, owner.token, body_user);
		E2E_4XX_JSON(r);
		E2E_TRUE(r, r.status == 400 || r.status == 404, "expected 400 or 404");
		e2e_resp_free(&r);

		snprintf(path, sizeof(path), "/api/admin/businesses/%s/pages", segs[i]);
		r = e2e_raw_json("PATCH", path, sysadmin.token, body_pages);
		E2E_4XX_JSON(r);
		E2E_TRUE(r, r.status == 400 || r.status == 404, "expected 400 or 404");
		e2e_resp_free(&r);
	}

	/* And in query parameters. */
	static const char *const queries[] = {
	    "/api/users?page=1'OR'1'='1", "/api/users?page_size=1%27%20OR%201=1",
	    "/api/users?page=-1",	  "/api/users?page=99999999999999999999",
	    "/api/users?page_size=1e2",	  NULL};
	for (size_t i = 0; queries[i] != NULL; i++) {
		e2e_resp_t r = e2e_get(queries[i], owner.token, NULL);
		expect_400(&r);
		e2e_resp_free(&r);
	}
	static const char *const audit_queries[] = {"/api/admin/audit?actor_id=1'OR'1'='1",
						    "/api/admin/audit?resource_id=-1%27",
						    "/api/admin/audit?from=yesterday'--", NULL};
	for (size_t i = 0; audit_queries[i] != NULL; i++) {
		e2e_resp_t r = e2e_get(audit_queries[i], sysadmin.token, NULL);
		expect_handled(&r);
		e2e_resp_free(&r);
	}
	free(long_digits);
	free(long_alpha);
	expect_alive();
}

static char *sized_body(const char *key, size_t total)
{
	char *b = malloc(total + 1);
	int pre;

	assert_non_null(b);
	pre = snprintf(b, total + 1, "{\"%s\":\"", key);
	assert_true(pre > 0 && (size_t)pre + 2 <= total);
	memset(b + pre, 'A', total - (size_t)pre - 2);
	memcpy(b + total - 2, "\"}", 2);
	b[total] = '\0';
	return b;
}

static void test_oversized_bodies(void **state)
{
	(void)state;
	static const size_t sizes[] = {MIB + 1, 3 * MIB};

	for (size_t t = 0; t < NTARGETS; t++) {
		for (size_t s = 0; s < 2; s++) {
			char *body = sized_body(targets[t].fields[0].key, sizes[s]);
			e2e_resp_t r = send_raw(&targets[t], "application/json", body, sizes[s]);

			label(&r, body, 40);
			E2E_ERROR(r, 413, "payload_too_large");
			e2e_resp_free(&r);
			free(body);
		}
	}
	/* Exactly the limit is read and judged on its content (a field far too long). */
	char *body = sized_body("email", MIB);
	e2e_resp_t r = send_raw(&targets[0], "application/json", body, MIB);
	label(&r, body, 40);
	E2E_4XX_JSON(r);
	E2E_TRUE(r, r.status != 413, "a body of exactly 1 MiB was refused as too large");
	e2e_resp_free(&r);
	free(body);
	expect_alive();
}

static void test_unsupported_content_types(void **state)
{
	(void)state;
	static const char *const ctypes[] = {"text/plain",
					     "application/xml",
					     "multipart/form-data; boundary=e2e",
					     "application/x-www-form-urlencoded",
					     "application/jsonx",
					     "application/json-seq",
					     NULL /* no Content-Type at all */};

	for (size_t t = 0; t < NTARGETS; t++) {
		char *body = build_body(&targets[t], -1, NULL, false);
		for (size_t c = 0; c < sizeof(ctypes) / sizeof(ctypes[0]); c++) {
			e2e_resp_t r = send_raw(&targets[t], ctypes[c], body, strlen(body));
			size_t used = strlen(r.what);
			snprintf(r.what + used, sizeof(r.what) - used, "  Content-Type: %s",
				 ctypes[c] ? ctypes[c] : "(none)");
			E2E_ERROR(r, 415, "unsupported_media_type");
			e2e_resp_free(&r);
		}
		free(body);
	}
}

static void test_huge_authorization_header(void **state)
{
	(void)state;
	static const size_t sizes[] = {8 * 1024 + 1, 9 * 1024, 64 * 1024};

	for (size_t s = 0; s < 3; s++) {
		char *tok = malloc(sizes[s] + 1);
		char *jwtish = malloc(sizes[s] + 1);

		assert_non_null(tok);
		assert_non_null(jwtish);
		memset(tok, 'A', sizes[s]);
		tok[sizes[s]] = '\0';
		/* A JWT-shaped monster: a valid-looking header, a giant payload. */
		memset(jwtish, 'e', sizes[s]);
		memcpy(jwtish, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37);
		jwtish[sizes[s] - 10] = '.';
		jwtish[sizes[s]] = '\0';

		const char *toks[] = {tok, jwtish};
		for (size_t k = 0; k < 2; k++) {
			e2e_resp_t r = e2e_get("/api/me", toks[k], NULL);
			E2E_4XX_JSON(r);
			e2e_resp_free(&r);
			r = e2e_raw_json("POST", "/api/auth/refresh", toks[k],
					 "{\"refresh_token\":\"x\"}");
			E2E_4XX_JSON(r);
			e2e_resp_free(&r);
		}
		free(tok);
		free(jwtish);
		/* The API keeps answering, and a normal token still works. */
		expect_alive();
		e2e_resp_t m = e2e_get("/api/me", owner.token, NULL);
		E2E_STATUS(m, 200);
		e2e_resp_free(&m);
	}
}

static void test_bad_business_id_header(void **state)
{
	(void)state;
	char *huge_digits = malloc(1001);
	char hdr[1100];

	assert_non_null(huge_digits);
	memset(huge_digits, '9', 1000);
	huge_digits[1000] = '\0';
	const char *must_400[] = {"abc",
				  "1 OR 1=1",
				  "1' OR '1'='1",
				  "99999999999999999999",
				  "9223372036854775808",
				  "1.5",
				  "0x10",
				  "1e3",
				  "12abc",
				  "1,2",
				  huge_digits,
				  NULL};
	static const char *const must_4xx[] = {"-1", "0", "-9223372036854775808", NULL};

	for (size_t i = 0; must_400[i] != NULL; i++) {
		snprintf(hdr, sizeof(hdr), "X-Business-Id: %s", must_400[i]);
		const char *hdrs[] = {hdr, NULL};
		e2e_resp_t r = e2e_get("/api/users", sysadmin.token, hdrs);
		E2E_ERROR(r, 400, "invalid_input");
		e2e_resp_free(&r);
		r = e2e_get("/api/me", sysadmin.token, hdrs);
		E2E_ERROR(r, 400, "invalid_input");
		e2e_resp_free(&r);
		/* Sent by someone who may not impersonate at all: still refused. */
		r = e2e_get("/api/me", owner.token, hdrs);
		E2E_4XX_JSON(r);
		E2E_TRUE(r, r.status == 400 || r.status == 403, "expected 400 or 403");
		e2e_resp_free(&r);
	}
	for (size_t i = 0; must_4xx[i] != NULL; i++) {
		snprintf(hdr, sizeof(hdr), "X-Business-Id: %s", must_4xx[i]);
		const char *hdrs[] = {hdr, NULL};
		e2e_resp_t r = e2e_get("/api/users", sysadmin.token, hdrs);
		E2E_4XX_JSON(r);
		e2e_resp_free(&r);
	}
	/* A header far beyond any id, maybe refused by nginx itself: still a 4xx JSON. */
	char *monster = malloc(20 * 1024 + 32);
	assert_non_null(monster);
	strcpy(monster, "X-Business-Id: ");
	memset(monster + 15, '7', 20 * 1024);
	monster[15 + 20 * 1024] = '\0';
	const char *hdrs[] = {monster, NULL};
	e2e_resp_t r = e2e_get("/api/users", sysadmin.token, hdrs);
	E2E_4XX_JSON(r);
	e2e_resp_free(&r);
	free(monster);
	free(huge_digits);
	expect_alive();
}

/* Page through /api/admin/businesses for business `id`; returns its name (malloc'd) or NULL. */
static char *listed_business_name(int64_t id)
{
	char path[96];

	for (int page = 1; page <= 100; page++) {
		snprintf(path, sizeof(path), "/api/admin/businesses?page=%d&page_size=200", page);
		e2e_resp_t r = e2e_get(path, sysadmin.token, NULL);
		json_t *items, *it;
		size_t i;

		E2E_LIST(r, page, 200);
		items = e2e_jget(r.json, "items");
		json_array_foreach(items, i, it)
		{
			json_int_t got;
			if (e2e_jint(it, "id", &got) && got == id) {
				char *name =
				    strdup(e2e_jstr(it, "name") ? e2e_jstr(it, "name") : "");
				e2e_resp_free(&r);
				return name;
			}
		}
		if (json_array_size(items) < 200) {
			e2e_resp_free(&r);
			return NULL;
		}
		e2e_resp_free(&r);
	}
	return NULL;
}

static void test_still_healthy_and_strings_round_trip(void **state)
{
	(void)state;
	char *uniq = e2e_unique("rt");
	char *names[3];
	e2e_resp_t r;

	expect_alive();
	/* The users table is still there: the fixture owner logs in. */
	char *login_body = build_body(&targets[0], -1, NULL, false);
	r = send_body(&targets[0], login_body);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	free(login_body);

	assert_true(asprintf(&names[0], SQL_DROP " %s", uniq) > 0);
	assert_true(asprintf(&names[1], SQL_OR " %s", uniq) > 0);
	assert_true(asprintf(&names[2],
			     "Ünïcødé \"q\" back\\slash "
			     "<script>alert(1)</script> 🙂 %%s %s",
			     uniq) > 0);
	for (size_t i = 0; i < 3; i++) {
		json_t *body = json_pack("{s:s}", "name", names[i]);
		json_int_t id;
		char hdr[64];
		char *listed;

		r = e2e_json_req("POST", "/api/admin/businesses", sysadmin.token, body, NULL);
		json_decref(body);
		E2E_STATUS(r, 201);
		E2E_JSTR_EQ(r, "business.name", names[i]);
		assert_true(e2e_jint(r.json, "business.id", &id));
		e2e_resp_free(&r);

		snprintf(hdr, sizeof(hdr), "X-Business-Id: %lld", (long long)id);
		const char *hdrs[] = {hdr, NULL};
		r = e2e_get("/api/me", sysadmin.token, hdrs);
		E2E_STATUS(r, 200);
		E2E_JSTR_EQ(r, "business.name", names[i]);
		e2e_resp_free(&r);

		listed = listed_business_name(id);
		if (listed == NULL || strcmp(listed, names[i]) != 0) {
			print_error("business %lld listed as \"%s\", created as \"%s\"\n",
				    (long long)id, listed ? listed : "(missing)", names[i]);
			fail();
		}
		free(listed);
	}

	/* A user whose name and password are SQL: created, listed as is, and able to log in. */
	char *email = e2e_unique_email("e2e-sql-user");
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "email", email, "name", names[1],
				 "password", SQL_DROP, "role", "agent");
	json_int_t uid;
	r = e2e_json_req("POST", "/api/users", owner.token, body, NULL);
	json_decref(body);
	E2E_STATUS(r, 201);
	E2E_JSTR_EQ(r, "user.name", names[1]);
	assert_true(e2e_jint(r.json, "user.id", &uid));
	e2e_resp_free(&r);

	r = e2e_get("/api/users?page_size=200", owner.token, NULL);
	E2E_LIST(r, 1, 200);
	{
		json_t *it;
		size_t i;
		bool found = false;
		json_array_foreach(e2e_jget(r.json, "items"), i, it)
		{
			json_int_t id;
			if (e2e_jint(it, "id", &id) && id == uid) {
				found = true;
				E2E_TRUE(r,
					 e2e_jstr(it, "name") &&
					     !strcmp(e2e_jstr(it, "name"), names[1]),
					 "the SQL name did not round-trip");
			}
		}
		E2E_TRUE(r, found, "user %lld not listed", (long long)uid);
	}
	e2e_resp_free(&r);

	body = json_pack("{s:s, s:s}", "email", email, "password", SQL_DROP);
	r = e2e_json_req("POST", "/api/auth/login", NULL, body, NULL);
	json_decref(body);
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "user.id", uid);
	e2e_resp_free(&r);

	free(email);
	for (size_t i = 0; i < 3; i++) {
		free(names[i]);
	}
	free(uniq);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_bodies_pass),
	    cmocka_unit_test(test_malformed_json),
	    cmocka_unit_test(test_duplicate_keys),
	    cmocka_unit_test(test_wrong_types),
	    cmocka_unit_test(test_huge_and_negative_numbers),
	    cmocka_unit_test(test_invalid_utf8_and_nul),
	    cmocka_unit_test(test_sql_metacharacters_in_fields),
	    cmocka_unit_test(test_sql_metacharacters_in_paths),
	    cmocka_unit_test(test_oversized_bodies),
	    cmocka_unit_test(test_unsupported_content_types),
	    cmocka_unit_test(test_huge_authorization_header),
	    cmocka_unit_test(test_bad_business_id_header),
	    cmocka_unit_test(test_still_healthy_and_strings_round_trip),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
