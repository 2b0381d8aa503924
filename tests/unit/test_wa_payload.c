/*
 * test_wa_payload.c - the WhatsApp webhook payload parser (wa_payload.c):
 * every inbound message type the engine reads (text, interactive button and
 * list replies, nfm_reply form answers, template quick-reply buttons, media
 * with captions, location, types we do not know), statuses (sent, delivered,
 * read, failed with errors; unknown kinds skipped), several entries and
 * phone numbers in one payload, the pre-signature id scan, and garbage.
 */
#include "testutil.h"

#include <stdio.h>
#include <string.h>

#include "dialflow/arena.h"
#include "dialflow/whatsapp.h"

#define HEAD                                                                                       \
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\","        \
	"\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","      \
	"\"metadata\":{\"display_phone_number\":\"15550783881\",\"phone_number_id\":"              \
	"\"106540352242922\"},"
#define TAIL "}}]}]}"
#define CONTACT                                                                                    \
	"\"contacts\":[{\"profile\":{\"name\":\"Sheena Nelson\"},\"wa_id\":\"16505551234\"}],"
#define MSG(body)                                                                                  \
	HEAD CONTACT "\"messages\":[{\"from\":\"16505551234\",\"id\":\"wamid.ABC=\","              \
		     "\"timestamp\":\"1749416383\"," body "}]" TAIL

static arena_t *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(8192);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static const wa_message_t *one_message(const char *body)
{
	static wa_webhook_t wh;
	const char *why = NULL;

	arena_reset(A);
	if (wa_webhook_parse(A, body, strlen(body), &wh, &why) != 0)
		fail_msg("parse failed: %s", why);
	assert_int_equal(wh.nmessages, 1);
	assert_int_equal(wh.nstatuses, 0);
	assert_int_equal(wh.naccounts, 1);
	assert_string_equal(wh.accounts[0], "106540352242922");
	return &wh.messages[0];
}

static void test_text(void **state)
{
	const wa_message_t *m =
	    one_message(MSG("\"type\":\"text\",\"text\":{\"body\":\"Does it come in blue?\"}"));

	(void)state;
	assert_string_equal(m->phone_number_id, "106540352242922");
	assert_string_equal(m->wamid, "wamid.ABC=");
	assert_string_equal(m->from, "16505551234");
	assert_string_equal(m->type, "text");
	assert_string_equal(m->profile_name, "Sheena Nelson");
	assert_int_equal(m->timestamp, 1749416383);
	assert_string_equal(m->text, "Does it come in blue?");
	assert_null(m->reply_id);
	assert_true(json_is_object(m->raw));
}

static void test_interactive(void **state)
{
	const wa_message_t *m;

	(void)state;
	m = one_message(MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
			    "\"button_reply\":{\"id\":\"opt_yes\",\"title\":\"Yes\"}}"));
	assert_string_equal(m->text, "Yes");
	assert_string_equal(m->reply_id, "opt_yes");
	m = one_message(MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"list_reply\","
			    "\"list_reply\":{\"id\":\"row_2\",\"title\":\"Solar\","
			    "\"description\":\"panels\"}}"));
	assert_string_equal(m->text, "Solar");
	assert_string_equal(m->reply_id, "row_2");
	/* a WhatsApp Flow form answer: the engine reads response_json from raw */
	m = one_message(
	    MSG("\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
		"\"nfm_reply\":{\"name\":\"flow\",\"body\":\"Sent\","
		"\"response_json\":\"{\\\"flow_token\\\":\\\"t\\\",\\\"a\\\":\\\"1\\\"}\"}}"));
	assert_string_equal(m->type, "interactive");
	assert_string_equal(m->text, "Sent");
	assert_null(m->reply_id);
	assert_true(json_is_string(
	    json_object_get(json_object_get(json_object_get(m->raw, "interactive"), "nfm_reply"),
			    "response_json")));
}

static void test_button_media_location_unknown(void **state)
{
	const wa_message_t *m;

	(void)state;
	m = one_message(
	    MSG("\"type\":\"button\",\"button\":{\"text\":\"Stop\",\"payload\":\"STOP\"}"));
	assert_string_equal(m->text, "Stop");
	assert_string_equal(m->reply_id, "STOP");
	m = one_message(MSG("\"type\":\"image\",\"image\":{\"id\":\"1479537139650973\","
			    "\"mime_type\":\"image/jpeg\",\"caption\":\"my roof\"}"));
	assert_string_equal(m->text, "my roof");
	m = one_message(
	    MSG("\"type\":\"document\",\"document\":{\"id\":\"1\",\"filename\":\"a.pdf\"}"));
	assert_null(m->text);
	m = one_message(MSG("\"type\":\"location\",\"location\":{\"latitude\":-17.8,"
			    "\"longitude\":31.05,\"name\":\"Home\"}"));
	assert_string_equal(m->type, "location");
	assert_null(m->text);
	m = one_message(MSG("\"type\":\"unsupported\",\"errors\":[{\"code\":131051}]"));
	assert_string_equal(m->type, "unsupported");
	/* a numeric timestamp is read; a malformed one is 0, not an error */
	m = one_message(HEAD "\"messages\":[{\"from\":\"16505551234\",\"id\":\"w1\",\"timestamp\":"
			     "17,\"type\":\"text\",\"text\":{\"body\":\"x\"}}]" TAIL);
	assert_int_equal(m->timestamp, 17);
	assert_null(m->profile_name); /* no contacts[] */
	m = one_message(HEAD "\"messages\":[{\"from\":\"16505551234\",\"id\":\"w1\",\"timestamp\":"
			     "\"soon\",\"type\":\"text\",\"text\":{\"body\":\"x\"}}]" TAIL);
	assert_int_equal(m->timestamp, 0);
}

