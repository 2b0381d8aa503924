/*
 * test_flow_engine.c - the flow step machine (engine.c), driven like the
 * webhook and the simulator drive it: trigger, start, then one reply at a
 * time, asserting the exact Graph API messages, session state, contact
 * updates and events.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

/* ---- definitions ---------------------------------------------------------- */

static const char *const signup_json =
    "{\"name\":\"signup\",\"trigger_keywords\":[\"signup\",\"sign up now\"],"
    " \"trigger_config\":{\"extraction_regex\":\"code ([A-Z0-9]+)\","
    "  \"context_variable\":\"promo\"},"
    " \"steps\":["
    "  {\"name\":\"start\",\"type\":\"send_message\",\"is_entry_point\":true,"
    "   \"config\":{\"message_type\":\"text\",\"text\":{\"body\":"
    "    \"Hi {{ contact.name | default('there') }}! Promo: {{ promo | default('none') }}\"}},"
    "   "
    "\"transitions\":[{\"to_step\":\"ask_age\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"ask_age\",\"type\":\"question\","
    "   \"config\":{\"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":"
    "     \"How old are you?\"}},"
    "    \"reply_config\":{\"save_to_variable\":\"age\",\"expected_type\":\"number\"},"
    "    \"fallback_config\":{\"max_retries\":2,"
    "     \"re_prompt_message_text\":\"Please send a number, {{ contact.name }}.\"}},"
    "   \"transitions\":["
    "    "
    "{\"to_step\":\"agent\",\"priority\":0,\"condition_config\":{\"type\":\"user_requests_human\"}}"
    ","
    "    "
    "{\"to_step\":\"ask_email\",\"priority\":2,\"condition_config\":{\"type\":\"always_true\"}},"
    "    {\"to_step\":\"too_young\",\"priority\":1,\"condition_config\":"
    "     {\"type\":\"variable_less_than\",\"variable_name\":\"age\",\"value\":18}}]},"
    "  {\"name\":\"too_young\",\"type\":\"end_flow\",\"config\":{\"message_config\":"
    "   {\"message_type\":\"text\",\"text\":{\"body\":\"Sorry, {{ age }} is too young.\"}}}},"
    "  {\"name\":\"ask_email\",\"type\":\"question\","
    "   \"config\":{\"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Email?\"}},"
    "    \"reply_config\":{\"save_to_variable\":\"email\",\"expected_type\":\"email\"}},"
    "   \"transitions\":[{\"to_step\":\"save\",\"condition_config\":"
    "    {\"type\":\"question_reply_is_valid\",\"value\":true}}]},"
    "  {\"name\":\"save\",\"type\":\"action\",\"config\":{\"actions_to_run\":["
    "    {\"action_type\":\"set_context_variable\",\"variable_name\":\"greeting\","
    "     \"value_template\":\"Welcome {{ email }}\"},"
    "    {\"action_type\":\"set_context_variable\",\"variable_name\":\"age_copy\","
    "     \"value_template\":\"{{ age }}\"},"
    "    {\"action_type\":\"set_context_variable\",\"variable_name\":\"profile\","
    "     \"value_template\":{\"mail\":\"{{ email }}\",\"years\":\"{{ age }}\"}},"
    "    {\"action_type\":\"update_contact_field\",\"field_path\":\"email\","
    "     \"value_template\":\"{{ email }}\"}]},"
    "   "
    "\"transitions\":[{\"to_step\":\"confirm\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"confirm\",\"type\":\"send_message\","
    "   \"config\":{\"message_type\":\"interactive\",\"interactive\":{\"type\":\"button\","
    "    \"body\":{\"text\":\"Thanks, {{ greeting }}\"},\"action\":{\"buttons\":["
    "     {\"type\":\"reply\",\"reply\":{\"id\":\"ok\",\"title\":\"OK {{ contact.email }}\"}}]}}},"
    "   \"transitions\":[{\"to_step\":\"bye\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"bye\",\"type\":\"end_flow\",\"config\":{\"message_config\":"
    "   {\"message_type\":\"text\",\"text\":{\"body\":\"Done\"}}}},"
    "  {\"name\":\"agent\",\"type\":\"human_handover\","
    "   \"config\":{\"pre_handover_message_text\":\"Connecting you to a person.\"}}"
    " ]}";

static const char *const menu_json =
    "{\"name\":\"menu\",\"trigger_keywords\":[\"menu\"],\"steps\":["
    " {\"name\":\"prep\",\"type\":\"action\",\"is_entry_point\":true,\"config\":{\"actions_to_"
    "run\":["
    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"x\","
    "    \"value_template\":\"from menu\"}]},"
    "  \"transitions\":[{\"to_step\":\"go\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"go\",\"type\":\"switch_flow\",\"config\":{\"target_flow_name\":\"support\","
    "   \"initial_context_template\":{\"source_flow\":\"menu\",\"x\":\"{{ x }}\"}}}]}";

