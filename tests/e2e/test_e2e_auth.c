/*
 * test_e2e_auth.c - health, login, refresh rotation, logout, /api/me and the
 * rule that the database decides (deactivation and demotion act at once),
 * through nginx against the running stack.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "e2e.h"

/* One tenant with every page, and its owner, shared by the tests. */
static int64_t biz_id;
static char *biz_name;
static e2e_user_t owner;

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz_id =
	    e2e_business_create("e2e-auth", "calls_outbound,whatsapp_flows,settings", &biz_name);
	e2e_user_create(&owner, biz_id, "owner");
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&owner);
	free(biz_name);
	return e2e_global_teardown(state);
}

/* --- helpers -------------------------------------------------------------- */

static e2e_resp_t login(const char *email, const char *password)
{
	json_t *body = json_pack("{s:s, s:s}", "email", email, "password", password);
	e2e_resp_t r = e2e_json_req("POST", "/api/auth/login", NULL, body, NULL);
	json_decref(body);
	return r;
}

static e2e_resp_t refresh(const char *refresh_token)
{
	json_t *body = json_pack("{s:s}", "refresh_token", refresh_token);
	e2e_resp_t r = e2e_json_req("POST", "/api/auth/refresh", NULL, body, NULL);
	json_decref(body);
	return r;
}

static e2e_resp_t patch_user(const char *token, int64_t id, const char *json_text)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/users/%lld", (long long)id);
	return e2e_raw_json("PATCH", path, token, json_text);
}

/* The token pair of a login or refresh answer, checked against API.md. */
static void expect_token_pair(const e2e_resp_t *r, const e2e_user_t *u)
{
	json_int_t expires_in;
	json_t *user;

	E2E_STATUS(*r, 200);
	E2E_JSON_HEADERS(*r);
	E2E_TRUE(*r, e2e_jstr(r->json, "access_token") && e2e_jstr(r->json, "access_token")[0],
		 "access_token is not a non-empty string");
	E2E_JSTR_EQ(*r, "token_type", "Bearer");
	E2E_TRUE(*r, e2e_jint(r->json, "expires_in", &expires_in) && expires_in > 0,
		 "expires_in is not a positive integer");
	E2E_TRUE(*r, e2e_jstr(r->json, "refresh_token") && e2e_jstr(r->json, "refresh_token")[0],
		 "refresh_token is not a non-empty string");
	E2E_TRUE(*r, strcmp(e2e_jstr(r->json, "refresh_token"), e2e_jstr(r->json, "access_token")),
		 "the refresh token equals the access token");
	user = e2e_jget(r->json, "user");
	E2E_TRUE(*r, json_is_object(user), "user is not an object");
	E2E_JINT_EQ(*r, "user.id", u->id);
	E2E_JSTR_EQ(*r, "user.email", u->email);
	E2E_JSTR_EQ(*r, "user.name", u->name);
	E2E_JSTR_EQ(*r, "user.role", u->role);
	if (u->business_id != 0) {
		E2E_JINT_EQ(*r, "user.business_id", u->business_id);
	} else {
		E2E_TRUE(*r, json_is_null(e2e_jget(r->json, "user.business_id")),
			 "user.business_id is not null");
	}
	E2E_TRUE(*r, !json_object_get(user, "password") && !json_object_get(user, "password_hash"),
		 "the user object leaks a password field");
}

static void expect_unauthenticated(const e2e_resp_t *r)
{
	const char *www;

	E2E_ERROR(*r, 401, "unauthenticated");
	E2E_JSON_HEADERS(*r);
	www = e2e_header(r, "WWW-Authenticate");
	E2E_TRUE(*r, www != NULL && strncasecmp(www, "Bearer", 6) == 0,
		 "401 without a WWW-Authenticate: Bearer header");
}

static e2e_resp_t me(const char *token)
{
	return e2e_get("/api/me", token, NULL);
}

