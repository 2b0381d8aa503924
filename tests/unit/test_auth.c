/* test_auth.c - roles, pages, yescrypt passwords, and the principal checks. */
#include <stdlib.h>
#include <string.h>

#include "../unit/testutil.h"
#include "dialflow/auth.h"

static const auth_claims_t claims = {.user_id = 7, .ver = 3};

static auth_user_row_t good_row(void)
{
	auth_user_row_t u = {.found = true,
			     .is_active = true,
			     .token_version = 3,
			     .role = ROLE_ADMIN,
			     .business_id = 1,
			     .business_active = true,
			     .business_found = true};
	return u;
}

static void test_roles_order_and_names(void **state)
{
	(void)state;
	assert_true(ROLE_AGENT < ROLE_ADMIN && ROLE_ADMIN < ROLE_OWNER &&
		    ROLE_OWNER < ROLE_SYSTEM_ADMIN);
	assert_int_equal(auth_role_parse("owner"), ROLE_OWNER);
	assert_int_equal(auth_role_parse("Owner"), ROLE_NONE);
	assert_int_equal(auth_role_parse("root"), ROLE_NONE);
	assert_int_equal(auth_role_parse(NULL), ROLE_NONE);
	assert_string_equal(auth_role_name(ROLE_SYSTEM_ADMIN), "system_admin");
	assert_string_equal(auth_role_name((auth_role_t)99), "none");
}

static void test_page_registry(void **state)
{
	const char *keys[] = {"settings", "calls_outbound"};
	auth_principal_t p = {.pages = keys, .npages = 2};

	(void)state;
	assert_int_equal(auth_page_find("calls_outbound")->min_role, ROLE_AGENT);
	assert_int_equal(auth_page_find("whatsapp_flows")->min_role, ROLE_AGENT);
	assert_int_equal(auth_page_find("contacts")->min_role, ROLE_AGENT);
	assert_int_equal(auth_page_find("settings")->min_role, ROLE_OWNER);
	assert_null(auth_page_find("billing"));
	assert_null(auth_page_find(NULL));
	assert_true(auth_has_page(&p, "settings"));
	assert_false(auth_has_page(&p, "whatsapp_flows"));
}

static void test_password_yescrypt(void **state)
{
	char *h = auth_password_hash("correct horse battery");

	(void)state;
	assert_non_null(h);
	assert_memory_equal(h, "$y$", 3);
	assert_int_equal(auth_password_verify("correct horse battery", h), 0);
	assert_int_equal(auth_password_verify("correct horse batterY", h), -1);
	assert_int_equal(auth_password_verify("", h), -1);
	assert_int_equal(auth_password_verify("x", NULL), -1);
	assert_int_equal(auth_password_verify("x", "plaintext"), -1);
	/* same password, different salt */
	{
		char *h2 = auth_password_hash("correct horse battery");

		assert_string_not_equal(h, h2);
		free(h2);
	}
	free(h);
	auth_password_dummy_verify("whatever"); /* must not crash, costs one hash */
	assert_non_null(auth_password_weak("short"));
	assert_null(auth_password_weak("long enough pw"));
}

static void test_principal_admits_live_user(void **state)
{
	auth_user_row_t u = good_row();
	const char *why = NULL;

	(void)state;
	assert_int_equal(auth_principal_check(&claims, &u, 0, &why), 0);
}

static void test_principal_rejects_stale_token_version(void **state)
{
	auth_user_row_t u = good_row();
	const char *why = NULL;

	(void)state;
	u.token_version = 4; /* bumped by logout or a role change */
	assert_int_equal(auth_principal_check(&claims, &u, 0, &why), -1);
	assert_string_equal(why, "token_version");
}

static void test_principal_rejects_inactive_user(void **state)
{
	auth_user_row_t u = good_row();
	const char *why = NULL;

	(void)state;
	u.is_active = false;
	assert_int_equal(auth_principal_check(&claims, &u, 0, &why), -1);
	assert_string_equal(why, "inactive");
}

static void test_principal_rejects_unknown_user(void **state)
{
	auth_user_row_t u = {0};
	const char *why = NULL;

	(void)state;
	assert_int_equal(auth_principal_check(&claims, &u, 0, &why), -1);
	assert_string_equal(why, "user_not_found");
}

static void test_impersonation_only_for_system_admin(void **state)
{
	auth_user_row_t u = good_row();
	const char *why = NULL;

	(void)state;
	assert_int_equal(auth_principal_check(&claims, &u, 5, &why), -1);
	assert_string_equal(why, "impersonation_denied");
	u.role = ROLE_SYSTEM_ADMIN;
	u.business_id = 0;
	assert_int_equal(auth_principal_check(&claims, &u, 5, &why), 0);
	u.business_found = false;
	assert_int_equal(auth_principal_check(&claims, &u, 5, &why), -1);
	assert_string_equal(why, "no_such_business");
}

static void test_inactive_business(void **state)
{
	auth_user_row_t u = good_row();
	const char *why = NULL;

	(void)state;
	u.business_active = false;
	assert_int_equal(auth_principal_check(&claims, &u, 0, &why), -1);
	assert_string_equal(why, "business_inactive");
}

static void test_token_helpers(void **state)
{
	char hex[65], a[65], b[65];

	(void)state;
	auth_sha256_hex("abc", 3, hex);
	assert_string_equal(hex,
			    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(auth_random_token(a, sizeof(a), 32), 0);
	assert_int_equal(auth_random_token(b, sizeof(b), 32), 0);
	assert_int_equal(strlen(a), 64);
	assert_string_not_equal(a, b);
	assert_int_equal(auth_random_token(a, 10, 32), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roles_order_and_names),
	    cmocka_unit_test(test_page_registry),
	    cmocka_unit_test(test_password_yescrypt),
	    cmocka_unit_test(test_principal_admits_live_user),
	    cmocka_unit_test(test_principal_rejects_stale_token_version),
	    cmocka_unit_test(test_principal_rejects_inactive_user),
	    cmocka_unit_test(test_principal_rejects_unknown_user),
	    cmocka_unit_test(test_impersonation_only_for_system_admin),
	    cmocka_unit_test(test_inactive_business),
	    cmocka_unit_test(test_token_helpers),
	};

	return cmocka_run_group_tests_name("auth", tests, NULL, NULL);
}