static const char *const support_json =
    "{\"name\":\"support\",\"trigger_keywords\":[\"help me\"],\"steps\":["
    " {\"name\":\"ask\",\"type\":\"question\",\"is_entry_point\":true,\"config\":{"
    "   \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":"
    "    \"How can we help? ({{ source_flow }}, {{ x }})\"}},"
    "   \"reply_config\":{\"save_to_variable\":\"issue\",\"expected_type\":\"text\"}},"
    "  \"transitions\":[{\"to_step\":\"end\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"end\",\"type\":\"end_flow\"}]}";

static const char *const loop_json =
    "{\"name\":\"loop\",\"steps\":["
    " {\"name\":\"a\",\"type\":\"action\",\"is_entry_point\":true,\"config\":{\"actions_to_run\":["
    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"n\",\"value_template\":1}]},"
    "  \"transitions\":[{\"to_step\":\"b\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"b\",\"type\":\"send_message\",\"config\":{\"message_type\":\"text\","
    "   \"text\":{\"body\":\"tick\"}},"
    "  \"transitions\":[{\"to_step\":\"a\",\"condition_config\":{\"type\":\"always_true\"}}]}]}";

static const char *const forms_json =
    "{\"name\":\"forms\",\"steps\":["
    " {\"name\":\"form1\",\"type\":\"send_message\",\"is_entry_point\":true,\"config\":{"
    "   \"message_type\":\"interactive\",\"interactive\":{\"type\":\"flow\","
    "    \"body\":{\"text\":\"Step 1\"},\"action\":{\"name\":\"flow\",\"parameters\":{"
    "     \"flow_id\":\"F1\",\"flow_cta\":\"Start\",\"flow_token\":\"{{ contact.wa_id }}-1\","
    "     \"flow_action\":\"data_exchange\",\"flow_action_payload\":{\"screen\":\"W\"}}}}},"
    "  \"transitions\":[{\"to_step\":\"wait_for_whatsapp_response\","
    "   \"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"wait_for_whatsapp_response\",\"type\":\"action\","
    "  \"config\":{\"actions_to_run\":[]},"
    "  \"transitions\":[{\"to_step\":\"map1\","
    "   \"condition_config\":{\"type\":\"whatsapp_flow_response_received\"}}]},"
    " {\"name\":\"map1\",\"type\":\"action\",\"config\":{\"actions_to_run\":["
    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"kit\","
    "    \"value_template\":\"{{ whatsapp_flow_data.kit_type }}\"}]},"
    "  \"transitions\":[{\"to_step\":\"form2\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"form2\",\"type\":\"send_message\",\"config\":{"
    "   \"message_type\":\"interactive\",\"interactive\":{\"type\":\"flow\","
    "    \"body\":{\"text\":\"Step 2\"},\"action\":{\"name\":\"flow\",\"parameters\":{"
    "     \"flow_id\":\"F2\",\"flow_cta\":\"Next\"}}}},"
    "  \"transitions\":[{\"to_step\":\"wait2\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"wait2\",\"type\":\"wait_for_reply\","
    "  \"transitions\":[{\"to_step\":\"done\","
    "   \"condition_config\":{\"type\":\"whatsapp_flow_response_received\"}}]},"
    " {\"name\":\"done\",\"type\":\"end_flow\",\"config\":{\"message_config\":"
    "  {\"message_type\":\"text\",\"text\":{\"body\":\"Got {{ kit }} and {{ size }}\"}}}}]}";

