/*
 * test_e2e_admin.c - administration through nginx: businesses and pages
 * (system_admin), users (owner), tenant isolation with its [SECURITY] line,
 * the last-owner rule, impersonation with X-Business-Id and its [AUDIT] line,
 * and the audit trail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "e2e.h"

#define ALL_PAGES  "calls_outbound,whatsapp_flows,settings"
#define NO_SUCH_ID "999999999999"

/* Tenant A has every page, tenant B lacks `settings`. */
static int64_t biz_a, biz_b;
static char *name_a, *name_b;
static e2e_user_t sysadmin, owner_a, admin_a, agent_a, owner_b, agent_b;

static int group_setup(void **state)
{
	if (e2e_global_setup(state) != 0) {
		return -1;
	}
	biz_a = e2e_business_create("e2e-admin-a", ALL_PAGES, &name_a);
	biz_b = e2e_business_create("e2e-admin-b", "calls_outbound,whatsapp_flows", &name_b);
	e2e_user_create(&sysadmin, 0, "system_admin");
	e2e_user_create(&owner_a, biz_a, "owner");
	e2e_user_create(&admin_a, biz_a, "admin");
	e2e_user_create(&agent_a, biz_a, "agent");
	e2e_user_create(&owner_b, biz_b, "owner");
	e2e_user_create(&agent_b, biz_b, "agent");
	return 0;
}

static int group_teardown(void **state)
{
	e2e_user_free(&sysadmin);
	e2e_user_free(&owner_a);
	e2e_user_free(&admin_a);
	e2e_user_free(&agent_a);
	e2e_user_free(&owner_b);
	e2e_user_free(&agent_b);
	free(name_a);
	free(name_b);
	return e2e_global_teardown(state);
}

/* --- helpers -------------------------------------------------------------- */

/* "X-Business-Id: <id>" in a static buffer, as a NULL-terminated header list. */
static const char *const *acting_for(int64_t id)
{
	static char hdr[64];
	static const char *list[2];

	snprintf(hdr, sizeof(hdr), "X-Business-Id: %lld", (long long)id);
	list[0] = hdr;
	list[1] = NULL;
	return list;
}

static e2e_resp_t post_user(const char *token, const char *const *hdrs, const char *email,
			    const char *name, const char *password, const char *role)
{
	json_t *body = json_pack("{s:s, s:s, s:s, s:s}", "email", email, "name", name, "password",
				 password, "role", role);
	e2e_resp_t r = e2e_json_req("POST", "/api/users", token, body, hdrs);
	json_decref(body);
	return r;
}

static e2e_resp_t patch_user(const char *token, int64_t id, const char *json_text)
{
	char path[64];
	snprintf(path, sizeof(path), "/api/users/%lld", (long long)id);
	return e2e_raw_json("PATCH", path, token, json_text);
}

static e2e_resp_t patch_pages(const char *token, const char *id, const char *json_text)
{
	char path[128];
	snprintf(path, sizeof(path), "/api/admin/businesses/%s/pages", id);
	return e2e_raw_json("PATCH", path, token, json_text);
}

static void expect_keys(const e2e_resp_t *r, const char *obj_path, const char *const keys[])
{
	json_t *obj = e2e_jget(r->json, obj_path);

	E2E_TRUE(*r, json_is_object(obj), "%s is not an object", obj_path);
	for (size_t i = 0; keys[i] != NULL; i++) {
		E2E_TRUE(*r, json_object_get(obj, keys[i]) != NULL, "%s lacks \"%s\"", obj_path,
			 keys[i]);
	}
}

/* The user object of API.md at `path`, for a user of business `biz`. */
static void expect_user(const e2e_resp_t *r, const char *path, const char *email, const char *role,
			int64_t biz, bool active)
{
	char p[64];
	static const char *const keys[] = {"id",	  "email",     "name", "role",
					   "business_id", "is_active", NULL};

	expect_keys(r, path, keys);
	snprintf(p, sizeof(p), "%s.email", path);
	if (email != NULL) {
		E2E_JSTR_EQ(*r, p, email);
	}
	snprintf(p, sizeof(p), "%s.role", path);
	E2E_JSTR_EQ(*r, p, role);
	snprintf(p, sizeof(p), "%s.business_id", path);
	E2E_JINT_EQ(*r, p, biz);
	snprintf(p, sizeof(p), "%s.is_active", path);
	E2E_TRUE(*r,
		 json_is_boolean(e2e_jget(r->json, p)) &&
		     json_boolean_value(e2e_jget(r->json, p)) == active,
		 "%s is not %s", p, active ? "true" : "false");
}

