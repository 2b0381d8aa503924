/*
 * test_flow_reply.c - inbound WhatsApp message extraction (flow_reply_parse):
 * one test per message type, as the Cloud API delivers it, plus malformed
 * and hostile input.
 */
#include "../unit/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

/* Parse a JSON literal into r; returns flow_reply_parse's result. */
static int parse(const char *json, flow_reply_t *r)
{
	json_error_t e;
	json_t *msg = json_loads(json, JSON_REJECT_DUPLICATES, &e);
	int rc;

	if (msg == NULL)
		fail_msg("bad test JSON: %s: %s", e.text, json);
	rc = flow_reply_parse(msg, r);
	json_decref(msg);
	return rc;
}

static void test_text(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"from\":\"15551234567\",\"id\":\"wamid.A\",\"timestamp\":\"1\","
			       "\"type\":\"text\",\"text\":{\"body\":\"Hello there\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "text");
	assert_string_equal(r.subtype, "");
	assert_string_equal(r.text, "Hello there");
	assert_null(r.interactive_id);
	assert_null(r.media_id);
	assert_null(r.flow_response);
	flow_reply_free(&r);
}

static void test_button_reply(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(
	    parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
		  "\"button_reply\":{\"id\":\"opt_yes\",\"title\":\"Yes please\"}}}",
		  &r),
	    0);
	assert_string_equal(r.type, "interactive");
	assert_string_equal(r.subtype, "button_reply");
	assert_string_equal(r.interactive_id, "opt_yes");
	assert_string_equal(r.text, "Yes please");
	flow_reply_free(&r);
}

static void test_list_reply(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"list_reply\","
			       "\"list_reply\":{\"id\":\"row_2\",\"title\":\"Solar\","
			       "\"description\":\"Panels\"}}}",
			       &r),
			 0);
	assert_string_equal(r.type, "interactive");
	assert_string_equal(r.subtype, "list_reply");
	assert_string_equal(r.interactive_id, "row_2");
	assert_string_equal(r.text, "Solar");
	flow_reply_free(&r);
}

static void test_nfm_reply(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(
	    parse(
		"{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{"
		"\"name\":\"flow\",\"body\":\"Sent\",\"response_json\":"
		"\"{\\\"flow_token\\\":\\\"t1\\\",\\\"kit_type\\\":\\\"mini\\\",\\\"qty\\\":2}\"}}"
		"}",
		&r),
	    0);
	assert_string_equal(r.type, "interactive");
	assert_string_equal(r.subtype, "nfm_reply");
	assert_non_null(r.flow_response);
	assert_string_equal(json_string_value(json_object_get(r.flow_response, "kit_type")),
			    "mini");
	assert_int_equal(json_integer_value(json_object_get(r.flow_response, "qty")), 2);
	flow_reply_free(&r);

	/* bad JSON in response_json is not a crash, just no flow response */
	assert_int_equal(parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
			       "\"nfm_reply\":{\"response_json\":\"{not json\"}}}",
			       &r),
			 0);
	assert_string_equal(r.subtype, "nfm_reply");
	assert_null(r.flow_response);
	flow_reply_free(&r);
	/* a duplicate key, or a JSON value that is not an object, is refused too */
	assert_int_equal(parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
			       "\"nfm_reply\":{\"response_json\":\"{\\\"a\\\":1,\\\"a\\\":2}\"}}}",
			       &r),
			 0);
	assert_null(r.flow_response);
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
			       "\"nfm_reply\":{\"response_json\":\"[1,2]\"}}}",
			       &r),
			 0);
	assert_null(r.flow_response);
	flow_reply_free(&r);
}

static void test_template_button(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"button\",\"button\":{\"payload\":\"CONFIRM_42\","
			       "\"text\":\"Confirm\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "button");
	assert_string_equal(r.interactive_id, "CONFIRM_42");
	assert_string_equal(r.text, "Confirm");
	flow_reply_free(&r);
}

static void test_image(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(
	    parse("{\"type\":\"image\",\"image\":{\"id\":\"MEDIA1\","
		  "\"mime_type\":\"image/jpeg\",\"sha256\":\"x\",\"caption\":\"my roof\"}}",
		  &r),
	    0);
	assert_string_equal(r.type, "image");
	assert_string_equal(r.media_id, "MEDIA1");
	assert_string_equal(r.media_mime, "image/jpeg");
	assert_string_equal(r.text, "my roof");
	flow_reply_free(&r);
}