static const char *const typed_json =
    "{\"name\":\"typed\",\"steps\":["
    " {\"name\":\"where\",\"type\":\"question\",\"is_entry_point\":true,\"config\":{"
    "   \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Where?\"}},"
    "   \"reply_config\":{\"save_to_variable\":\"loc\",\"expected_type\":\"location\"}},"
    "  \"transitions\":[{\"to_step\":\"pick\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"pick\",\"type\":\"question\",\"config\":{"
    "   \"message_config\":{\"message_type\":\"interactive\",\"interactive\":{\"type\":\"list\","
    "    \"body\":{\"text\":\"Pick\"},\"action\":{\"button\":\"Options\",\"sections\":["
    "     {\"title\":\"S\",\"rows\":[{\"id\":\"r1\",\"title\":\"One\"},"
    "      {\"id\":\"r2\",\"title\":\"Two\",\"description\":\"second\"}]}]}}},"
    "   \"reply_config\":{\"save_to_variable\":\"choice\",\"expected_type\":\"interactive_id\","
    "    \"validation_regex\":\"^r[0-9]$\"}},"
    "  \"transitions\":[{\"to_step\":\"price\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"price\",\"type\":\"question\",\"config\":{"
    "   \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Price?\"}},"
    "   \"reply_config\":{\"save_to_variable\":\"price\",\"expected_type\":\"number\"}},"
    "  "
    "\"transitions\":[{\"to_step\":\"confirm\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"confirm\",\"type\":\"question\",\"config\":{"
    "   \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Price {{ price }} "
    "ok?\"}},"
    "   \"reply_config\":{\"expected_type\":\"any\"}},"
    "  \"transitions\":[{\"to_step\":\"dead\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    " {\"name\":\"dead\",\"type\":\"send_message\",\"config\":{\"message_type\":\"image\","
    "   \"image\":{\"link\":\"https://x.test/{{ choice }}.png\",\"caption\":\"At {{ loc.name "
    "}}\"}},"
    "  \"transitions\":[{\"to_step\":\"where\",\"condition_config\":"
    "   {\"type\":\"variable_equals\",\"variable_name\":\"choice\",\"value\":\"nope\"}}]}]}";

/* ---- fixtures ------------------------------------------------------------- */

typedef struct fixture {
	json_t *signup, *menu, *support, *loop, *forms, *typed;
	json_t *contact;
	flow_env_t env;
	flow_session_t s;
	flow_result_t res;
} fixture_t;

static json_t *load(const char *text)
{
	json_error_t e;
	json_t *d = json_loads(text, JSON_REJECT_DUPLICATES, &e), *problems = json_array();

	if (d == NULL)
		fail_msg("bad test flow: %s at %d", e.text, e.position);
	/* every test flow is a valid definition */
	if (flow_validate(d, problems) != 0) {
		char *dump = json_dumps(problems, 0);

		fail_msg("test flow does not validate: %s", dump);
	}
	json_decref(problems);
	return d;
}

static fixture_t *fx;

/* The env's switch_flow lookup: the active flows are menu, support and signup. */
static int load_flow(void *ud, const char *name, flow_def_ref_t *out)
{
	fixture_t *f = ud;

	if (strcmp(name, "support") == 0)
		*out = (flow_def_ref_t){.flow_id = 3, .version_id = 30, .definition = f->support};
	else if (strcmp(name, "menu") == 0)
		*out = (flow_def_ref_t){.flow_id = 2, .version_id = 20, .definition = f->menu};
	else
		return -1;
	return 0;
}

static int setup(void **state)
{
	fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	fx->signup = load(signup_json);
	fx->menu = load(menu_json);
	fx->support = load(support_json);
	fx->loop = load(loop_json);
	fx->forms = load(forms_json);
	fx->typed = load(typed_json);
	fx->contact = json_pack("{s:s,s:s}", "wa_id", "15550001", "name", "Ann");
	fx->env = (flow_env_t){.load_flow = load_flow, .ud = fx, .contact = fx->contact};
	flow_session_init(&fx->s);
	flow_result_init(&fx->res);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	flow_result_free(&fx->res);
	flow_session_clear(&fx->s);
	json_decref(fx->signup);
	json_decref(fx->menu);
	json_decref(fx->support);
	json_decref(fx->loop);
	json_decref(fx->forms);
	json_decref(fx->typed);
	json_decref(fx->contact);
	free(fx);
	return 0;
}

static int start(json_t *def, int64_t version, const json_t *init)
{
	flow_def_ref_t ref = {.flow_id = 1, .version_id = version, .definition = def};

	flow_result_free(&fx->res);
	return flow_engine_start(&fx->env, &fx->s, &ref, init, &fx->res);
}

static int reply_json(const char *msg)
{
	flow_reply_t r;
	json_t *m = json_loads(msg, 0, NULL);
	int rc;

	assert_non_null(m);
	flow_reply_parse(m, &r);
	json_decref(m);
	flow_result_free(&fx->res);
	rc = flow_engine_handle(&fx->env, &fx->s, &r, &fx->res);
	flow_reply_free(&r);
	return rc;
}

static int reply_text(const char *text)
{
	flow_reply_t r;
	int rc;

	flow_reply_init_text(&r, text);
	flow_result_free(&fx->res);
	rc = flow_engine_handle(&fx->env, &fx->s, &r, &fx->res);
	flow_reply_free(&r);
	return rc;
}

static size_t nmsg(void)
{
	return json_array_size(fx->res.messages);
}

/* The body of text message i. */
static const char *text_at(size_t i)
{
	json_t *m = json_array_get(fx->res.messages, i);

	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "text");
	assert_true(json_is_false(json_object_get(json_object_get(m, "text"), "preview_url")));
	return json_string_value(json_object_get(json_object_get(m, "text"), "body"));
}