/* The item of a list answer whose `key` is the integer `id`, or NULL. */
static json_t *find_item(const e2e_resp_t *r, const char *key, int64_t id)
{
	size_t i;
	json_t *it;

	json_array_foreach(e2e_jget(r->json, "items"), i, it)
	{
		json_t *v = json_object_get(it, key);
		if (json_is_integer(v) && json_integer_value(v) == id) {
			return it;
		}
		if (json_is_string(v)) {
			char want[32];
			snprintf(want, sizeof(want), "%lld", (long long)id);
			if (strcmp(json_string_value(v), want) == 0) {
				return it;
			}
		}
	}
	return NULL;
}

/* Whether the JSON array `arr` holds exactly the strings of `want` (NULL-terminated). */
static bool same_string_set(json_t *arr, const char *const want[])
{
	size_t n = 0;

	while (want[n] != NULL) {
		if (!e2e_jarray_has_str(arr, want[n])) {
			return false;
		}
		n++;
	}
	return json_is_array(arr) && json_array_size(arr) == n;
}

/* A user created through the API by `token` (acting with hdrs), returning its id. */
static int64_t api_user(const char *token, const char *const *hdrs, const char *role, int64_t biz,
			char **email_out)
{
	char *email = e2e_unique_email("e2e-api-user");
	e2e_resp_t r = post_user(token, hdrs, email, "API User", E2E_PASSWORD, role);
	json_int_t id = 0;

	E2E_STATUS(r, 201);
	expect_user(&r, "user", email, role, biz, true);
	E2E_TRUE(r, e2e_jint(r.json, "user.id", &id) && id > 0, "user.id");
	e2e_resp_free(&r);
	if (email_out != NULL) {
		*email_out = email;
	} else {
		free(email);
	}
	return (int64_t)id;
}

/* --- businesses and pages ------------------------------------------------- */

static void test_admin_list_businesses(void **state)
{
	(void)state;
	e2e_resp_t r, p1, p2;
	json_int_t total, id1, id2;

	r = e2e_get("/api/admin/businesses", sysadmin.token, NULL);
	E2E_LIST(r, 1, 50);
	E2E_JSON_HEADERS(r);
	E2E_TRUE(r, e2e_jint(r.json, "total", &total) && total >= 2, "total < 2");
	E2E_TRUE(r, e2e_jint(r.json, "items.0.id", NULL) && e2e_jstr(r.json, "items.0.name"),
		 "items[0] lacks id/name");
	e2e_resp_free(&r);

	p1 = e2e_get("/api/admin/businesses?page=1&page_size=1", sysadmin.token, NULL);
	E2E_LIST(p1, 1, 1);
	E2E_TRUE(p1, json_array_size(e2e_jget(p1.json, "items")) == 1, "not one item");
	p2 = e2e_get("/api/admin/businesses?page=2&page_size=1", sysadmin.token, NULL);
	E2E_LIST(p2, 2, 1);
	E2E_TRUE(p2, json_array_size(e2e_jget(p2.json, "items")) == 1, "not one item");
	assert_true(e2e_jint(p1.json, "items.0.id", &id1));
	assert_true(e2e_jint(p2.json, "items.0.id", &id2));
	E2E_TRUE(p2, id1 != id2, "page 2 repeats page 1");
	e2e_resp_free(&p1);
	e2e_resp_free(&p2);

	const char *bad[] = {"/api/admin/businesses?page_size=0",
			     "/api/admin/businesses?page_size=201",
			     "/api/admin/businesses?page_size=-1",
			     "/api/admin/businesses?page_size=abc",
			     "/api/admin/businesses?page_size=99999999999999999999",
			     "/api/admin/businesses?page=0",
			     NULL};
	for (size_t i = 0; bad[i] != NULL; i++) {
		r = e2e_get(bad[i], sysadmin.token, NULL);
		E2E_ERROR(r, 400, "invalid_input");
		e2e_resp_free(&r);
	}
	r = e2e_get("/api/admin/businesses?page_size=200", sysadmin.token, NULL);
	E2E_LIST(r, 1, 200);
	e2e_resp_free(&r);
}

