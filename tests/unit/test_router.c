/* test_router.c - typed segments, 404/405, and the real route table's guards. */
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/api.h"
#include "dialflow/router.h"

static int h_a(http_request_t *r)
{
	(void)r;
	return 0;
}

static int h_b(http_request_t *r)
{
	(void)r;
	return 0;
}

static const http_route_t routes[] = {
    {HTTP_GET, "/api/items", h_a, {0, 0, NULL}, 0},
    {HTTP_POST, "/api/items", h_b, {0, 0, NULL}, 0},
    {HTTP_GET | HTTP_PUT, "/api/items/{id:int}", h_a, {0, 0, NULL}, 0},
    {HTTP_POST, "/api/items/{id:int}/tags/{tag:str}", h_b, {0, 0, NULL}, 0},
    {HTTP_GET, "/api/items/active", h_b, {0, 0, NULL}, 0},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

static arena_t *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(4096);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static int match(http_method_t m, const char *path, const http_route_t **out, unsigned *allow,
		 http_request_t *r)
{
	memset(r, 0, sizeof(*r));
	r->arena = A;
	r->method = m;
	r->path = path;
	return http_route_match(routes, NROUTES, r, out, allow);
}

static void test_literal_and_typed(void **state)
{
	const http_route_t *rt;
	unsigned allow;
	http_request_t r;

	(void)state;
	assert_int_equal(match(HTTP_GET, "/api/items", &rt, &allow, &r), ROUTE_FOUND);
	assert_ptr_equal(rt, &routes[0]);
	assert_int_equal(match(HTTP_POST, "/api/items", &rt, &allow, &r), ROUTE_FOUND);
	assert_ptr_equal(rt, &routes[1]);
	assert_int_equal(match(HTTP_GET, "/api/items/42", &rt, &allow, &r), ROUTE_FOUND);
	assert_int_equal(r.nparams, 1);
	assert_int_equal(r.params[0], 42);
	assert_int_equal(match(HTTP_POST, "/api/items/7/tags/vip-1.x", &rt, &allow, &r),
			 ROUTE_FOUND);
	assert_int_equal(r.params[0], 7);
	assert_string_equal(r.sparams[1], "vip-1.x");
	/* a literal segment never matches an {x:int} route */
	assert_int_equal(match(HTTP_GET, "/api/items/active", &rt, &allow, &r), ROUTE_FOUND);
	assert_ptr_equal(rt, &routes[4]);
	assert_int_equal(match(HTTP_GET, "/api/items/", &rt, &allow, &r), ROUTE_FOUND);
}

static void test_hostile_segments_do_not_match(void **state)
{
	static const char *paths[] = {
	    "/api/items/1'OR'1'='1",
	    "/api/items/-1",
	    "/api/items/0",
	    "/api/items/99999999999999999999",
	    "/api/items/01",
	    "/api/items/1%20",
	    "/api/items/1/",
	    "/api/items//1",
	    "/api/items/1/tags/a'b",
	    "/api/items/1/tags/",
	    "api/items",
	    "",
	    "/api/items/1/tags/%27",
	    "/api/items/+1",
	    "/API/items",
	};
	const http_route_t *rt;
	unsigned allow;
	http_request_t r;

	(void)state;
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		int rc = match(HTTP_GET, paths[i], &rt, &allow, &r);

		if (strcmp(paths[i], "/api/items/1/") == 0) {
			assert_int_equal(rc, ROUTE_FOUND); /* one trailing slash is tolerated */
			continue;
		}
		assert_int_equal(rc, ROUTE_NOT_FOUND);
	}
	{
		char longseg[300] = "/api/items/1/tags/";
		size_t n = strlen(longseg);

		memset(longseg + n, 'a', 200);
		longseg[n + 200] = '\0';
		assert_int_equal(match(HTTP_POST, longseg, &rt, &allow, &r), ROUTE_NOT_FOUND);
	}
}

static void test_wrong_method_gives_allow(void **state)
{
	const http_route_t *rt;
	unsigned allow;
	http_request_t r;

	(void)state;
	assert_int_equal(match(HTTP_DELETE, "/api/items/5", &rt, &allow, &r), ROUTE_BAD_METHOD);
	assert_int_equal(allow, HTTP_GET | HTTP_PUT);
	assert_string_equal(http_methods_str(A, allow), "GET, PUT");
	assert_int_equal(match(HTTP_DELETE, "/api/items", &rt, &allow, &r), ROUTE_BAD_METHOD);
	assert_int_equal(allow, HTTP_GET | HTTP_POST);
	/* HEAD is served by GET routes */
	assert_int_equal(match(HTTP_HEAD, "/api/items", &rt, &allow, &r), ROUTE_FOUND);
}

/* The production table: every route but health and login/refresh needs a token,
 * admin routes are system_admin only, and the audit page is guarded. */
static void test_api_route_guards(void **state)
{
	(void)state;
	for (size_t t = 0; t < api_ntables; t++)
		for (size_t i = 0; i < *api_route_tables[t].n; i++) {
			const http_route_t *rt = &api_route_tables[t].routes[i];
			/* webhooks authenticate by their provider's signature instead */
			bool public = strcmp(rt->pattern, "/api/health") == 0 ||
				      /* loopback only, by nginx */
				      strcmp(rt->pattern, "/metrics") == 0 ||
				      strcmp(rt->pattern, "/api/auth/login") == 0 ||
				      strcmp(rt->pattern, "/api/auth/refresh") == 0 ||
				      strncmp(rt->pattern, "/webhooks/", 10) == 0;

			if (public)
				assert_int_equal(rt->guard.flags & (GUARD_USER | GUARD_SYSADMIN),
						 0);
			else
				assert_true(rt->guard.flags & GUARD_USER);
			if (strncmp(rt->pattern, "/api/admin/", 11) == 0) {
				assert_true(rt->guard.flags & GUARD_SYSADMIN);
				assert_int_equal(rt->guard.min_role, ROLE_SYSTEM_ADMIN);
			}
			if (strcmp(rt->pattern, "/api/audit") == 0) {
				assert_string_equal(rt->guard.page, "settings");
				assert_int_equal(rt->guard.min_role, ROLE_OWNER);
			}
			if (rt->methods & (HTTP_POST | HTTP_PUT | HTTP_PATCH))
				if (strcmp(rt->pattern, "/api/auth/logout") != 0 &&
				    strncmp(rt->pattern, "/webhooks/", 10) != 0 &&
				    !strstr(rt->pattern, "cancel") &&
				    /* body-less actions on a flow or a contact */
				    !strstr(rt->pattern, "activate") &&
				    !strstr(rt->pattern, "/handover/resolve"))
					assert_true(rt->body_types & HTTP_BODY_JSON);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_literal_and_typed),
	    cmocka_unit_test(test_hostile_segments_do_not_match),
	    cmocka_unit_test(test_wrong_method_gives_allow),
	    cmocka_unit_test(test_api_route_guards),
	};

	return cmocka_run_group_tests_name("router", tests, setup, teardown);
}