static bool has_event(const char *name, const char *key, const char *value)
{
	size_t i;
	json_t *e;

	json_array_foreach(fx->res.events, i, e)
	{
		if (strcmp(json_string_value(json_object_get(e, "event")), name) != 0)
			continue;
		if (key == NULL || (json_is_string(json_object_get(e, key)) &&
				    strcmp(json_string_value(json_object_get(e, key)), value) == 0))
			return true;
	}
	return false;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_trigger(void **state)
{
	flow_candidate_t c[3] = {{.name = "signup", .flow = {.definition = fx->signup}},
				 {.name = NULL, .flow = {.definition = fx->menu}},
				 {.name = "support", .flow = {.definition = fx->support}}};
	json_t *init;

	(void)state;
	/* whole words only, case-insensitively */
	assert_int_equal(flow_trigger_match(c, 3, "MENU please", &init), 1);
	assert_int_equal(json_object_size(init), 0);
	json_decref(init);
	assert_int_equal(flow_trigger_match(c, 3, "menus", &init), -1);
	assert_null(init);
	assert_int_equal(flow_trigger_match(c, 3, "signups", &init), -1);
	/* the longest keyword wins: "sign up now" over "menu" */
	assert_int_equal(flow_trigger_match(c, 3, "menu or sign up now", &init), 0);
	json_decref(init);
	/* the extraction regex fills the context variable (first group) */
	assert_int_equal(flow_trigger_match(c, 3, "signup code AB12 thanks", &init), 0);
	assert_string_equal(json_string_value(json_object_get(init, "promo")), "AB12");
	json_decref(init);
	assert_int_equal(flow_trigger_match(c, 3, "signup", &init), 0);
	assert_null(json_object_get(init, "promo"));
	json_decref(init);
	assert_int_equal(flow_trigger_match(c, 3, NULL, &init), -1);
	assert_int_equal(flow_trigger_match(c, 3, "help me", &init), 2);
	json_decref(init);
}

static void test_trigger_tie_goes_to_name(void **state)
{
	json_t *a = json_pack("{s:s,s:[s]}", "name", "zeta", "trigger_keywords", "promo");
	json_t *b = json_pack("{s:s,s:[s]}", "name", "alpha", "trigger_keywords", "PROMO");
	flow_candidate_t c[2] = {{.flow = {.definition = a}}, {.flow = {.definition = b}}};
	json_t *init;

	(void)state;
	assert_int_equal(flow_trigger_match(c, 2, "promo!", &init), 1);
	json_decref(init);
	json_decref(a);
	json_decref(b);
}

static void test_invalid_three_times_hands_over(void **state)
{
	json_t *init;
	flow_candidate_t c = {.flow = {.definition = fx->signup}};

	(void)state;
	assert_int_equal(flow_trigger_match(&c, 1, "signup code X9", &init), 0);
	assert_int_equal(start(fx->signup, 11, init), 0);
	json_decref(init);
	assert_int_equal(nmsg(), 2);
	assert_string_equal(text_at(0), "Hi Ann! Promo: X9");
	assert_string_equal(text_at(1), "How old are you?");
	assert_true(fx->s.active);
	assert_int_equal(fx->s.flow_version_id, 11);
	assert_string_equal(fx->s.current_step, "ask_age");
	assert_string_equal(json_string_value(json_object_get(fx->s.awaiting, "expected_type")),
			    "number");
	assert_true(has_event("flow_started", NULL, NULL));
	assert_true(has_event("step_entered", "step", "start"));

	assert_int_equal(reply_text("abc"), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Please send a number, Ann.");
	assert_int_equal(fx->s.fallback_count, 1);
	assert_true(fx->s.active);
	assert_false(fx->res.handover);

	assert_int_equal(reply_text("forty"), 0);
	assert_string_equal(text_at(0), "Please send a number, Ann.");
	assert_int_equal(fx->s.fallback_count, 2);

	assert_int_equal(reply_text("???"), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0),
			    "I'm still having trouble understanding. I'm connecting you "
			    "with a team member who can assist you shortly.");
	assert_true(fx->res.handover);
	assert_string_equal(fx->res.handover_reason, "retries_exhausted");
	assert_true(fx->res.ended);
	assert_null(fx->res.error);
	assert_false(fx->s.active);
	assert_true(has_event("handover", "reason", "retries_exhausted"));
}

static void test_invalid_reply_can_ask_for_a_human(void **state)
{
	(void)state;
	assert_int_equal(start(fx->signup, 1, NULL), 0);
	assert_string_equal(text_at(0), "Hi Ann! Promo: none");
	/* not a number, but user_requests_human inspects the reply itself */
	assert_int_equal(reply_text("can I talk to a person"), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Connecting you to a person.");
	assert_true(fx->res.handover);
	assert_string_equal(fx->res.handover_reason, "step");
	assert_false(fx->s.active);
}

static void test_valid_path_to_end(void **state)
{
	json_t *m;

	(void)state;
	assert_int_equal(start(fx->signup, 1, NULL), 0);
	assert_int_equal(reply_text(" 30 "), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Email?");
	assert_string_equal(fx->s.current_step, "ask_email");
	assert_true(json_is_integer(json_object_get(fx->s.context, "age")));
	assert_int_equal(json_integer_value(json_object_get(fx->s.context, "age")), 30);

	/* an invalid email re-sends the question (no re_prompt_message_text) */
	assert_int_equal(reply_text("not-an-email"), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Email?");
	assert_null(json_object_get(fx->s.context, "email"));

	assert_int_equal(reply_text("ann@example.com"), 0);
	assert_null(fx->res.error);
	assert_int_equal(nmsg(), 2);
	m = json_array_get(fx->res.messages, 0);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "interactive");
	{
		char *dump = json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS);

		assert_string_equal(
		    dump, "{\"interactive\":{\"action\":{\"buttons\":[{\"reply\":{\"id\":\"ok\","
			  "\"title\":\"OK ann@example.com\"},\"type\":\"reply\"}]},\"body\":{"
			  "\"text\":\"Thanks, Welcome ann@example.com\"},\"type\":\"button\"},"
			  "\"type\":\"interactive\"}");
		free(dump);
	}
	assert_string_equal(text_at(1), "Done");
	assert_true(fx->res.ended);
	assert_false(fx->res.handover);
	assert_false(fx->s.active);
	assert_string_equal(json_string_value(json_object_get(fx->res.contact_updates, "email")),
			    "ann@example.com");
	assert_int_equal(json_object_size(fx->res.contact_updates), 1);
	assert_true(has_event("step_entered", "step", "save"));
	assert_true(has_event("flow_ended", NULL, NULL));
}

static void test_action_sets_variables(void **state)
{
	json_t *def, *ctx;
	const char *text =
	    "{\"name\":\"act\",\"steps\":["
	    " {\"name\":\"a\",\"type\":\"action\",\"is_entry_point\":true,\"config\":{"
	    "  \"actions_to_run\":["
	    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"greeting\","
	    "    \"value_template\":\"Welcome {{ email }}\"},"
	    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"age_copy\","
	    "    \"value_template\":\"{{ age }}\"},"
	    "   {\"action_type\":\"set_context_variable\",\"variable_name\":\"profile\","
	    "    \"value_template\":{\"mail\":\"{{ email }}\",\"years\":\"{{ age }}\"}},"
	    "   {\"action_type\":\"update_contact_field\",\"field_path\":\"name\","
	    "    \"value_template\":\"{{ contact.name | upper }}\"},"
	    "   {\"action_type\":\"update_contact_field\",\"field_path\":\"notes\","
	    "    \"value_template\":\"age {{ age }}\"}]},"
	    "  "
	    "\"transitions\":[{\"to_step\":\"q\",\"condition_config\":{\"type\":\"always_true\"}}]}"
	    ","
	    " {\"name\":\"q\",\"type\":\"question\",\"config\":{\"message_config\":{"
	    "   \"message_type\":\"text\",\"text\":{\"body\":\"{{ contact.name }}: {{ greeting "
	    "}}\"}},"
	    "   \"reply_config\":{\"expected_type\":\"any\"}},"
	    "  "
	    "\"transitions\":[{\"to_step\":\"e\",\"condition_config\":{\"type\":\"always_true\"}}]}"
	    ","
	    " {\"name\":\"e\",\"type\":\"end_flow\"}]}";
	json_t *init = json_pack("{s:s,s:i}", "email", "a@b.co", "age", 30);

	(void)state;
	def = load(text);
	assert_int_equal(start(def, 1, init), 0);
	json_decref(init);
	ctx = fx->s.context;
	assert_string_equal(json_string_value(json_object_get(ctx, "greeting")), "Welcome a@b.co");
	/* a single tag keeps its type; objects render recursively */
	assert_true(json_is_integer(json_object_get(ctx, "age_copy")));
	assert_int_equal(json_integer_value(json_object_get(ctx, "age_copy")), 30);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(ctx, "profile"), "mail")), "a@b.co");
	assert_int_equal(
	    json_integer_value(json_object_get(json_object_get(ctx, "profile"), "years")), 30);
	/* contact updates are whitelisted text, and later templates see them */
	assert_string_equal(json_string_value(json_object_get(fx->res.contact_updates, "name")),
			    "ANN");
	assert_string_equal(json_string_value(json_object_get(fx->res.contact_updates, "notes")),
			    "age 30");
	assert_string_equal(text_at(0), "ANN: Welcome a@b.co");
	/* the caller's contact object is not touched */
	assert_string_equal(json_string_value(json_object_get(fx->contact, "name")), "Ann");
	flow_session_clear(&fx->s);
	json_decref(def);
}