static void test_document(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"document\",\"document\":{\"id\":\"DOC9\","
			       "\"mime_type\":\"application/pdf\",\"filename\":\"id.pdf\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "document");
	assert_string_equal(r.media_id, "DOC9");
	assert_string_equal(r.media_mime, "application/pdf");
	assert_null(r.text);
	flow_reply_free(&r);
}

static void test_audio(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"audio\",\"audio\":{\"id\":\"AUD1\","
			       "\"mime_type\":\"audio/ogg; codecs=opus\",\"voice\":true}}",
			       &r),
			 0);
	assert_string_equal(r.type, "audio");
	assert_string_equal(r.media_id, "AUD1");
	assert_string_equal(r.media_mime, "audio/ogg; codecs=opus");
	flow_reply_free(&r);
}

static void test_video(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"video\",\"video\":{\"id\":\"VID1\","
			       "\"mime_type\":\"video/mp4\",\"caption\":\"look\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "video");
	assert_string_equal(r.media_id, "VID1");
	assert_string_equal(r.text, "look");
	flow_reply_free(&r);
}

static void test_sticker(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"sticker\",\"sticker\":{\"id\":\"STK1\","
			       "\"mime_type\":\"image/webp\",\"animated\":false}}",
			       &r),
			 0);
	assert_string_equal(r.type, "sticker");
	assert_string_equal(r.media_id, "STK1");
	assert_string_equal(r.media_mime, "image/webp");
	flow_reply_free(&r);
}

static void test_location(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"location\",\"location\":{\"latitude\":-17.82,"
			       "\"longitude\":31.05,\"name\":\"Home\",\"address\":\"1 Main St\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "location");
	assert_non_null(r.location);
	assert_true(json_real_value(json_object_get(r.location, "latitude")) == -17.82);
	assert_true(json_real_value(json_object_get(r.location, "longitude")) == 31.05);
	assert_string_equal(json_string_value(json_object_get(r.location, "name")), "Home");
	assert_string_equal(json_string_value(json_object_get(r.location, "address")), "1 Main St");
	flow_reply_free(&r);

	/* coordinates as strings or out of range are no location */
	assert_int_equal(parse("{\"type\":\"location\",\"location\":{\"latitude\":\"1\","
			       "\"longitude\":2}}",
			       &r),
			 0);
	assert_string_equal(r.type, "location");
	assert_null(r.location);
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":\"location\",\"location\":{\"latitude\":91,"
			       "\"longitude\":2}}",
			       &r),
			 0);
	assert_null(r.location);
	flow_reply_free(&r);
}

static void test_contacts(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"contacts\",\"contacts\":[{\"name\":{\"formatted_name\":"
			       "\"Ann Lee\"},\"phones\":[{\"phone\":\"+1 555 0100\"}]}]}",
			       &r),
			 0);
	assert_string_equal(r.type, "contacts");
	assert_non_null(r.contacts);
	assert_int_equal(json_array_size(r.contacts), 1);
	assert_string_equal(
	    json_string_value(json_object_get(
		json_object_get(json_array_get(r.contacts, 0), "name"), "formatted_name")),
	    "Ann Lee");
	flow_reply_free(&r);
}

static void test_reaction(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"reaction\",\"reaction\":{\"message_id\":\"wamid.X\","
			       "\"emoji\":\"\\ud83d\\udc4d\"}}",
			       &r),
			 0);
	assert_string_equal(r.type, "reaction");
	assert_non_null(r.reaction);
	assert_string_equal(json_string_value(json_object_get(r.reaction, "message_id")),
			    "wamid.X");
	assert_string_equal(json_string_value(json_object_get(r.reaction, "emoji")),
			    "\xf0\x9f\x91\x8d");
	assert_null(r.text);
	flow_reply_free(&r);
}

