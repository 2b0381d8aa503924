/*
 * test_wa_signature.c - X-Hub-Signature-256 (wa_signature, wa_signature_check)
 * against vectors computed independently with
 *   openssl dgst -sha256 -hmac KEY FILE
 * when the test was written, and the refusals: a wrong secret, a wrong or
 * changed body, a missing, empty, truncated, prefixless or non-hex header,
 * and a NULL or empty app secret (never "skip the check").
 */
#include "testutil.h"

#include <string.h>

#include "dialflow/whatsapp.h"

#define BODY1 "{\"object\":\"whatsapp_business_account\",\"entry\":[]}"
#define SIG1  "sha256=20e391a99a86fc5adf7e3a453236d20c906360291977896cf2f671e03bb95703"
#define FOX   "The quick brown fox jumps over the lazy dog"
/* The RFC 4231-style well-known vector: HMAC-SHA256("key", FOX). */
#define SIGFOX "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
#define SIG0   "sha256=8bb990c40a7d61cb97597a942125025be50ac8beb74436e3735b98893a7f6620"
#define SIGNUL "sha256=52b8be85e283c40e6539d3d2dc0383224d61a865c6a34c0be074151f28ce3f70"

static void test_vectors(void **state)
{
	char out[WA_SIGNATURE_LEN + 1];

	(void)state;
	assert_int_equal(wa_signature("app-secret-123", BODY1, strlen(BODY1), out, sizeof(out)), 0);
	assert_string_equal(out, SIG1);
	assert_int_equal(wa_signature("key", FOX, strlen(FOX), out, sizeof(out)), 0);
	assert_string_equal(out, SIGFOX);
	/* an empty body is still signed */
	assert_int_equal(wa_signature("k", "", 0, out, sizeof(out)), 0);
	assert_string_equal(out, SIG0);
	/* raw bytes, NUL included: the length counts, not strlen */
	assert_int_equal(wa_signature("s3cr3t", "a\0b", 3, out, sizeof(out)), 0);
	assert_string_equal(out, SIGNUL);
}

static void test_check_accepts(void **state)
{
	char upper[sizeof(SIG1)];

	(void)state;
	assert_true(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), SIG1));
	assert_true(wa_signature_check("key", FOX, strlen(FOX), SIGFOX));
	assert_true(wa_signature_check("s3cr3t", "a\0b", 3, SIGNUL));
	/* hex digits in upper case are the same signature */
	memcpy(upper, SIG1, sizeof(SIG1));
	for (char *c = upper + 7; *c; c++)
		if (*c >= 'a' && *c <= 'f')
			*c = (char)(*c - 'a' + 'A');
	assert_true(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), upper));
}

static void test_check_refuses(void **state)
{
	char bad[sizeof(SIG1)];

	(void)state;
	/* wrong secret, secret with a trailing space, changed body, cut body */
	assert_false(wa_signature_check("app-secret-124", BODY1, strlen(BODY1), SIG1));
	assert_false(wa_signature_check("app-secret-123 ", BODY1, strlen(BODY1), SIG1));
	assert_false(wa_signature_check("app-secret-123", BODY1 " ", strlen(BODY1) + 1, SIG1));
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1) - 1, SIG1));
	assert_false(wa_signature_check("s3cr3t", "a\0b", 1, SIGNUL));
	/* one flipped digit */
	memcpy(bad, SIG1, sizeof(SIG1));
	bad[20] = bad[20] == '0' ? '1' : '0';
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), bad));
	/* missing, empty, truncated, too long, no prefix, another algorithm, not hex */
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), NULL));
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), ""));
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1),
					"sha256=20e391a99a86fc5adf7e3a453236d20c"));
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), SIG1 "0"));
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), SIG1 + 7));
	assert_false(wa_signature_check(
	    "app-secret-123", BODY1, strlen(BODY1),
	    "sha1=20e391a99a86fc5adf7e3a453236d20c906360291977896cf2f671e03bb9570300"));
	memcpy(bad, SIG1, sizeof(SIG1));
	bad[30] = 'g';
	assert_false(wa_signature_check("app-secret-123", BODY1, strlen(BODY1), bad));
}

static void test_no_secret(void **state)
{
	char out[WA_SIGNATURE_LEN + 1];

	(void)state;
	/* an unconfigured secret never verifies anything, whatever is sent */
	assert_int_equal(wa_signature("", BODY1, strlen(BODY1), out, sizeof(out)), -1);
	assert_int_equal(wa_signature(NULL, BODY1, strlen(BODY1), out, sizeof(out)), -1);
	assert_false(wa_signature_check("", BODY1, strlen(BODY1), SIG1));
	assert_false(wa_signature_check(NULL, BODY1, strlen(BODY1), SIG1));
	/* the HMAC of an empty key is a real value, and still refused */
	assert_false(wa_signature_check(
	    "", "", 0, "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad"));
	/* too small an output buffer */
	assert_int_equal(wa_signature("k", "", 0, out, WA_SIGNATURE_LEN), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_check_accepts),
	    cmocka_unit_test(test_check_refuses),
	    cmocka_unit_test(test_no_secret),
	};

	return cmocka_run_group_tests_name("wa_signature", tests, NULL, NULL);
}