/* base64url without padding <-> bytes, for forging tokens. */
static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_encode(const unsigned char *in, size_t n)
{
	char *out = malloc(n * 4 / 3 + 4);
	size_t o = 0;
	unsigned v;

	assert_non_null(out);
	for (size_t i = 0; i < n; i += 3) {
		v = (unsigned)in[i] << 16;
		if (i + 1 < n) {
			v |= (unsigned)in[i + 1] << 8;
		}
		if (i + 2 < n) {
			v |= in[i + 2];
		}
		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		if (i + 1 < n) {
			out[o++] = b64url[(v >> 6) & 63];
		}
		if (i + 2 < n) {
			out[o++] = b64url[v & 63];
		}
	}
	out[o] = '\0';
	return out;
}

static char *b64url_decode(const char *in, size_t n)
{
	char *out = malloc(n + 1);
	size_t o = 0;
	unsigned acc = 0;
	int bits = 0;

	assert_non_null(out);
	for (size_t i = 0; i < n; i++) {
		const char *p = strchr(b64url, in[i]);
		assert_true(p != NULL && in[i] != '\0');
		acc = (acc << 6) | (unsigned)(p - b64url);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (char)((acc >> bits) & 0xff);
		}
	}
	out[o] = '\0';
	return out;
}

/* Split "h.p.s" into its three parts (malloc'd copies). */
static void jwt_split(const char *tok, char **h, char **p, char **s)
{
	const char *d1 = strchr(tok, '.');
	const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;

	assert_non_null(d1);
	assert_non_null(d2);
	*h = strndup(tok, (size_t)(d1 - tok));
	*p = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
	*s = strdup(d2 + 1);
}

static char *jwt_join(const char *h, const char *p, const char *s)
{
	char *out = NULL;
	assert_true(asprintf(&out, "%s.%s.%s", h, p, s) > 0);
	return out;
}

/* --- tests ---------------------------------------------------------------- */

static void test_health(void **state)
{
	(void)state;
	e2e_resp_t r = e2e_get("/api/health", NULL, NULL);

	E2E_STATUS(r, 200);
	E2E_JSON_HEADERS(r);
	E2E_JSTR_EQ(r, "status", "ok");
	E2E_JSTR_EQ(r, "db", "ok");
	e2e_resp_free(&r);
}

static void test_login_success(void **state)
{
	(void)state;
	e2e_resp_t r = login(owner.email, owner.password);
	e2e_resp_t m;

	expect_token_pair(&r, &owner);
	/* The access token it gave works. */
	m = me(e2e_jstr(r.json, "access_token"));
	E2E_STATUS(m, 200);
	E2E_JINT_EQ(m, "user.id", owner.id);
	e2e_resp_free(&m);
	e2e_resp_free(&r);
}

static void test_login_email_case_insensitive(void **state)
{
	(void)state;
	char *upper = strdup(owner.email);
	e2e_resp_t r;

	for (char *p = upper; *p; p++) {
		*p = (char)toupper((unsigned char)*p);
	}
	r = login(upper, owner.password);
	expect_token_pair(&r, &owner);
	e2e_resp_free(&r);
	free(upper);
}

static void test_login_failures_are_identical(void **state)
{
	(void)state;
	e2e_user_t inactive;
	e2e_resp_t wrong, unknown, off, p;
	char *nobody = e2e_unique_email("e2e-nobody");

	e2e_user_create(&inactive, biz_id, "agent");
	p = patch_user(owner.token, inactive.id, "{\"is_active\":false}");
	E2E_STATUS(p, 200);

	wrong = login(owner.email, "not-the-password-1");
	unknown = login(nobody, E2E_PASSWORD);
	off = login(inactive.email, inactive.password);

	E2E_ERROR(wrong, 401, "invalid_credentials");
	E2E_JSON_HEADERS(wrong);
	E2E_ERROR(unknown, 401, "invalid_credentials");
	E2E_ERROR(off, 401, "invalid_credentials");
	/* No user enumeration: the three answers are the same document. */
	E2E_TRUE(unknown,
		 json_equal(e2e_jget(wrong.json, "error"), e2e_jget(unknown.json, "error")),
		 "unknown e-mail answers differently from a wrong password: %s", wrong.body);
	E2E_TRUE(off, json_equal(e2e_jget(wrong.json, "error"), e2e_jget(off.json, "error")),
		 "an inactive user answers differently from a wrong password: %s", wrong.body);
	E2E_TRUE(off, e2e_jget(off.json, "access_token") == NULL, "a failed login carries a token");

	e2e_resp_free(&p);
	e2e_resp_free(&wrong);
	e2e_resp_free(&unknown);
	e2e_resp_free(&off);
	e2e_user_free(&inactive);
	free(nobody);
}