static void test_admin_create_business(void **state)
{
	(void)state;
	char *name = e2e_unique("e2e-created");
	json_t *body = json_pack("{s:s, s:s, s:s, s:i}", "name", name, "timezone", "Asia/Jerusalem",
				 "default_country", "IL", "max_concurrent_calls", 5);
	static const char *const keys[] = {"id",
					   "name",
					   "timezone",
					   "default_country",
					   "max_concurrent_calls",
					   "is_active",
					   "enabled_pages",
					   "created_at",
					   NULL};
	e2e_resp_t r = e2e_json_req("POST", "/api/admin/businesses", sysadmin.token, body, NULL);
	json_int_t id;

	E2E_STATUS(r, 201);
	E2E_JSON_HEADERS(r);
	expect_keys(&r, "business", keys);
	E2E_TRUE(r, e2e_jint(r.json, "business.id", &id) && id > 0, "business.id");
	E2E_JSTR_EQ(r, "business.name", name);
	E2E_JSTR_EQ(r, "business.timezone", "Asia/Jerusalem");
	E2E_JSTR_EQ(r, "business.default_country", "IL");
	E2E_JINT_EQ(r, "business.max_concurrent_calls", 5);
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "business.is_active")), "is_active");
	E2E_TRUE(r, json_is_array(e2e_jget(r.json, "business.enabled_pages")), "enabled_pages");
	E2E_TRUE(r,
		 e2e_jstr(r.json, "business.created_at") &&
		     strchr(e2e_jstr(r.json, "business.created_at"), 'T'),
		 "created_at is not an RFC 3339 string");
	e2e_resp_free(&r);
	json_decref(body);
	free(name);

	/* Only the name: the defaults (max_concurrent_calls 3). */
	name = e2e_unique("e2e-created-min");
	body = json_pack("{s:s}", "name", name);
	r = e2e_json_req("POST", "/api/admin/businesses", sysadmin.token, body, NULL);
	E2E_STATUS(r, 201);
	expect_keys(&r, "business", keys);
	E2E_JSTR_EQ(r, "business.name", name);
	E2E_JINT_EQ(r, "business.max_concurrent_calls", 3);
	E2E_TRUE(r, e2e_jstr(r.json, "business.timezone") != NULL, "timezone is not a string");
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "business.is_active")), "is_active");
	e2e_resp_free(&r);
	json_decref(body);
	free(name);
}

static void test_admin_create_business_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
	    {"{\"name\":\"e2e tz\",\"timezone\":\"Mars/Base\"}", "timezone"},
	    {"{\"name\":\"e2e tz\",\"timezone\":\"\"}", "timezone"},
	    {"{\"timezone\":\"UTC\"}", "name"},
	    {"{\"name\":\"\"}", "name"},
	    {"{\"name\":\"e2e cc\",\"default_country\":\"ZZZ\"}", "default_country"},
	    {"{\"name\":\"e2e mcc\",\"max_concurrent_calls\":-1}", "max_concurrent_calls"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		e2e_resp_t r =
		    e2e_raw_json("POST", "/api/admin/businesses", sysadmin.token, cases[i].body);
		E2E_FIELD_ERROR(r, cases[i].field);
		e2e_resp_free(&r);
	}
}

