/*
 * test_twilio_signature.c - X-Twilio-Signature (provider.h): Twilio's own
 * worked examples as test vectors, then every way a forger could tamper with
 * a signed request, the webhook URL helper, and the webhooks' verification
 * step (webhooks.h) on hand-made requests: it refuses, never skips.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/config.h"
#include "dialflow/log.h"
#include "dialflow/provider.h"
#include "dialflow/webhooks.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The worked example of Twilio's security documentation ("Validating
 * requests"): token 12345, a POST to https://mycompany.com/myapp.php?foo=1&bar=2
 * with five parameters. The names are listed here out of order on purpose.
 */
static const char *const doc_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
static const char *const doc_names[] = {"To", "Digits", "CallSid", "From", "Caller"};
static const char *const doc_values[] = {"+18005551212", "1234", "CA1234567890ABCDE",
					 "+12349013030", "+12349013030"};
#define DOC_SIGNATURE "0/KCTR6DLpKmkAf8muzZqo1nDgQ="

static void test_twilio_docs_example(void **state)
{
	char sig[64];

	(void)state;
	assert_int_equal(twilio_signature("12345", doc_url, doc_names, doc_values, N(doc_names),
					  sig, sizeof(sig)),
			 0);
	assert_string_equal(sig, DOC_SIGNATURE);
	assert_true(twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names),
					   DOC_SIGNATURE));
}

/* The same example in earlier editions of the documentation (other phone numbers). */
static void test_twilio_docs_example_earlier_edition(void **state)
{
	static const char *const values[] = {"+18005551212", "1234", "CA1234567890ABCDE",
					     "+14158675309", "+14158675309"};
	char sig[64];

	(void)state;
	assert_int_equal(
	    twilio_signature("12345", doc_url, doc_names, values, N(doc_names), sig, sizeof(sig)),
	    0);
	assert_string_equal(sig, "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
}

/* A real voice request from twilio-ruby's validator tests: many names, some empty values. */
static void test_voice_request_with_empty_values(void **state)
{
	static const char *const names[] = {
	    "ToState",	     "CalledState", "Direction",     "FromState",   "AccountSid",
	    "Caller",	     "CallerZip",   "CallerCountry", "From",	    "FromCity",
	    "CallerCity",    "To",	    "FromZip",	     "FromCountry", "ToCity",
	    "CallStatus",    "CalledCity",  "CallerState",   "CalledZip",   "ToZip",
	    "ToCountry",     "CallSid",	    "CalledCountry", "Called",	    "ApiVersion",
	    "ApplicationSid"};
	static const char *const values[] = {"California",
					     "California",
					     "inbound",
					     "CA",
					     "ACba8bc05eacf94afdae398e642c9cc32d",
					     "+14153595711",
					     "94108",
					     "US",
					     "+14153595711",
					     "SAN FRANCISCO",
					     "SAN FRANCISCO",
					     "+14157669926",
					     "94108",
					     "US",
					     "",
					     "ringing",
					     "",
					     "CA",
					     "",
					     "",
					     "US",
					     "CA136d09cd59a3c0ec8dbff44da5c03f31",
					     "US",
					     "+14157669926",
					     "2010-04-01",
					     "AP44efecad51364e80b133bb7c07eb8204"};

	(void)state;
	assert_int_equal(N(names), N(values));
	assert_true(twilio_signature_check("2bd9e9638872de601313dc77410d3b23",
					   "http://twiliotests.heroku.com/validate/voice", names,
					   values, N(names), "oVb2kXoVy8GEfwBDjR8bk/ZZ6eA="));
}

/* No parameters: the URL alone is signed (a GET, or an empty POST). */
static void test_url_only(void **state)
{
	char sig[64];

	(void)state;
	assert_int_equal(twilio_signature("12345", doc_url, NULL, NULL, 0, sig, sizeof(sig)), 0);
	assert_string_equal(sig, "zYQTYrRWXE7LtzbG4PfP7/bkkGo=");
}

static void test_tampered_params(void **state)
{
	const char *values[N(doc_values)];
	const char *names[N(doc_names) + 1];
	const char *more[N(doc_values) + 1];

	(void)state;
	/* one changed value */
	memcpy(values, doc_values, sizeof(values));
	values[1] = "1235";
	assert_false(twilio_signature_check("12345", doc_url, doc_names, values, N(doc_names),
					    DOC_SIGNATURE));
	/* a value moved to another name */
	memcpy(values, doc_values, sizeof(values));
	values[3] = doc_values[4];
	values[4] = "+12349013031";
	assert_false(twilio_signature_check("12345", doc_url, doc_names, values, N(doc_names),
					    DOC_SIGNATURE));
	/* one parameter dropped */
	assert_false(twilio_signature_check("12345", doc_url, doc_names, doc_values,
					    N(doc_names) - 1, DOC_SIGNATURE));
	/* one parameter added, even an empty one */
	memcpy(names, doc_names, sizeof(doc_names));
	memcpy(more, doc_values, sizeof(doc_values));
	names[N(doc_names)] = "CallStatus";
	more[N(doc_values)] = "";
	assert_false(
	    twilio_signature_check("12345", doc_url, names, more, N(names), DOC_SIGNATURE));
	/* a name's case changed */
	memcpy(names, doc_names, sizeof(doc_names));
	names[0] = "to";
	assert_false(twilio_signature_check("12345", doc_url, names, doc_values, N(doc_names),
					    DOC_SIGNATURE));
}

static void test_tampered_url_token_signature(void **state)
{
	(void)state;
	assert_false(twilio_signature_check("12345", "http://mycompany.com/myapp.php?foo=1&bar=2",
					    doc_names, doc_values, N(doc_names), DOC_SIGNATURE));
	assert_false(twilio_signature_check("12345", "https://mycompany.com/myapp.php?foo=1&bar=3",
					    doc_names, doc_values, N(doc_names), DOC_SIGNATURE));
	assert_false(twilio_signature_check("12345", "https://mycompany.com/myapp.php", doc_names,
					    doc_values, N(doc_names), DOC_SIGNATURE));
	assert_false(twilio_signature_check("12346", doc_url, doc_names, doc_values, N(doc_names),
					    DOC_SIGNATURE));
	/* the signature itself: one character, its case, its length, missing */
	assert_false(twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names),
					    "0/KCTR6DLpKmkAf8muzZqo1nDgR="));
	assert_false(twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names),
					    "0/kctr6dlpkmkaf8muzzqo1ndgq="));
	assert_false(twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names),
					    "0/KCTR6DLpKmkAf8muzZqo1nDgQ"));
	assert_false(twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names),
					    DOC_SIGNATURE " "));
	assert_false(
	    twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names), ""));
	assert_false(
	    twilio_signature_check("12345", doc_url, doc_names, doc_values, N(doc_names), NULL));
}