static void test_me(void **state)
{
	(void)state;
	e2e_resp_t r = me(owner.token);
	json_t *pages;

	E2E_STATUS(r, 200);
	E2E_JSON_HEADERS(r);
	E2E_JINT_EQ(r, "user.id", owner.id);
	E2E_JSTR_EQ(r, "user.email", owner.email);
	E2E_JSTR_EQ(r, "user.name", owner.name);
	E2E_JSTR_EQ(r, "user.role", "owner");
	E2E_JINT_EQ(r, "user.business_id", biz_id);
	E2E_JINT_EQ(r, "business.id", biz_id);
	E2E_JSTR_EQ(r, "business.name", biz_name);
	pages = e2e_jget(r.json, "pages");
	E2E_TRUE(r, json_is_array(pages) && json_array_size(pages) == 3,
		 "pages is not the 3 enabled pages");
	E2E_TRUE(r,
		 e2e_jarray_has_str(pages, "calls_outbound") &&
		     e2e_jarray_has_str(pages, "whatsapp_flows") &&
		     e2e_jarray_has_str(pages, "settings"),
		 "pages lacks an enabled page");
	E2E_TRUE(r, json_is_false(e2e_jget(r.json, "impersonating")), "impersonating is not false");
	e2e_resp_free(&r);
}

static void test_me_rejects_bad_tokens(void **state)
{
	(void)state;
	e2e_user_t other;
	char *h, *p, *s, *payload, *forged_p, *tok;
	json_t *claims;
	e2e_resp_t r;

	e2e_user_create(&other, biz_id, "agent");
	jwt_split(owner.token, &h, &p, &s);

	/* No Authorization header at all. */
	r = me(NULL);
	expect_unauthenticated(&r);
	e2e_resp_free(&r);

	/* Garbage, an empty bearer, a malformed JWT, another scheme. */
	const char *garbage[] = {"garbage", "a.b.c", "", "..", "eyJhbGciOiJIUzI1NiJ9..", NULL};
	for (size_t i = 0; garbage[i] != NULL; i++) {
		r = me(garbage[i]);
		expect_unauthenticated(&r);
		e2e_resp_free(&r);
	}
	const char *basic[] = {"Authorization: Basic ZTJlOnBhc3N3b3Jk", NULL};
	r = e2e_get("/api/me", NULL, basic);
	expect_unauthenticated(&r);
	e2e_resp_free(&r);

	/* A tampered signature (first character: the last may be padding bits only). */
	s[0] = s[0] == 'A' ? 'B' : 'A';
	tok = jwt_join(h, p, s);
	r = me(tok);
	expect_unauthenticated(&r);
	e2e_resp_free(&r);
	free(tok);
	s[0] = strrchr(owner.token, '.')[1];

	/* A tampered payload: sub changed to another user, original signature. */
	payload = b64url_decode(p, strlen(p));
	claims = json_loads(payload, 0, NULL);
	assert_non_null(claims);
	if (json_is_string(json_object_get(claims, "sub"))) {
		char sub[32];
		snprintf(sub, sizeof(sub), "%lld", (long long)other.id);
		json_object_set_new(claims, "sub", json_string(sub));
	} else {
		json_object_set_new(claims, "sub", json_integer(other.id));
	}
	free(payload);
	payload = json_dumps(claims, JSON_COMPACT);
	forged_p = b64url_encode((const unsigned char *)payload, strlen(payload));
	tok = jwt_join(h, forged_p, s);
	r = me(tok);
	expect_unauthenticated(&r);
	e2e_resp_free(&r);
	free(tok);

	/* alg none, with no signature, with the original one, and in other spellings. */
	const char *none_headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
				      "{\"alg\":\"None\",\"typ\":\"JWT\"}", "{\"alg\":\"NONE\"}",
				      "{\"typ\":\"JWT\"}", NULL};
	for (size_t i = 0; none_headers[i] != NULL; i++) {
		char *nh =
		    b64url_encode((const unsigned char *)none_headers[i], strlen(none_headers[i]));
		const char *sigs[] = {"", s};
		for (size_t k = 0; k < 2; k++) {
			tok = jwt_join(nh, forged_p, sigs[k]);
			r = me(tok);
			expect_unauthenticated(&r);
			e2e_resp_free(&r);
			free(tok);
			tok = jwt_join(nh, p, sigs[k]);
			r = me(tok);
			expect_unauthenticated(&r);
			e2e_resp_free(&r);
			free(tok);
		}
		free(nh);
	}

	/* The untouched token still works: the rejections above were for the forgery. */
	r = me(owner.token);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);

	json_decref(claims);
	free(payload);
	free(forged_p);
	free(h);
	free(p);
	free(s);
	e2e_user_free(&other);
}