static void test_admin_set_pages(void **state)
{
	(void)state;
	e2e_user_t own;
	int64_t biz = e2e_business_create("e2e-pages", NULL, NULL);
	char id[32];
	e2e_resp_t r, m;
	static const char *const two[] = {"calls_outbound", "whatsapp_flows", NULL};
	static const char *const none[] = {NULL};

	snprintf(id, sizeof(id), "%lld", (long long)biz);
	e2e_user_create(&own, biz, "owner");

	r = patch_pages(sysadmin.token, id,
			"{\"enabled_pages\":[\"calls_outbound\",\"whatsapp_flows\"]}");
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "business.id", biz);
	E2E_TRUE(r, same_string_set(e2e_jget(r.json, "business.enabled_pages"), two),
		 "enabled_pages is not the two pages set");
	e2e_resp_free(&r);
	m = e2e_get("/api/me", own.token, NULL);
	E2E_STATUS(m, 200);
	E2E_TRUE(m, same_string_set(e2e_jget(m.json, "pages"), two), "/api/me pages differ");
	e2e_resp_free(&m);

	r = patch_pages(sysadmin.token, id, "{\"enabled_pages\":[]}");
	E2E_STATUS(r, 200);
	E2E_TRUE(r, same_string_set(e2e_jget(r.json, "business.enabled_pages"), none),
		 "enabled_pages is not empty");
	e2e_resp_free(&r);

	/* An unknown key is refused whole: nothing changes. */
	r = patch_pages(sysadmin.token, id, "{\"enabled_pages\":[\"calls_outbound\",\"nope\"]}");
	E2E_ERROR(r, 400, "invalid_input");
	e2e_resp_free(&r);
	m = e2e_get("/api/me", own.token, NULL);
	E2E_STATUS(m, 200);
	E2E_TRUE(m, same_string_set(e2e_jget(m.json, "pages"), none),
		 "a refused PATCH changed the pages");
	e2e_resp_free(&m);

	r = patch_pages(sysadmin.token, NO_SUCH_ID, "{\"enabled_pages\":[\"calls_outbound\"]}");
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
	e2e_user_free(&own);
}

static void test_admin_routes_need_system_admin(void **state)
{
	(void)state;
	char path[96];
	e2e_resp_t r;
	const e2e_user_t *who[] = {&owner_a, &admin_a, &agent_a};

	snprintf(path, sizeof(path), "/api/admin/businesses/%lld/pages", (long long)biz_a);
	for (size_t i = 0; i < 3; i++) {
		const char *tok = who[i]->token;

		r = e2e_get("/api/admin/businesses", tok, NULL);
		E2E_FORBIDDEN(r, "insufficient_role");
		e2e_resp_free(&r);
		r = e2e_raw_json("POST", "/api/admin/businesses", tok, "{\"name\":\"e2e nope\"}");
		E2E_FORBIDDEN(r, "insufficient_role");
		e2e_resp_free(&r);
		r = e2e_raw_json("PATCH", path, tok, "{\"enabled_pages\":[\"calls_outbound\"]}");
		E2E_FORBIDDEN(r, "insufficient_role");
		e2e_resp_free(&r);
		r = e2e_get("/api/admin/audit", tok, NULL);
		E2E_FORBIDDEN(r, "insufficient_role");
		e2e_resp_free(&r);
	}
}

/* --- users ---------------------------------------------------------------- */

static void test_owner_creates_user(void **state)
{
	(void)state;
	char *email = NULL;
	int64_t id = api_user(owner_a.token, NULL, "agent", biz_a, &email);
	json_t *body = json_pack("{s:s, s:s}", "email", email, "password", E2E_PASSWORD);
	e2e_resp_t l = e2e_json_req("POST", "/api/auth/login", NULL, body, NULL);

	/* The new user can log in with the password it was given. */
	E2E_STATUS(l, 200);
	E2E_JINT_EQ(l, "user.id", id);
	E2E_JINT_EQ(l, "user.business_id", biz_a);
	e2e_resp_free(&l);
	json_decref(body);
	free(email);

	api_user(owner_a.token, NULL, "admin", biz_a, NULL);
	api_user(owner_a.token, NULL, "owner", biz_a, NULL);
}

static void test_owner_cannot_create_system_admin(void **state)
{
	(void)state;
	char *email = e2e_unique_email("e2e-would-be-sa");
	e2e_resp_t r = post_user(owner_a.token, NULL, email, "Nope", E2E_PASSWORD, "system_admin");

	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	free(email);
}

static void test_create_user_duplicate_email(void **state)
{
	(void)state;
	char *email = NULL;
	e2e_resp_t r;

	api_user(owner_a.token, NULL, "agent", biz_a, &email);
	for (char *p = email; *p; p++) {
		*p = (char)toupper((unsigned char)*p);
	}
	r = post_user(owner_a.token, NULL, email, "Dup", E2E_PASSWORD, "agent");
	E2E_ERROR(r, 409, NULL);
	e2e_resp_free(&r);
	/* Unique across tenants too. */
	r = post_user(owner_b.token, NULL, email, "Dup", E2E_PASSWORD, "agent");
	E2E_ERROR(r, 409, NULL);
	e2e_resp_free(&r);
	free(email);
}