static void test_statuses(void **state)
{
	const char *body =
	    HEAD "\"statuses\":["
		 "{\"id\":\"wamid.S1\",\"status\":\"sent\",\"timestamp\":\"1750000000\","
		 "\"recipient_id\":\"16505551234\",\"conversation\":{\"id\":\"c\"}},"
		 "{\"id\":\"wamid.S1\",\"status\":\"delivered\",\"timestamp\":\"1750000001\","
		 "\"recipient_id\":\"16505551234\"},"
		 "{\"id\":\"wamid.S1\",\"status\":\"read\",\"timestamp\":\"1750000002\"},"
		 "{\"id\":\"wamid.S2\",\"status\":\"deleted\"},"
		 "{\"id\":\"wamid.S3\",\"status\":\"failed\",\"timestamp\":\"1750000003\","
		 "\"recipient_id\":\"+1 650\",\"errors\":[{\"code\":131026,"
		 "\"title\":\"Message undeliverable\"}]}]" TAIL;
	wa_webhook_t wh;
	const char *why = NULL;

	(void)state;
	arena_reset(A);
	assert_int_equal(wa_webhook_parse(A, body, strlen(body), &wh, &why), 0);
	assert_int_equal(wh.nmessages, 0);
	assert_int_equal(wh.nstatuses, 4); /* "deleted" is skipped */
	assert_string_equal(wh.statuses[0].status, "sent");
	assert_string_equal(wh.statuses[0].recipient_id, "16505551234");
	assert_int_equal(wh.statuses[0].timestamp, 1750000000);
	assert_null(wh.statuses[0].errors);
	assert_string_equal(wh.statuses[1].status, "delivered");
	assert_string_equal(wh.statuses[2].status, "read");
	assert_null(wh.statuses[2].recipient_id);
	assert_string_equal(wh.statuses[3].wamid, "wamid.S3");
	assert_string_equal(wh.statuses[3].status, "failed");
	assert_null(wh.statuses[3].recipient_id); /* not digits: dropped, not trusted */
	assert_true(json_is_array(wh.statuses[3].errors));
}

static void test_multiple_entries(void **state)
{
	const char *body =
	    "{\"object\":\"whatsapp_business_account\",\"entry\":["
	    "{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
	    "{\"phone_number_id\":\"111\"},\"messages\":[{\"from\":\"4915112345\",\"id\":\"a1\","
	    "\"type\":\"text\",\"text\":{\"body\":\"one\"}},{\"from\":\"4915112345\",\"id\":\"a2\","
	    "\"type\":\"text\",\"text\":{\"body\":\"two\"}}]}},"
	    "{\"field\":\"account_update\",\"value\":{\"event\":\"DISABLED_UPDATE\"}}]},"
	    "{\"id\":\"2\",\"changes\":[{\"field\":\"messages\",\"value\":{\"metadata\":"
	    "{\"phone_number_id\":\"222\"},\"statuses\":[{\"id\":\"s1\",\"status\":\"read\"}],"
	    "\"messages\":[{\"from\":\"4915112346\",\"id\":\"b1\",\"type\":\"text\","
	    "\"text\":{\"body\":\"three\"}}]}},"
	    "{\"field\":\"messages\",\"value\":{\"metadata\":{\"phone_number_id\":\"111\"},"
	    "\"errors\":[{\"code\":1}]}}]}]}";
	wa_webhook_t wh;
	const char *why = NULL;

	(void)state;
	arena_reset(A);
	assert_int_equal(wa_webhook_parse(A, body, strlen(body), &wh, &why), 0);
	assert_int_equal(wh.naccounts, 2);
	assert_string_equal(wh.accounts[0], "111");
	assert_string_equal(wh.accounts[1], "222");
	assert_int_equal(wh.nmessages, 3);
	assert_string_equal(wh.messages[0].text, "one");
	assert_string_equal(wh.messages[1].wamid, "a2");
	assert_string_equal(wh.messages[2].phone_number_id, "222");
	assert_string_equal(wh.messages[2].text, "three");
	assert_int_equal(wh.nstatuses, 1);
	assert_string_equal(wh.statuses[0].phone_number_id, "222");
}