static void test_refresh_rotation_and_reuse(void **state)
{
	(void)state;
	e2e_user_t u;
	e2e_resp_t l, r1, reuse, r2, bogus, m;
	char *rt1, *rt2;

	e2e_user_create(&u, biz_id, "agent");
	l = login(u.email, u.password);
	expect_token_pair(&l, &u);
	rt1 = strdup(e2e_jstr(l.json, "refresh_token"));

	/* A refresh gives a new pair. */
	r1 = refresh(rt1);
	expect_token_pair(&r1, &u);
	rt2 = strdup(e2e_jstr(r1.json, "refresh_token"));
	E2E_TRUE(r1, strcmp(rt1, rt2) != 0, "the refresh token was not rotated");
	m = me(e2e_jstr(r1.json, "access_token"));
	E2E_STATUS(m, 200);
	e2e_resp_free(&m);

	/* The old one, reused: 401, and the whole family is revoked. */
	reuse = refresh(rt1);
	E2E_STATUS(reuse, 401);
	E2E_4XX_JSON(reuse);
	r2 = refresh(rt2);
	E2E_STATUS(r2, 401);
	E2E_4XX_JSON(r2);

	bogus = refresh("not-a-refresh-token");
	E2E_STATUS(bogus, 401);
	E2E_4XX_JSON(bogus);

	e2e_resp_free(&l);
	e2e_resp_free(&r1);
	e2e_resp_free(&reuse);
	e2e_resp_free(&r2);
	e2e_resp_free(&bogus);
	free(rt1);
	free(rt2);
	e2e_user_free(&u);
}

static void test_logout_revokes_everything(void **state)
{
	(void)state;
	e2e_user_t u;
	e2e_resp_t l, out, m, m2, rf;
	char *access, *rt;

	e2e_user_create(&u, biz_id, "agent");
	l = login(u.email, u.password);
	expect_token_pair(&l, &u);
	access = strdup(e2e_jstr(l.json, "access_token"));
	rt = strdup(e2e_jstr(l.json, "refresh_token"));

	m = me(access);
	E2E_STATUS(m, 200);
	e2e_resp_free(&m);

	out = e2e_req("POST", "/api/auth/logout", access, NULL, NULL, 0, NULL);
	E2E_STATUS(out, 204);
	E2E_TRUE(out, out.body_len == 0, "a 204 with a body");

	/* token_version was bumped: every access token of the user is dead. */
	m = me(access);
	expect_unauthenticated(&m);
	m2 = me(u.token);
	expect_unauthenticated(&m2);
	rf = refresh(rt);
	E2E_STATUS(rf, 401);
	E2E_4XX_JSON(rf);

	e2e_resp_free(&l);
	e2e_resp_free(&out);
	e2e_resp_free(&m);
	e2e_resp_free(&m2);
	e2e_resp_free(&rf);
	free(access);
	free(rt);
	e2e_user_free(&u);
}