static void test_create_user_invalid(void **state)
{
	(void)state;
	char *email = e2e_unique_email("e2e-invalid");
	e2e_resp_t r;

	r = post_user(owner_a.token, NULL, email, "Weak", "short-1", "agent");
	E2E_FIELD_ERROR(r, "password");
	e2e_resp_free(&r);
	r = post_user(owner_a.token, NULL, email, "Weak", "123456789", "agent");
	E2E_FIELD_ERROR(r, "password");
	e2e_resp_free(&r);
	r = post_user(owner_a.token, NULL, "not-an-email", "X", E2E_PASSWORD, "agent");
	E2E_FIELD_ERROR(r, "email");
	e2e_resp_free(&r);
	r = post_user(owner_a.token, NULL, email, "X", E2E_PASSWORD, "king");
	E2E_FIELD_ERROR(r, "role");
	e2e_resp_free(&r);
	/* name is required (API.md lists no "?" on it), and not empty. */
	json_t *noname =
	    json_pack("{s:s, s:s, s:s}", "email", email, "password", E2E_PASSWORD, "role", "agent");
	r = e2e_json_req("POST", "/api/users", owner_a.token, noname, NULL);
	json_decref(noname);
	E2E_FIELD_ERROR(r, "name");
	e2e_resp_free(&r);
	r = post_user(owner_a.token, NULL, email, "", E2E_PASSWORD, "agent");
	E2E_FIELD_ERROR(r, "name");
	e2e_resp_free(&r);
	/* 10 characters is enough. */
	r = post_user(owner_a.token, NULL, email, "Ten", "1234567890", "agent");
	E2E_STATUS(r, 201);
	e2e_resp_free(&r);
	free(email);
}

static void test_only_owners_create_users(void **state)
{
	(void)state;
	char *email = e2e_unique_email("e2e-by-admin");
	e2e_resp_t r;

	r = post_user(admin_a.token, NULL, email, "X", E2E_PASSWORD, "agent");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	r = post_user(agent_a.token, NULL, email, "X", E2E_PASSWORD, "agent");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	free(email);
}

static void test_system_admin_creates_tenant_user(void **state)
{
	(void)state;
	int64_t id = api_user(sysadmin.token, acting_for(biz_b), "owner", biz_b, NULL);
	e2e_resp_t r = e2e_get("/api/users?page_size=200", owner_b.token, NULL);

	E2E_LIST(r, 1, 200);
	E2E_TRUE(r, find_item(&r, "id", id) != NULL, "the new user is not in tenant B's list");
	e2e_resp_free(&r);
}

static void test_owner_patches_user(void **state)
{
	(void)state;
	e2e_user_t u;
	e2e_resp_t r;

	e2e_user_create(&u, biz_a, "agent");
	r = patch_user(owner_a.token, u.id, "{\"role\":\"admin\"}");
	E2E_STATUS(r, 200);
	E2E_JSON_HEADERS(r);
	expect_user(&r, "user", u.email, "admin", biz_a, true);
	E2E_JINT_EQ(r, "user.id", u.id);
	e2e_resp_free(&r);

	r = patch_user(owner_a.token, u.id, "{\"is_active\":false}");
	E2E_STATUS(r, 200);
	expect_user(&r, "user", u.email, "admin", biz_a, false);
	e2e_resp_free(&r);

	r = patch_user(owner_a.token, u.id, "{\"is_active\":true,\"role\":\"agent\"}");
	E2E_STATUS(r, 200);
	expect_user(&r, "user", u.email, "agent", biz_a, true);
	e2e_resp_free(&r);

	/* An owner cannot grant what it could not create. */
	r = patch_user(owner_a.token, u.id, "{\"role\":\"system_admin\"}");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	/* Nor can an admin change users. */
	r = patch_user(admin_a.token, u.id, "{\"role\":\"admin\"}");
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
	e2e_user_free(&u);
}

static void test_patch_user_of_other_tenant(void **state)
{
	(void)state;
	e2e_resp_t r;
	json_t *it;
	long long off = e2e_log_offset();

	r = patch_user(owner_a.token, agent_b.id, "{\"role\":\"admin\"}");
	E2E_FORBIDDEN(r, "forbidden");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[SECURITY]");

	off = e2e_log_offset();
	r = patch_user(owner_a.token, owner_b.id, "{\"is_active\":false}");
	E2E_FORBIDDEN(r, "forbidden");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[SECURITY]");

	/* Nothing changed in tenant B. */
	r = e2e_get("/api/users?page_size=200", owner_b.token, NULL);
	E2E_LIST(r, 1, 200);
	it = find_item(&r, "id", agent_b.id);
	E2E_TRUE(r, it != NULL, "agent B is missing");
	E2E_TRUE(r, strcmp(e2e_jstr(it, "role"), "agent") == 0, "agent B's role changed");
	it = find_item(&r, "id", owner_b.id);
	E2E_TRUE(r, it != NULL && json_is_true(json_object_get(it, "is_active")),
		 "owner B was deactivated");
	e2e_resp_free(&r);
}