/* An empty or missing token never validates anything: refused, never skipped. */
static void test_no_token(void **state)
{
	char sig[64];

	(void)state;
	assert_int_equal(
	    twilio_signature("", doc_url, doc_names, doc_values, N(doc_names), sig, sizeof(sig)),
	    -1);
	assert_int_equal(
	    twilio_signature(NULL, doc_url, doc_names, doc_values, N(doc_names), sig, sizeof(sig)),
	    -1);
	assert_false(twilio_signature_check("", doc_url, doc_names, doc_values, N(doc_names),
					    DOC_SIGNATURE));
	assert_false(twilio_signature_check(NULL, doc_url, doc_names, doc_values, N(doc_names),
					    DOC_SIGNATURE));
	assert_false(twilio_signature_check("12345", NULL, doc_names, doc_values, N(doc_names),
					    DOC_SIGNATURE));
}

static void test_bad_arguments(void **state)
{
	static const char *const bad_values[] = {"+18005551212", NULL};
	char sig[64];

	(void)state;
	/* room for 28 base64 characters and the NUL */
	assert_int_equal(
	    twilio_signature("12345", doc_url, doc_names, doc_values, N(doc_names), sig, 28), -1);
	assert_int_equal(
	    twilio_signature("12345", doc_url, doc_names, doc_values, N(doc_names), sig, 29), 0);
	assert_string_equal(sig, DOC_SIGNATURE);
	assert_int_equal(twilio_signature("12345", doc_url, NULL, doc_values, 1, sig, sizeof(sig)),
			 -1);
	assert_int_equal(
	    twilio_signature("12345", doc_url, doc_names, bad_values, 2, sig, sizeof(sig)), -1);
}