static void test_switch_flow(void **state)
{
	(void)state;
	assert_int_equal(start(fx->menu, 21, NULL), 0);
	assert_null(fx->res.error);
	assert_true(fx->res.switched);
	assert_string_equal(fx->res.switched_to, "support");
	assert_int_equal(fx->res.switched_flow_id, 3);
	assert_int_equal(fx->res.switched_version_id, 30);
	assert_true(fx->s.active);
	assert_ptr_equal(fx->s.definition, fx->support);
	assert_int_equal(fx->s.flow_version_id, 30);
	assert_string_equal(fx->s.current_step, "ask");
	/* the new context is only what initial_context_template passes */
	assert_int_equal(json_object_size(fx->s.context), 2);
	assert_string_equal(json_string_value(json_object_get(fx->s.context, "x")), "from menu");
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "How can we help? (menu, from menu)");
	assert_true(has_event("flow_switched", "to", "support"));
	assert_true(has_event("flow_started", "flow", "support"));

	assert_int_equal(reply_text("my order is late"), 0);
	assert_true(fx->res.ended);
	assert_false(fx->s.active);
	assert_false(fx->res.switched);
}

static void test_switch_to_missing_flow_is_an_error(void **state)
{
	json_t *def = load("{\"name\":\"s\",\"steps\":[{\"name\":\"go\",\"type\":\"switch_flow\","
			   "\"is_entry_point\":true,\"config\":{\"target_flow_name\":\"gone\"}}]}");

	(void)state;
	assert_int_equal(start(def, 1, NULL), -1);
	assert_string_equal(fx->res.error, "switch_target_missing");
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "I seem to be having some technical difficulties. A team "
					"member will be with you shortly.");
	assert_true(fx->res.handover);
	assert_string_equal(fx->res.handover_reason, "error");
	assert_true(fx->res.ended);
	assert_false(fx->s.active);
	json_decref(def);
}