static void test_patch_user_unknown(void **state)
{
	(void)state;
	e2e_resp_t r =
	    e2e_raw_json("PATCH", "/api/users/" NO_SUCH_ID, owner_a.token, "{\"role\":\"admin\"}");
	E2E_ERROR(r, 404, "not_found");
	e2e_resp_free(&r);
}

static void test_last_owner(void **state)
{
	(void)state;
	e2e_user_t first, second;
	int64_t biz = e2e_business_create("e2e-last-owner", ALL_PAGES, NULL);
	e2e_resp_t r;

	e2e_user_create(&first, biz, "owner");
	r = patch_user(first.token, first.id, "{\"role\":\"admin\"}");
	E2E_ERROR(r, 409, "last_owner");
	e2e_resp_free(&r);
	r = patch_user(first.token, first.id, "{\"is_active\":false}");
	E2E_ERROR(r, 409, "last_owner");
	e2e_resp_free(&r);
	/* Refused means untouched: the token still works and the role is owner. */
	r = e2e_get("/api/me", first.token, NULL);
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "user.role", "owner");
	e2e_resp_free(&r);

	/* With a second owner, the first may step down; then the second is the last. */
	e2e_user_create(&second, biz, "owner");
	r = patch_user(first.token, first.id, "{\"role\":\"admin\"}");
	E2E_STATUS(r, 200);
	E2E_JSTR_EQ(r, "user.role", "admin");
	e2e_resp_free(&r);
	r = patch_user(second.token, second.id, "{\"is_active\":false}");
	E2E_ERROR(r, 409, "last_owner");
	e2e_resp_free(&r);
	e2e_user_free(&first);
	e2e_user_free(&second);
}

static void test_list_users_own_tenant(void **state)
{
	(void)state;
	e2e_resp_t r;
	size_t i;
	json_t *it;
	const e2e_user_t *readers[] = {&owner_a, &admin_a};

	for (size_t k = 0; k < 2; k++) {
		r = e2e_get("/api/users?page_size=200", readers[k]->token, NULL);
		E2E_LIST(r, 1, 200);
		E2E_JSON_HEADERS(r);
		E2E_TRUE(r,
			 find_item(&r, "id", owner_a.id) && find_item(&r, "id", admin_a.id) &&
			     find_item(&r, "id", agent_a.id),
			 "a tenant A user is missing");
		E2E_TRUE(r,
			 !find_item(&r, "id", owner_b.id) && !find_item(&r, "id", agent_b.id) &&
			     !find_item(&r, "id", sysadmin.id),
			 "the list leaks users of another tenant");
		json_array_foreach(e2e_jget(r.json, "items"), i, it)
		{
			json_int_t b;
			E2E_TRUE(r, e2e_jint(it, "business_id", &b) && b == biz_a,
				 "item %zu is not of tenant A", i);
			E2E_TRUE(r, !json_object_get(it, "password_hash"), "password_hash leaked");
		}
		e2e_resp_free(&r);
	}
	r = e2e_get("/api/users", agent_a.token, NULL);
	E2E_FORBIDDEN(r, "insufficient_role");
	e2e_resp_free(&r);
}

/* --- impersonation -------------------------------------------------------- */