static void test_long_name_cut(void **state)
{
	char body[4096], name[600];
	const wa_message_t *m;

	(void)state;
	memset(name, 'n', 299);
	strcpy(name + 299, "\\u00e9\\u00e9"); /* a 2-byte character across the cut */
	snprintf(body, sizeof(body),
		 HEAD "\"contacts\":[{\"profile\":{\"name\":\"%s\"},\"wa_id\":\"16505551234\"}],"
		      "\"messages\":[{\"from\":\"16505551234\",\"id\":\"w\",\"type\":\"text\","
		      "\"text\":{\"body\":\"x\"}}]" TAIL,
		 name);
	m = one_message(body);
	assert_true(strlen(m->profile_name) <= WA_MAX_NAME_LEN);
	assert_true(strlen(m->profile_name) >= WA_MAX_NAME_LEN - 1);
}

static void expect_bad(const char *body, const char *want_why)
{
	wa_webhook_t wh;
	const char *why = NULL;

	arena_reset(A);
	if (wa_webhook_parse(A, body, strlen(body), &wh, &why) == 0)
		fail_msg("accepted: %s", body);
	assert_non_null(why);
	if (want_why != NULL && strstr(why, want_why) == NULL)
		fail_msg("why=%s, want %s", why, want_why);
	assert_int_equal(wh.nmessages, 0);
	assert_int_equal(wh.nstatuses, 0);
}

static void test_garbage(void **state)
{
	char many[2048];
	size_t n;

	(void)state;
	expect_bad("", NULL);
	expect_bad("not json", "malformed");
	expect_bad("[1,2]", "not a JSON object");
	expect_bad("{\"object\":\"x\",\"object\":\"y\",\"entry\":[]}", "duplicate");
	expect_bad("{\"object\":\"page\",\"entry\":[]}", "whatsapp_business_account");
	expect_bad("{\"object\":\"whatsapp_business_account\",\"entry\":{}}", "entry");
	expect_bad("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":1}]}",
		   "changes");
	expect_bad(HEAD "\"messages\":{}" TAIL, "messages must be an array");
	expect_bad(HEAD "\"messages\":[{\"from\":\"16505551234\",\"type\":\"text\"}]" TAIL,
		   "a message needs");
	expect_bad(HEAD
		   "\"messages\":[{\"from\":\"+16505551234\",\"id\":\"w\",\"type\":\"text\"}]" TAIL,
		   "a message needs");
	expect_bad(HEAD
		   "\"messages\":[{\"from\":\"16505551234\",\"id\":\"w\",\"type\":\"Text!\"}]" TAIL,
		   "a message needs");
	expect_bad(
	    HEAD "\"messages\":[{\"from\":\"16505551234\",\"id\":\"a b\",\"type\":\"text\"}]" TAIL,
	    "a message needs");
	expect_bad(HEAD "\"messages\":[7]" TAIL, "a message needs");
	expect_bad(HEAD "\"statuses\":[{\"id\":\"w\"}]" TAIL, "a status needs");
	/* phone_number_id: digits only, and at most WA_MAX_ACCOUNTS of them */
	expect_bad("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":"
		   "{\"metadata\":{\"phone_number_id\":\"12;DROP\"},\"messages\":[]}}]}]}",
		   "phone_number_id");
	n = (size_t)snprintf(many, sizeof(many),
			     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[");
	for (int i = 0; i <= WA_MAX_ACCOUNTS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n,
				      "%s{\"value\":{\"metadata\":{\"phone_number_id\":\"%d\"}}}",
				      i ? "," : "", 1000 + i);
	snprintf(many + n, sizeof(many) - n, "]}]}");
	expect_bad(many, "too many phone numbers");
	/* messages without a phone number id to attribute them to */
	expect_bad("{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{\"value\":"
		   "{\"messages\":[]}}]}]}",
		   "phone_number_id");
}

static void test_account_ids_only(void **state)
{
	/* the pre-signature scan reads ids and nothing else: a broken message is not its business
	 */
	const char *body = HEAD "\"messages\":[{\"no\":\"id\"}]" TAIL;
	const char *ids[WA_MAX_ACCOUNTS], *why = NULL;
	json_t *root;
	size_t n = 0;

	(void)state;
	arena_reset(A);
	root = wa_webhook_decode(A, body, strlen(body), &why);
	assert_non_null(root);
	assert_int_equal(wa_webhook_account_ids(root, ids, &n, &why), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "106540352242922");
	/* no ids at all (an account-level event) */
	body = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}";
	root = wa_webhook_decode(A, body, strlen(body), &why);
	assert_non_null(root);
	assert_int_equal(wa_webhook_account_ids(root, ids, &n, &why), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_interactive),
	    cmocka_unit_test(test_button_media_location_unknown),
	    cmocka_unit_test(test_statuses),
	    cmocka_unit_test(test_multiple_entries),
	    cmocka_unit_test(test_long_name_cut),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_account_ids_only),
	};

	return cmocka_run_group_tests_name("wa_payload", tests, setup, teardown);
}