/* A repeated name (StatusCallbackEvent) is ordered by value, so the order sent does not matter. */
static void test_repeated_names(void **state)
{
	static const char *const names[] = {"StatusCallbackEvent", "To", "StatusCallbackEvent"};
	static const char *const v1[] = {"ringing", "+15550001", "answered"};
	static const char *const v2[] = {"answered", "+15550001", "ringing"};
	char s1[64], s2[64];

	(void)state;
	assert_int_equal(twilio_signature("tok", "https://h/x", names, v1, 3, s1, sizeof(s1)), 0);
	assert_int_equal(twilio_signature("tok", "https://h/x", names, v2, 3, s2, sizeof(s2)), 0);
	assert_string_equal(s1, s2);
	assert_false(twilio_signature_check("tok", "https://h/x", names, v1, 2, s1));
}

static void test_webhook_url(void **state)
{
	char out[128];

	(void)state;
	assert_int_equal(
	    twilio_webhook_url("https://localhost:8443", TWILIO_STATUS_PATH, out, sizeof(out)), 0);
	assert_string_equal(out, "https://localhost:8443/webhooks/twilio/call-status");
	assert_int_equal(
	    twilio_webhook_url("https://example.com/base//", TWILIO_VOICE_PATH, out, sizeof(out)),
	    0);
	assert_string_equal(out, "https://example.com/base/webhooks/twilio/voice");
	assert_int_equal(twilio_webhook_url("https://localhost:8443", TWILIO_VOICE_PATH, out, 20),
			 -1);
	assert_int_equal(twilio_webhook_url(NULL, TWILIO_VOICE_PATH, out, sizeof(out)), -1);
}

/* --- the webhooks' verification ------------------------------------------ */

#define HOOK_TOKEN   "hook-token-0123"
#define HOOK_ACCOUNT "AC11111111111111111111111111111111"
#define HOOK_BODY    "AccountSid=" HOOK_ACCOUNT "&CallSid=CA42&CallStatus=ringing&To=%2B15550001"

typedef struct hook_fx {
	arena_t *a;
	config_t cfg;
	char sig_env[96];
	const char *envp[2];
	http_request_t req;
} hook_fx_t;

/* A POST of HOOK_BODY to path?query, signed over url_signed (NULL: unsigned). */
static void hook_req(hook_fx_t *h, const char *public_url, const char *path, const char *query,
		     const char *url_signed, const char *body)
{
	static const char *const names[] = {"AccountSid", "CallSid", "CallStatus", "To"};
	static const char *const values[] = {HOOK_ACCOUNT, "CA42", "ringing", "+15550001"};
	char sig[64];

	memset(&h->req, 0, sizeof(h->req));
	memset(&h->cfg, 0, sizeof(h->cfg));
	h->cfg.public_url = (char *)public_url;
	h->cfg.twilio_auth_token = (char *)HOOK_TOKEN;
	h->cfg.twilio_account_sid = (char *)HOOK_ACCOUNT;
	h->envp[0] = NULL;
	h->envp[1] = NULL;
	if (url_signed != NULL) {
		assert_int_equal(
		    twilio_signature(HOOK_TOKEN, url_signed, names, values, 4, sig, sizeof(sig)),
		    0);
		snprintf(h->sig_env, sizeof(h->sig_env), "HTTP_X_TWILIO_SIGNATURE=%s", sig);
		h->envp[0] = h->sig_env;
	}
	h->req.arena = h->a;
	h->req.cfg = &h->cfg;
	h->req.method = HTTP_POST;
	h->req.path = path;
	h->req.query = query;
	h->req.envp = h->envp;
	h->req.body = body;
	h->req.body_len = strlen(body);
	h->req.content_type = "application/x-www-form-urlencoded";
	h->req.body_type = HTTP_BODY_FORM;
}

static int hook_setup(void **state)
{
	hook_fx_t *h = calloc(1, sizeof(*h));

	h->a = arena_new(8192);
	(void)log_set_level("error"); /* the refusals are logged at warn */
	*state = h;
	return 0;
}

static int hook_teardown(void **state)
{
	hook_fx_t *h = *state;

	arena_free(h->a);
	free(h);
	return 0;
}

static int verify(hook_fx_t *h, const char **why)
{
	form_t f;

	return webhook_twilio_verify(&h->req, &f, why);
}