static void test_impersonation(void **state)
{
	(void)state;
	static const char *const all[] = {"calls_outbound", "whatsapp_flows", "settings", NULL};
	static const char *const two[] = {"calls_outbound", "whatsapp_flows", NULL};
	long long off = e2e_log_offset();
	e2e_resp_t r;

	r = e2e_get("/api/me", sysadmin.token, acting_for(biz_a));
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "business.id", biz_a);
	E2E_JSTR_EQ(r, "business.name", name_a);
	E2E_JINT_EQ(r, "user.id", sysadmin.id);
	E2E_JSTR_EQ(r, "user.role", "system_admin");
	E2E_TRUE(r, json_is_true(e2e_jget(r.json, "impersonating")), "impersonating is not true");
	E2E_TRUE(r, same_string_set(e2e_jget(r.json, "pages"), all), "pages are not A's");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[AUDIT]");

	r = e2e_get("/api/me", sysadmin.token, acting_for(biz_b));
	E2E_STATUS(r, 200);
	E2E_JINT_EQ(r, "business.id", biz_b);
	E2E_TRUE(r, same_string_set(e2e_jget(r.json, "pages"), two), "pages are not B's");
	e2e_resp_free(&r);

	/* Acting for a tenant reaches its data, and only its data. */
	r = e2e_get("/api/users?page_size=200", sysadmin.token, acting_for(biz_b));
	E2E_LIST(r, 1, 200);
	E2E_TRUE(r, find_item(&r, "id", owner_b.id) && !find_item(&r, "id", owner_a.id),
		 "impersonated list is not tenant B's");
	e2e_resp_free(&r);

	/* Without the header: no tenant. */
	r = e2e_get("/api/me", sysadmin.token, NULL);
	E2E_STATUS(r, 200);
	E2E_TRUE(r, json_is_null(e2e_jget(r.json, "business")), "business is not null");
	E2E_TRUE(r, json_is_false(e2e_jget(r.json, "impersonating")), "impersonating");
	E2E_TRUE(r, json_is_null(e2e_jget(r.json, "user.business_id")), "user.business_id");
	e2e_resp_free(&r);
}

static void test_impersonation_unknown_business(void **state)
{
	(void)state;
	static const char *const hdr[] = {"X-Business-Id: " NO_SUCH_ID, NULL};
	e2e_resp_t r = e2e_get("/api/me", sysadmin.token, hdr);

	E2E_4XX_JSON(r);
	E2E_TRUE(r, r.status == 403 || r.status == 404, "expected 403 or 404");
	e2e_resp_free(&r);
}

static void test_impersonation_by_non_system_admin(void **state)
{
	(void)state;
	const e2e_user_t *who[] = {&owner_a, &admin_a, &agent_a};
	e2e_resp_t r;

	for (size_t i = 0; i < 3; i++) {
		r = e2e_get("/api/me", who[i]->token, acting_for(biz_b));
		E2E_ERROR(r, 403, "forbidden");
		e2e_resp_free(&r);
		r = e2e_get("/api/users", who[i]->token, acting_for(biz_b));
		E2E_ERROR(r, 403, "forbidden");
		e2e_resp_free(&r);
	}
}

/* --- audit ---------------------------------------------------------------- */

static const char *const audit_keys[] = {"id",		"ts",	      "business_id",
					 "actor_id",	"actor_role", "impersonator_id",
					 "tag",		"action",     "resource_type",
					 "resource_id", "outcome",    "ip",
					 "request_id",	"details",    NULL};

static void expect_audit_items(const e2e_resp_t *r, const char *action, int64_t only_biz)
{
	size_t i;
	json_t *it;

	json_array_foreach(e2e_jget(r->json, "items"), i, it)
	{
		json_int_t b;
		for (size_t k = 0; audit_keys[k] != NULL; k++) {
			E2E_TRUE(*r, json_object_get(it, audit_keys[k]) != NULL,
				 "items[%zu] lacks \"%s\"", i, audit_keys[k]);
		}
		E2E_TRUE(*r, e2e_jint(it, "id", NULL) && e2e_jstr(it, "ts"),
			 "items[%zu] id/ts types", i);
		if (action != NULL) {
			E2E_TRUE(*r,
				 e2e_jstr(it, "action") && !strcmp(e2e_jstr(it, "action"), action),
				 "items[%zu] is not a %s event", i, action);
		}
		if (only_biz != 0) {
			E2E_TRUE(*r, e2e_jint(it, "business_id", &b) && b == only_biz,
				 "items[%zu] is of another tenant", i);
		}
	}
}