static void test_step_limit(void **state)
{
	(void)state;
	fx->env.apology_text = "Sorry, something broke.";
	assert_int_equal(start(fx->loop, 1, NULL), -1);
	fx->env.apology_text = NULL;
	assert_string_equal(fx->res.error, "step_limit");
	/* one apology, nothing of the ten "tick"s that came before */
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Sorry, something broke.");
	assert_true(fx->res.handover);
	assert_true(fx->res.ended);
	assert_false(fx->s.active);
	assert_true(has_event("error", "reason", "step_limit"));
	{
		size_t i, entered = 0;
		json_t *e;

		json_array_foreach(fx->res.events, i, e)
		{
			if (strcmp(json_string_value(json_object_get(e, "event")),
				   "step_entered") == 0)
				entered++;
		}
		assert_int_equal(entered, FLOW_MAX_STEPS_PER_MESSAGE);
	}
}

static void test_nfm_reply_twice(void **state)
{
	json_t *m, *p;

	(void)state;
	assert_int_equal(start(fx->forms, 1, NULL), 0);
	assert_int_equal(nmsg(), 1);
	m = json_array_get(fx->res.messages, 0);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "interactive");
	p = flow_path_get(m, "interactive.action.parameters");
	assert_string_equal(json_string_value(json_object_get(p, "flow_id")), "F1");
	assert_string_equal(json_string_value(json_object_get(p, "flow_token")), "15550001-1");
	assert_string_equal(json_string_value(json_object_get(p, "flow_message_version")), "3");
	assert_null(json_object_get(p, "flow_action_payload")); /* data_exchange: refused by Meta */
	assert_string_equal(json_string_value(flow_path_get(m, "interactive.action.name")), "flow");
	assert_string_equal(fx->s.current_step, "wait_for_whatsapp_response");
	assert_string_equal(json_string_value(json_object_get(fx->s.awaiting, "kind")), "wait");

	/* a text while waiting for the form: a re-prompt, not a dead end */
	assert_int_equal(reply_text("hello?"), 0);
	assert_int_equal(nmsg(), 1);
	assert_false(fx->res.handover);
	assert_string_equal(fx->s.current_step, "wait_for_whatsapp_response");

	assert_int_equal(
	    reply_json("{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
		       "\"nfm_reply\":{\"response_json\":"
		       "\"{\\\"flow_token\\\":\\\"t\\\",\\\"kit_type\\\":\\\"mini\\\"}\"}}}"),
	    0);
	assert_null(fx->res.error);
	assert_int_equal(nmsg(), 1);
	m = json_array_get(fx->res.messages, 0);
	assert_string_equal(
	    json_string_value(flow_path_get(m, "interactive.action.parameters.flow_id")), "F2");
	/* the flag went when the flow left the first wait: the second form is waited for */
	assert_string_equal(fx->s.current_step, "wait2");
	assert_null(json_object_get(fx->s.context, "whatsapp_flow_response_received"));
	assert_string_equal(json_string_value(json_object_get(fx->s.context, "kit")), "mini");
	assert_string_equal(json_string_value(json_object_get(fx->s.context, "kit_type")), "mini");

	assert_int_equal(
	    reply_json("{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\","
		       "\"nfm_reply\":{\"response_json\":\"{\\\"size\\\":\\\"L\\\"}\"}}}"),
	    0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Got mini and L");
	assert_true(fx->res.ended);
	assert_true(has_event("form_received", "step", "wait2"));
}