static void test_verify_accepts(void **state)
{
	hook_fx_t *h = *state;
	const char *why;

	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_VERIFIED);
	/* a trailing slash of the configured URL is not part of what Twilio signs */
	hook_req(h, "https://hooks.example.com/", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_VERIFIED);
	/* the query string is signed */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "run=7",
		 "https://hooks.example.com" TWILIO_STATUS_PATH "?run=7", HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_VERIFIED);
	/* the scheme's default port, written or not, either way round */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com:443" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_VERIFIED);
	hook_req(h, "https://hooks.example.com:443", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_VERIFIED);
}

static void test_verify_refuses(void **state)
{
	hook_fx_t *h = *state;
	const char *why;

	/* no auth token configured: refused, never skipped */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	h->cfg.twilio_auth_token = NULL;
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	assert_string_equal(why, "auth_token_not_configured");
	h->cfg.twilio_auth_token = (char *)"";
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	/* no signature */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "", NULL, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	assert_string_equal(why, "missing_signature");
	/* signed for another host, another port, another path, without the query */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://evil.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	assert_string_equal(why, "bad_signature");
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com:8443" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	hook_req(h, "https://hooks.example.com", TWILIO_VOICE_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "run=7",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	/* a body changed after signing */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH,
		 "AccountSid=" HOOK_ACCOUNT "&CallSid=CA42&CallStatus=completed&To=%2B15550001");
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	/* another account, signed with our token all the same */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, HOOK_BODY);
	h->cfg.twilio_account_sid = (char *)"AC22222222222222222222222222222222";
	assert_int_equal(verify(h, &why), WEBHOOK_FORBIDDEN);
	assert_string_equal(why, "account_mismatch");
	/* a malformed body cannot be verified */
	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "",
		 "https://hooks.example.com" TWILIO_STATUS_PATH, "a=%zz");
	assert_int_equal(verify(h, &why), WEBHOOK_BAD_FORM);
}

/* The handlers answer a refusal before they touch the database (there is none here). */
static void test_handlers_refuse_unsigned(void **state)
{
	hook_fx_t *h = *state;

	hook_req(h, "https://hooks.example.com", TWILIO_STATUS_PATH, "", NULL, HOOK_BODY);
	assert_int_equal(webhook_twilio_status(&h->req), 0);
	assert_int_equal(h->req.status, 403);
	assert_non_null(strstr(h->req.resp_body, "\"forbidden\""));
	hook_req(h, "https://hooks.example.com", TWILIO_VOICE_PATH, "", NULL, HOOK_BODY);
	h->cfg.twilio_auth_token = NULL;
	assert_int_equal(webhook_twilio_voice(&h->req), 0);
	assert_int_equal(h->req.status, 403);
	assert_string_equal(h->req.resp_ctype, "text/xml; charset=utf-8");
	assert_non_null(strstr(h->req.resp_body, "<Hangup/>"));
	/* the voice webhook answers TwiML even to another media type */
	hook_req(h, "https://hooks.example.com", TWILIO_VOICE_PATH, "", NULL, "{}");
	h->req.body_type = HTTP_BODY_JSON;
	assert_int_equal(webhook_twilio_voice(&h->req), 0);
	assert_int_equal(h->req.status, 415);
	assert_non_null(strstr(h->req.resp_body, "<Response><Hangup/></Response>"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_twilio_docs_example),
	    cmocka_unit_test(test_twilio_docs_example_earlier_edition),
	    cmocka_unit_test(test_voice_request_with_empty_values),
	    cmocka_unit_test(test_url_only),
	    cmocka_unit_test(test_tampered_params),
	    cmocka_unit_test(test_tampered_url_token_signature),
	    cmocka_unit_test(test_no_token),
	    cmocka_unit_test(test_bad_arguments),
	    cmocka_unit_test(test_repeated_names),
	    cmocka_unit_test(test_webhook_url),
	    cmocka_unit_test_setup_teardown(test_verify_accepts, hook_setup, hook_teardown),
	    cmocka_unit_test_setup_teardown(test_verify_refuses, hook_setup, hook_teardown),
	    cmocka_unit_test_setup_teardown(test_handlers_refuse_unsigned, hook_setup,
					    hook_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