static void test_unsupported(void **state)
{
	flow_reply_t r;

	(void)state;
	assert_int_equal(parse("{\"type\":\"order\",\"order\":{\"catalog_id\":\"1\"}}", &r), 0);
	assert_string_equal(r.type, "unsupported");
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":\"unsupported\",\"errors\":[{\"code\":131051}]}", &r), 0);
	assert_string_equal(r.type, "unsupported");
	flow_reply_free(&r);
	/* an interactive reply of a kind flows do not know */
	assert_int_equal(
	    parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"call_permission_"
		  "reply\"}}",
		  &r),
	    0);
	assert_string_equal(r.type, "unsupported");
	flow_reply_free(&r);
}

static void test_malformed(void **state)
{
	flow_reply_t r;
	json_t *arr = json_array(), *big;
	char *longtext, *longid;

	(void)state;
	/* not an object, or no type: -1 and "unsupported" */
	assert_int_equal(flow_reply_parse(arr, &r), -1);
	assert_string_equal(r.type, "unsupported");
	flow_reply_free(&r);
	json_decref(arr);
	assert_int_equal(flow_reply_parse(NULL, &r), -1);
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":7,\"text\":{\"body\":\"x\"}}", &r), -1);
	assert_string_equal(r.type, "unsupported");
	flow_reply_free(&r);

	/* wrong types inside are simply absent */
	assert_int_equal(parse("{\"type\":\"text\",\"text\":{\"body\":42}}", &r), 0);
	assert_string_equal(r.type, "text");
	assert_null(r.text);
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":\"text\",\"text\":\"flat\"}", &r), 0);
	assert_null(r.text);
	flow_reply_free(&r);
	assert_int_equal(
	    parse("{\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
		  "\"button_reply\":{\"id\":[1],\"title\":null}}}",
		  &r),
	    0);
	assert_null(r.interactive_id);
	assert_null(r.text);
	flow_reply_free(&r);
	assert_int_equal(parse("{\"type\":\"image\",\"image\":\"MEDIA\"}", &r), 0);
	assert_string_equal(r.type, "image");
	assert_null(r.media_id);
	flow_reply_free(&r);

	/* a huge text is cut at a character boundary; a huge id is dropped */
	longtext = malloc(FLOW_REPLY_TEXT_MAX + 100);
	assert_non_null(longtext);
	memset(longtext, 'a', FLOW_REPLY_TEXT_MAX - 1);
	strcpy(longtext + FLOW_REPLY_TEXT_MAX - 1, "\xc3\xa9tail"); /* "é" across the limit */
	big = json_pack("{s:s,s:{s:s}}", "type", "text", "text", "body", longtext);
	assert_int_equal(flow_reply_parse(big, &r), 0);
	assert_int_equal(strlen(r.text), FLOW_REPLY_TEXT_MAX - 1);
	flow_reply_free(&r);
	json_decref(big);
	free(longtext);

	longid = malloc(FLOW_REPLY_ID_MAX + 2);
	assert_non_null(longid);
	memset(longid, 'i', FLOW_REPLY_ID_MAX + 1);
	longid[FLOW_REPLY_ID_MAX + 1] = '\0';
	big = json_pack("{s:s,s:{s:s,s:{s:s,s:s}}}", "type", "interactive", "interactive", "type",
			"button_reply", "button_reply", "id", longid, "title", "t");
	assert_int_equal(flow_reply_parse(big, &r), 0);
	assert_null(r.interactive_id);
	assert_string_equal(r.text, "t");
	flow_reply_free(&r);
	json_decref(big);
	free(longid);
}

static void test_init_text(void **state)
{
	flow_reply_t r;

	(void)state;
	flow_reply_init_text(&r, "menu");
	assert_string_equal(r.type, "text");
	assert_string_equal(r.text, "menu");
	flow_reply_free(&r);
	flow_reply_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text),
	    cmocka_unit_test(test_button_reply),
	    cmocka_unit_test(test_list_reply),
	    cmocka_unit_test(test_nfm_reply),
	    cmocka_unit_test(test_template_button),
	    cmocka_unit_test(test_image),
	    cmocka_unit_test(test_document),
	    cmocka_unit_test(test_audio),
	    cmocka_unit_test(test_video),
	    cmocka_unit_test(test_sticker),
	    cmocka_unit_test(test_location),
	    cmocka_unit_test(test_contacts),
	    cmocka_unit_test(test_reaction),
	    cmocka_unit_test(test_unsupported),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_init_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