static void test_typed_save(void **state)
{
	json_t *loc, *m;

	(void)state;
	assert_int_equal(start(fx->typed, 1, NULL), 0);
	assert_string_equal(text_at(0), "Where?");
	/* a text is not a location */
	assert_int_equal(reply_text("Harare"), 0);
	assert_string_equal(text_at(0), "Where?");
	assert_int_equal(reply_json("{\"type\":\"location\",\"location\":{\"latitude\":-17.8,"
				    "\"longitude\":31.0,\"name\":\"Shop\"}}"),
			 0);
	loc = json_object_get(fx->s.context, "loc");
	assert_true(json_is_object(loc));
	assert_true(json_real_value(json_object_get(loc, "latitude")) == -17.8);
	assert_string_equal(json_string_value(json_object_get(loc, "name")), "Shop");
	m = json_array_get(fx->res.messages, 0);
	assert_string_equal(json_string_value(flow_path_get(m, "interactive.type")), "list");
	assert_int_equal(json_array_size(flow_path_get(m, "interactive.action.sections.0.rows")),
			 2);

	/* interactive_id: the id is saved, validated by the regex */
	assert_int_equal(
	    reply_json("{\"type\":\"interactive\",\"interactive\":{\"type\":\"list_reply\","
		       "\"list_reply\":{\"id\":\"r2\",\"title\":\"Two\"}}}"),
	    0);
	assert_string_equal(json_string_value(json_object_get(fx->s.context, "choice")), "r2");
	assert_string_equal(text_at(0), "Price?");

	/* number: "12.50" is saved as a JSON real */
	assert_int_equal(reply_text("12.50"), 0);
	assert_true(json_is_real(json_object_get(fx->s.context, "price")));
	assert_true(json_real_value(json_object_get(fx->s.context, "price")) == 12.5);
	assert_string_equal(text_at(0), "Price 12.5 ok?");

	/* the image step renders its link and caption, then its dead end hands over */
	assert_int_equal(reply_text("yes"), 0);
	assert_false(fx->s.active);
	assert_int_equal(nmsg(), 2);
	m = json_array_get(fx->res.messages, 0);
	assert_string_equal(json_string_value(json_object_get(m, "type")), "image");
	assert_string_equal(json_string_value(flow_path_get(m, "image.link")),
			    "https://x.test/r2.png");
	assert_string_equal(json_string_value(flow_path_get(m, "image.caption")), "At Shop");
	assert_string_equal(text_at(1), "Apologies, I've encountered a technical issue and can't "
					"continue. I'm connecting you with a team member.");
	assert_true(fx->res.handover);
	assert_string_equal(fx->res.handover_reason, "dead_end");
}

/* Resume on the price question and answer it; returns the saved value (borrowed). */
static json_t *price_after(const char *answer)
{
	flow_def_ref_t ref = {.flow_id = 1, .version_id = 1, .definition = fx->typed};

	assert_int_equal(flow_session_load(&fx->s, &ref, "price", NULL, NULL, 0), 0);
	assert_int_equal(reply_text(answer), 0);
	assert_string_equal(fx->s.current_step, "confirm");
	return json_object_get(fx->s.context, "price");
}