static void test_admin_audit(void **state)
{
	(void)state;
	int64_t uid = api_user(owner_a.token, NULL, "agent", biz_a, NULL);
	char path[160];
	e2e_resp_t r;
	json_t *it;
	json_int_t v;

	snprintf(path, sizeof(path),
		 "/api/admin/audit?action=user.create&resource_id=%lld&page_size=200",
		 (long long)uid);
	r = e2e_get(path, sysadmin.token, NULL);
	E2E_LIST(r, 1, 200);
	E2E_JSON_HEADERS(r);
	expect_audit_items(&r, "user.create", 0);
	it = find_item(&r, "resource_id", uid);
	E2E_TRUE(r, it != NULL, "no user.create event for user %lld", (long long)uid);
	E2E_TRUE(r, e2e_jint(it, "business_id", &v) && v == biz_a, "event business_id");
	E2E_TRUE(r, e2e_jint(it, "actor_id", &v) && v == owner_a.id, "event actor_id");
	E2E_TRUE(r, e2e_jstr(it, "actor_role") && !strcmp(e2e_jstr(it, "actor_role"), "owner"),
		 "event actor_role");
	E2E_TRUE(r, json_is_null(json_object_get(it, "impersonator_id")),
		 "event impersonator_id is not null");
	E2E_TRUE(r, e2e_jstr(it, "outcome") != NULL, "event outcome");
	e2e_resp_free(&r);

	r = e2e_get("/api/admin/audit?action=user.create&page_size=200", sysadmin.token, NULL);
	E2E_LIST(r, 1, 200);
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "items")) > 0, "no user.create events");
	expect_audit_items(&r, "user.create", 0);
	e2e_resp_free(&r);
}

static void test_tenant_audit(void **state)
{
	(void)state;
	int64_t mine = api_user(owner_a.token, NULL, "agent", biz_a, NULL);
	int64_t theirs = api_user(sysadmin.token, acting_for(biz_b), "agent", biz_b, NULL);
	char path[160];
	e2e_resp_t r;

	snprintf(path, sizeof(path), "/api/audit?action=user.create&resource_id=%lld",
		 (long long)mine);
	r = e2e_get(path, owner_a.token, NULL);
	E2E_LIST(r, 1, -1);
	E2E_JSON_HEADERS(r);
	expect_audit_items(&r, "user.create", biz_a);
	E2E_TRUE(r, find_item(&r, "resource_id", mine) != NULL, "own event missing");
	e2e_resp_free(&r);

	/* Another tenant's event is invisible, even asked for by id. */
	snprintf(path, sizeof(path), "/api/audit?action=user.create&resource_id=%lld",
		 (long long)theirs);
	r = e2e_get(path, owner_a.token, NULL);
	E2E_LIST(r, 1, -1);
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "items")) == 0, "tenant B's event leaked");
	E2E_JINT_EQ(r, "total", 0);
	e2e_resp_free(&r);

	r = e2e_get("/api/audit?page_size=200", owner_a.token, NULL);
	E2E_LIST(r, 1, 200);
	expect_audit_items(&r, NULL, biz_a);
	e2e_resp_free(&r);

	/* Tenant B has no `settings` page. */
	r = e2e_get("/api/audit", owner_b.token, NULL);
	E2E_FORBIDDEN(r, "page_not_enabled");
	e2e_resp_free(&r);
}

int main(void)
{
	e2e_skip_without_stack();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_admin_list_businesses),
	    cmocka_unit_test(test_admin_create_business),
	    cmocka_unit_test(test_admin_create_business_invalid),
	    cmocka_unit_test(test_admin_set_pages),
	    cmocka_unit_test(test_admin_routes_need_system_admin),
	    cmocka_unit_test(test_owner_creates_user),
	    cmocka_unit_test(test_owner_cannot_create_system_admin),
	    cmocka_unit_test(test_create_user_duplicate_email),
	    cmocka_unit_test(test_create_user_invalid),
	    cmocka_unit_test(test_only_owners_create_users),
	    cmocka_unit_test(test_system_admin_creates_tenant_user),
	    cmocka_unit_test(test_owner_patches_user),
	    cmocka_unit_test(test_patch_user_of_other_tenant),
	    cmocka_unit_test(test_patch_user_unknown),
	    cmocka_unit_test(test_last_owner),
	    cmocka_unit_test(test_list_users_own_tenant),
	    cmocka_unit_test(test_impersonation),
	    cmocka_unit_test(test_impersonation_unknown_business),
	    cmocka_unit_test(test_impersonation_by_non_system_admin),
	    cmocka_unit_test(test_admin_audit),
	    cmocka_unit_test(test_tenant_audit),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