static void test_deactivated_user_loses_access_at_once(void **state)
{
	(void)state;
	e2e_user_t u;
	e2e_resp_t m, p;

	e2e_user_create(&u, biz_id, "agent");
	m = me(u.token);
	E2E_STATUS(m, 200);
	e2e_resp_free(&m);

	p = patch_user(owner.token, u.id, "{\"is_active\":false}");
	E2E_STATUS(p, 200);
	E2E_TRUE(p, json_is_false(e2e_jget(p.json, "user.is_active")),
		 "user.is_active is not false");

	m = me(u.token);
	expect_unauthenticated(&m);
	e2e_resp_free(&m);
	/* Nor can the user log in again. */
	m = login(u.email, u.password);
	E2E_ERROR(m, 401, "invalid_credentials");

	e2e_resp_free(&m);
	e2e_resp_free(&p);
	e2e_user_free(&u);
}

static void test_demoted_user_loses_admin_access_at_once(void **state)
{
	(void)state;
	e2e_user_t u;
	e2e_resp_t l, p, m;

	e2e_user_create(&u, biz_id, "admin");
	l = e2e_get("/api/users", u.token, NULL);
	E2E_LIST(l, 1, -1);
	e2e_resp_free(&l);

	p = patch_user(owner.token, u.id, "{\"role\":\"agent\"}");
	E2E_STATUS(p, 200);
	E2E_JSTR_EQ(p, "user.role", "agent");

	/* The old token: dead (token_version bumped) or, at least, no admin any more. */
	l = e2e_get("/api/users", u.token, NULL);
	if (l.status == 401) {
		E2E_ERROR(l, 401, "unauthenticated");
	} else {
		E2E_FORBIDDEN(l, "insufficient_role");
	}
	e2e_resp_free(&l);

	/* A fresh token: an agent now, per the database. */
	e2e_user_retoken(&u);
	l = e2e_get("/api/users", u.token, NULL);
	E2E_FORBIDDEN(l, "insufficient_role");
	m = me(u.token);
	E2E_STATUS(m, 200);
	E2E_JSTR_EQ(m, "user.role", "agent");

	e2e_resp_free(&l);
	e2e_resp_free(&p);
	e2e_resp_free(&m);
	e2e_user_free(&u);
}

static void test_response_headers(void **state)
{
	(void)state;
	e2e_resp_t r[4];

	r[0] = e2e_get("/api/health", NULL, NULL);
	r[1] = me(NULL);
	r[2] = e2e_get("/api/no-such-thing", owner.token, NULL);
	r[3] = login(owner.email, "wrong-password-1");
	for (size_t i = 0; i < 4; i++) {
		E2E_JSON_HEADERS(r[i]);
		e2e_resp_free(&r[i]);
	}
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_health),
	    cmocka_unit_test(test_login_success),
	    cmocka_unit_test(test_login_email_case_insensitive),
	    cmocka_unit_test(test_login_failures_are_identical),
	    cmocka_unit_test(test_me),
	    cmocka_unit_test(test_me_rejects_bad_tokens),
	    cmocka_unit_test(test_refresh_rotation_and_reuse),
	    cmocka_unit_test(test_logout_revokes_everything),
	    cmocka_unit_test(test_deactivated_user_loses_access_at_once),
	    cmocka_unit_test(test_demoted_user_loses_admin_access_at_once),
	    cmocka_unit_test(test_response_headers),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