static void test_typed_number(void **state)
{
	json_t *v;

	(void)state;
	v = price_after("7");
	assert_true(json_is_integer(v));
	assert_int_equal(json_integer_value(v), 7);
	v = price_after(" -3 ");
	assert_int_equal(json_integer_value(v), -3);
	v = price_after("1e3");
	assert_true(json_is_real(v));
	assert_true(json_real_value(v) == 1000.0);
	v = price_after("99999999999999999999");
	assert_true(json_is_real(v));
	flow_session_clear(&fx->s);
}

static void test_session_load_and_errors(void **state)
{
	flow_def_ref_t ref = {.flow_id = 1, .version_id = 1, .definition = fx->signup};
	json_t *ctx = json_pack("{s:s}", "name", "kept");
	char longname[FLOW_NAME_MAX + 10];

	(void)state;
	/* the stored context is copied, never mutated */
	assert_int_equal(flow_session_load(&fx->s, &ref, "ask_age", ctx, NULL, 1), 0);
	assert_int_equal(reply_text("5"), 0);
	assert_string_equal(text_at(0), "Sorry, 5 is too young.");
	assert_null(json_object_get(ctx, "age"));
	json_decref(ctx);

	/* a step the definition does not have: the error outcome */
	assert_int_equal(flow_session_load(&fx->s, &ref, "vanished", NULL, NULL, 0), 0);
	assert_int_equal(reply_text("x"), -1);
	assert_string_equal(fx->res.error, "unknown_step");
	assert_int_equal(nmsg(), 1);
	assert_false(fx->s.active);

	/* no session */
	flow_session_init(&fx->s);
	assert_int_equal(reply_text("x"), -1);
	assert_string_equal(fx->res.error, "no_session");

	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(flow_session_load(&fx->s, &ref, longname, NULL, NULL, 0), -1);
	flow_session_clear(&fx->s);
}

static void test_last_step_ends_and_fallback_end_flow(void **state)
{
	json_t *def = load(
	    "{\"name\":\"f\",\"steps\":["
	    " {\"name\":\"q\",\"type\":\"question\",\"is_entry_point\":true,\"config\":{"
	    "  \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Yes or no?\"}},"
	    "  \"reply_config\":{\"expected_type\":\"text\"},"
	    "  \"fallback_config\":{\"max_retries\":0,\"action_after_retries\":\"end_flow\","
	    "   \"config_after_retries\":{\"message_config\":{\"message_type\":\"text\","
	    "    \"text\":{\"body\":\"Bye then\"}}}}},"
	    "  \"transitions\":[{\"to_step\":\"yes\",\"condition_config\":"
	    "   {\"type\":\"user_reply_matches_keyword\",\"keywords\":[\"yes\",\"y\"]}}]},"
	    " {\"name\":\"yes\",\"type\":\"end_flow\",\"config\":{\"message_config\":{"
	    "  \"message_type\":\"text\",\"text\":{\"body\":\"Great\"}}}}]}");

	(void)state;
	assert_int_equal(start(def, 1, NULL), 0);
	/* a valid text that no transition routes counts as invalid: max_retries 0 ends */
	assert_int_equal(reply_text("maybe"), 0);
	assert_int_equal(nmsg(), 1);
	assert_string_equal(text_at(0), "Bye then");
	assert_true(fx->res.ended);
	assert_false(fx->res.handover);

	assert_int_equal(start(def, 1, NULL), 0);
	assert_int_equal(reply_text("Y"), 0);
	assert_string_equal(text_at(0), "Great");
	assert_true(fx->res.ended);
	json_decref(def);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_trigger),
	    cmocka_unit_test(test_trigger_tie_goes_to_name),
	    cmocka_unit_test(test_invalid_three_times_hands_over),
	    cmocka_unit_test(test_invalid_reply_can_ask_for_a_human),
	    cmocka_unit_test(test_valid_path_to_end),
	    cmocka_unit_test(test_action_sets_variables),
	    cmocka_unit_test(test_switch_flow),
	    cmocka_unit_test(test_switch_to_missing_flow_is_an_error),
	    cmocka_unit_test(test_step_limit),
	    cmocka_unit_test(test_nfm_reply_twice),
	    cmocka_unit_test(test_typed_save),
	    cmocka_unit_test(test_typed_number),
	    cmocka_unit_test(test_session_load_and_errors),
	    cmocka_unit_test(test_last_step_ends_and_fallback_end_flow),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
