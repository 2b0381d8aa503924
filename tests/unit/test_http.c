/* test_http.c - request helpers and the uniform JSON responses. */
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/config.h"
#include "dialflow/err.h"
#include "dialflow/http.h"

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

static void req_init(http_request_t *r, const char *query)
{
	memset(r, 0, sizeof(*r));
	r->arena = A;
	r->query = query;
}

static json_t *body_of(const http_request_t *r)
{
	return json_arena(A, json_loadb(r->resp_body, r->resp_len, 0, NULL));
}

static void test_methods(void **state)
{
	(void)state;
	assert_int_equal(http_method_parse("GET"), HTTP_GET);
	assert_int_equal(http_method_parse("PATCH"), HTTP_PATCH);
	assert_int_equal(http_method_parse("get"), HTTP_OTHER);
	assert_int_equal(http_method_parse(NULL), HTTP_OTHER);
	assert_string_equal(http_methods_str(A, HTTP_GET | HTTP_POST), "GET, POST");
}

static void test_media_types(void **state)
{
	(void)state;
	assert_int_equal(http_body_type("application/json"), HTTP_BODY_JSON);
	assert_int_equal(http_body_type("application/json; charset=utf-8"), HTTP_BODY_JSON);
	assert_int_equal(http_body_type("Application/JSON;charset=UTF-8"), HTTP_BODY_JSON);
	assert_int_equal(http_body_type("text/csv"), HTTP_BODY_CSV);
	assert_int_equal(http_body_type("application/json; charset=latin1"), 0);
	assert_int_equal(http_body_type("application/jsonx"), 0);
	assert_int_equal(http_body_type("text/plain"), 0);
	assert_int_equal(http_body_type(NULL), 0);
	assert_int_equal(http_body_type(""), 0);
}

static void test_query_decoding(void **state)
{
	http_request_t r;

	(void)state;
	req_init(&r, "a=1&name=J%C3%B6rg+X&empty=&flag&bad=%zz&nul=%00&cut=%4");
	assert_string_equal(http_query(&r, "a"), "1");
	assert_string_equal(http_query(&r, "name"), "J\xc3\xb6rg X");
	assert_string_equal(http_query(&r, "empty"), "");
	assert_string_equal(http_query(&r, "flag"), "");
	assert_null(http_query(&r, "bad"));
	assert_null(http_query(&r, "nul"));
	assert_null(http_query(&r, "cut"));
	assert_null(http_query(&r, "missing"));
	assert_null(http_query(&r, "nam"));
}

static void test_paging(void **state)
{
	http_request_t r;
	int64_t p, s;

	(void)state;
	req_init(&r, "");
	assert_int_equal(http_paging(&r, &p, &s), 0);
	assert_int_equal(p, 1);
	assert_int_equal(s, 50);
	req_init(&r, "page=3&page_size=200");
	assert_int_equal(http_paging(&r, &p, &s), 0);
	assert_int_equal(p, 3);
	assert_int_equal(s, 200);
	static const char *bad[] = {"page_size=0", "page_size=201",
				    "page=0",	   "page=-1",
				    "page=1'OR'1", "page_size=99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		req_init(&r, bad[i]);
		assert_int_equal(http_paging(&r, &p, &s), -1);
		assert_int_equal(r.status, 400);
	}
	arena_reset(A);
}

static void test_error_shapes(void **state)
{
	http_request_t r;
	json_t *b;
	json_fielderr_t fe;
	config_t cfg = {.db_retry_after = 2};

	(void)state;
	req_init(&r, "");
	r.cfg = &cfg;
	http_reply_forbidden(&r, "page_not_enabled", NULL);
	b = body_of(&r);
	assert_int_equal(r.status, 403);
	assert_string_equal(r.resp_ctype, "application/json; charset=utf-8");
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")),
			    "forbidden");
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(b, "error"), "reason")),
	    "page_not_enabled");

	http_reply_err(&r, ERR_UNAVAIL);
	b = body_of(&r);
	assert_int_equal(r.status, 503);
	assert_string_equal(json_string_value(json_object_get(json_object_get(b, "error"), "code")),
			    "db_unavailable");
	assert_int_equal(r.resp_nheaders, 1);
	assert_string_equal(r.resp_hname[0], "Retry-After");
	assert_string_equal(r.resp_hvalue[0], "2");

	json_fielderr_init(&fe, A);
	json_fielderr_add(&fe, "email", "is required");
	http_reply_invalid(&r, &fe);
	b = body_of(&r);
	assert_int_equal(r.status, 400);
	assert_int_equal(r.resp_nheaders, 0); /* a new reply drops old headers */
	assert_int_equal(json_array_size(json_object_get(json_object_get(b, "error"), "fields")),
			 1);

	http_reply_err(&r, ERR_INTERNAL);
	b = body_of(&r);
	assert_int_equal(r.status, 500);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(b, "error"), "message")),
	    "internal error");
	arena_reset(A);
}

static void test_err_mapping(void **state)
{
	(void)state;
	assert_int_equal(err_http_status(ERR_CONFLICT), 409);
	assert_int_equal(err_http_status(ERR_RETRY), 503);
	assert_int_equal(err_http_status(ERR_AUTH), 401);
	assert_int_equal(err_http_status(-99), 500);
	assert_string_equal(err_code_name(ERR_UNAVAIL), "db_unavailable");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_methods),	   cmocka_unit_test(test_media_types),
	    cmocka_unit_test(test_query_decoding), cmocka_unit_test(test_paging),
	    cmocka_unit_test(test_error_shapes),   cmocka_unit_test(test_err_mapping),
	};

	return cmocka_run_group_tests_name("http", tests, setup, teardown);
}
