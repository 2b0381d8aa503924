/*
 * test_flow_validate.c - the flow definition validator (validate.c): one
 * test per rule, each asserting the exact path reported, and one that a
 * definition with many defects reports every one of them at once.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

/* A valid definition exercising every step type; each test breaks one thing. */
static const char *const base_json =
    "{\"name\":\"main_menu\",\"description\":\"Main menu\","
    " \"trigger_keywords\":[\"menu\",\"hi\"],"
    " \"trigger_config\":{\"extraction_regex\":\"order ([0-9]+)\",\"context_variable\":\"order\"},"
    " \"is_active\":true,"
    " \"steps\":["
    "  {\"name\":\"welcome\",\"type\":\"send_message\",\"is_entry_point\":true,"
    "   \"config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Welcome!\"}},"
    "   "
    "\"transitions\":[{\"to_step\":\"ask_name\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"ask_name\",\"type\":\"question\","
    "   \"config\":{\"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Name?\"}},"
    "    \"reply_config\":{\"save_to_variable\":\"name\",\"expected_type\":\"text\","
    "     \"validation_regex\":\"^[A-Za-z ]+$\"},"
    "    \"fallback_config\":{\"max_retries\":2,\"re_prompt_message_text\":\"Again?\","
    "     \"action_after_retries\":\"human_handover\"}},"
    "   \"transitions\":[{\"to_step\":\"menu\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"menu\",\"type\":\"question\","
    "   \"config\":{\"message_config\":{\"message_type\":\"interactive\",\"interactive\":{"
    "     \"type\":\"button\",\"header\":{\"type\":\"text\",\"text\":\"Menu\"},"
    "     \"body\":{\"text\":\"Pick one\"},\"footer\":{\"text\":\"Bye\"},"
    "     "
    "\"action\":{\"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"b1\",\"title\":\"Save\"}},"
    "      {\"type\":\"reply\",\"reply\":{\"id\":\"b2\",\"title\":\"Quit\"}}]}}},"
    "    \"reply_config\":{\"save_to_variable\":\"choice\",\"expected_type\":\"interactive_id\"}},"
    "   \"transitions\":["
    "    {\"to_step\":\"save\",\"priority\":1,\"condition_config\":"
    "     {\"type\":\"interactive_reply_id_equals\",\"value\":\"b1\"}},"
    "    {\"to_step\":\"bye\",\"priority\":2,\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"save\",\"type\":\"action\","
    "   \"config\":{\"actions_to_run\":["
    "    {\"action_type\":\"set_context_variable\",\"variable_name\":\"x\","
    "     \"value_template\":\"{{ name }}\"},"
    "    {\"action_type\":\"update_contact_field\",\"field_path\":\"name\","
    "     \"value_template\":\"{{ name }}\"}]},"
    "   \"transitions\":[{\"to_step\":\"pick\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"pick\",\"type\":\"send_message\","
    "   \"config\":{\"message_type\":\"interactive\",\"interactive\":{\"type\":\"list\","
    "    \"body\":{\"text\":\"Choose\"},\"action\":{\"button\":\"Options\",\"sections\":["
    "     {\"title\":\"A\",\"rows\":[{\"id\":\"r1\",\"title\":\"Row "
    "1\",\"description\":\"d\"}]}]}}},"
    "   \"transitions\":[{\"to_step\":\"photo\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"photo\",\"type\":\"send_message\","
    "   \"config\":{\"message_type\":\"image\",\"image\":{\"link\":\"https://x.test/a.png\","
    "    \"caption\":\"Look\"}},"
    "   \"transitions\":[{\"to_step\":\"form\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"form\",\"type\":\"send_message\","
    "   \"config\":{\"message_type\":\"interactive\",\"interactive\":{\"type\":\"flow\","
    "    \"body\":{\"text\":\"Fill in\"},\"action\":{\"name\":\"flow\",\"parameters\":{"
    "     \"flow_message_version\":\"3\",\"flow_id\":\"123\",\"flow_cta\":\"Start\","
    "     \"flow_action\":\"navigate\"}}}},"
    "   \"transitions\":[{\"to_step\":\"bye\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"bye\",\"type\":\"end_flow\",\"config\":{\"message_config\":"
    "   {\"message_type\":\"text\",\"text\":{\"body\":\"Bye {{ name }}\"}}}},"
    "  {\"name\":\"other\",\"type\":\"switch_flow\",\"config\":{\"target_flow_name\":\"support\"}},"
    "  {\"name\":\"agent\",\"type\":\"human_handover\","
    "   \"config\":{\"pre_handover_message_text\":\"Connecting you\"}}"
    " ]}";

/* Step indexes of base_json. */
enum { WELCOME, ASK_NAME, MENU, SAVE, PICK, PHOTO, FORM, BYE, OTHER, AGENT };

static json_t *base(void)
{
	json_error_t e;
	json_t *d = json_loads(base_json, JSON_REJECT_DUPLICATES, &e);

	if (d == NULL)
		fail_msg("base JSON: %s at %d", e.text, e.position);
	return d;
}

/* The object at dotted path ("" = root). */
static json_t *at(json_t *root, const char *path)
{
	json_t *o = path[0] == '\0' ? root : flow_path_get(root, path);

	if (o == NULL)
		fail_msg("no %s in the test definition", path);
	return o;
}

/* parent[key] = v (steals v); parent is an object, or an array when key is an index. */
static void put(json_t *root, const char *parent, const char *key, json_t *v)
{
	json_t *p = at(root, parent);

	if (json_is_array(p))
		json_array_set_new(p, (size_t)atoi(key), v);
	else
		json_object_set_new(p, key, v);
}

static void del(json_t *root, const char *parent, const char *key)
{
	json_object_del(at(root, parent), key);
}

static json_t *jparse(const char *s)
{
	json_t *v = json_loads(s, JSON_DECODE_ANY, NULL);

	if (v == NULL)
		fail_msg("bad test JSON %s", s);
	return v;
}

/* A string of n copies of c. */
static json_t *str_n(size_t n, char c)
{
	char *s = malloc(n + 1);
	json_t *v;

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	v = json_string(s);
	free(s);
	return v;
}

/* Validate def (consumed) and require a problem at exactly `path`. */
static void expect_at(json_t *def, const char *path, int line)
{
	json_t *problems = json_array(), *p;
	size_t n = flow_validate(def, problems), i;
	bool found = false;

	json_array_foreach(problems, i, p)
	{
		if (strcmp(json_string_value(json_object_get(p, "path")), path) == 0)
			found = true;
		assert_non_null(json_string_value(json_object_get(p, "message")));
	}
	if (!found || n == 0) {
		char *dump = json_dumps(problems, JSON_INDENT(1));
		char msg[2048];

		snprintf(msg, sizeof(msg), "line %d: no problem at \"%s\"; got %s", line, path,
			 dump);
		free(dump);
		json_decref(problems);
		json_decref(def);
		fail_msg("%s", msg);
	}
	json_decref(problems);
	json_decref(def);
}
#define EXPECT(def, path) expect_at((def), (path), __LINE__)

static void test_base_is_valid(void **state)
{
	json_t *d = base(), *problems = json_array();
	size_t n = flow_validate(d, problems);

	(void)state;
	if (n != 0) {
		char *dump = json_dumps(problems, JSON_INDENT(1));

		fail_msg("base definition has problems: %s", dump);
	}
	assert_int_equal(json_array_size(problems), 0);
	json_decref(problems);
	json_decref(d);
}

static void test_not_an_object(void **state)
{
	(void)state;
	EXPECT(json_array(), "");
}

static void test_name_required(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "", "name");
	EXPECT(d, "name");
}

static void test_steps_required(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "", "steps", json_array());
	EXPECT(d, "steps");
}

static void test_too_many_steps(void **state)
{
	json_t *d = base(), *steps = json_object_get(d, "steps");

	(void)state;
	for (int i = 0; i < FLOW_MAX_STEPS; i++)
		json_array_append_new(steps,
				      json_pack("{s:s,s:s}", "name", "x", "type", "end_flow"));
	EXPECT(d, "steps");
}

static void test_no_entry_step(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.0", "is_entry_point");
	EXPECT(d, "steps");
}

static void test_two_entry_steps(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2", "is_entry_point", json_true());
	EXPECT(d, "steps[2].is_entry_point");
}

static void test_duplicate_step_names(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.3", "name", json_string("ask_name"));
	EXPECT(d, "steps[3].name");
}

static void test_unknown_step_type(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1", "type", json_string("ask"));
	EXPECT(d, "steps[1].type");
}

static void test_transition_target_exists(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0", "to_step", json_string("nowhere"));
	EXPECT(d, "steps[0].transitions[0].to_step");
}

static void test_too_many_transitions(void **state)
{
	json_t *d = base(), *ts = flow_path_get(d, "steps.0.transitions");

	(void)state;
	for (int i = 0; i < FLOW_MAX_TRANSITIONS; i++)
		json_array_append(ts, json_array_get(ts, 0));
	EXPECT(d, "steps[0].transitions");
}

static void test_unknown_condition_type(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0.condition_config", "type", json_string("sometimes_true"));
	EXPECT(d, "steps[0].transitions[0].condition_config.type");
}

static void test_condition_missing_value(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.2.transitions.0.condition_config", "value");
	EXPECT(d, "steps[2].transitions[0].condition_config.value");
}

static void test_condition_missing_variable(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0", "condition_config",
	    jparse("{\"type\":\"variable_greater_than\",\"value\":3}"));
	EXPECT(d, "steps[0].transitions[0].condition_config.variable_name");
}

static void test_condition_numeric_value(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0", "condition_config",
	    jparse(
		"{\"type\":\"variable_less_than\",\"variable_name\":\"age\",\"value\":\"ten\"}"));
	EXPECT(d, "steps[0].transitions[0].condition_config.value");
}

static void test_condition_missing_keyword(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0", "condition_config",
	    jparse("{\"type\":\"user_reply_contains_keyword\"}"));
	EXPECT(d, "steps[0].transitions[0].condition_config.keyword");
}

static void test_condition_regex_compiles(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.transitions.0", "condition_config",
	    jparse("{\"type\":\"user_reply_matches_regex\",\"regex\":\"(oops\"}"));
	EXPECT(d, "steps[0].transitions[0].condition_config.regex");
}

static void test_validation_regex_compiles(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.reply_config", "validation_regex", json_string("[a-"));
	EXPECT(d, "steps[1].config.reply_config.validation_regex");
}

static void test_extraction_regex_compiles(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "trigger_config", "extraction_regex", json_string("order (\\d+"));
	EXPECT(d, "trigger_config.extraction_regex");
}

static void test_extraction_needs_variable(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "trigger_config", "context_variable");
	EXPECT(d, "trigger_config.context_variable");
}

static void test_trigger_keywords(void **state)
{
	json_t *d = base();

	(void)state;
	json_array_append_new(json_object_get(d, "trigger_keywords"), json_string("  "));
	EXPECT(d, "trigger_keywords[2]");
}

static void test_text_body_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.config.text", "body", str_n(FLOW_WA_TEXT_BODY_MAX + 1, 'a'));
	EXPECT(d, "steps[0].config.text.body");
}

static void test_caption_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.5.config.image", "caption", str_n(FLOW_WA_CAPTION_MAX + 1, 'c'));
	EXPECT(d, "steps[5].config.image.caption");
}

static void test_media_needs_source(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.5.config", "image", jparse("{\"caption\":\"no source\"}"));
	EXPECT(d, "steps[5].config.image");
}

static void test_too_many_buttons(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.action", "buttons",
	    jparse("[{\"type\":\"reply\",\"reply\":{\"id\":\"1\",\"title\":\"a\"}},"
		   "{\"type\":\"reply\",\"reply\":{\"id\":\"2\",\"title\":\"b\"}},"
		   "{\"type\":\"reply\",\"reply\":{\"id\":\"3\",\"title\":\"c\"}},"
		   "{\"type\":\"reply\",\"reply\":{\"id\":\"4\",\"title\":\"d\"}}]"));
	EXPECT(d, "steps[2].config.message_config.interactive.action.buttons");
}

static void test_button_title_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.action.buttons.0.reply", "title",
	    str_n(FLOW_WA_BUTTON_TITLE_MAX + 1, 't'));
	EXPECT(d, "steps[2].config.message_config.interactive.action.buttons[0].reply.title");
}

static void test_button_ids_unique(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.action.buttons.1.reply", "id",
	    json_string("b1"));
	EXPECT(d, "steps[2].config.message_config.interactive.action.buttons[1].reply.id");
}

static void test_interactive_body_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.body", "text",
	    str_n(FLOW_WA_INTERACTIVE_BODY_MAX + 1, 'b'));
	EXPECT(d, "steps[2].config.message_config.interactive.body.text");
}

static void test_header_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.header", "text",
	    str_n(FLOW_WA_HEADER_MAX + 1, 'h'));
	EXPECT(d, "steps[2].config.message_config.interactive.header.text");
}

static void test_footer_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.2.config.message_config.interactive.footer", "text",
	    str_n(FLOW_WA_FOOTER_MAX + 1, 'f'));
	EXPECT(d, "steps[2].config.message_config.interactive.footer.text");
}

static void test_list_sections_limit(void **state)
{
	json_t *d = base(), *secs = json_array();

	(void)state;
	for (int i = 0; i < FLOW_WA_SECTIONS_MAX + 1; i++)
		json_array_append_new(secs, json_pack("{s:s,s:[{s:s,s:s}]}", "title", "S", "rows",
						      "id", "r", "title", "R"));
	put(d, "steps.4.config.interactive.action", "sections", secs);
	EXPECT(d, "steps[4].config.interactive.action.sections");
}

static void test_list_rows_limit(void **state)
{
	json_t *d = base(),
	       *rows = json_object_get(
		   json_array_get(flow_path_get(d, "steps.4.config.interactive.action.sections"),
				  0),
		   "rows");
	json_t *more = json_array();

	(void)state;
	/* 6 + 5 rows in two sections: each is fine, the list is not */
	for (int i = 1; i < 6; i++)
		json_array_append_new(
		    rows, json_pack("{s:s,s:s}", "id", (char[]){(char)('a' + i), 0}, "title", "R"));
	for (int i = 0; i < 5; i++)
		json_array_append_new(
		    more, json_pack("{s:s,s:s}", "id", (char[]){(char)('m' + i), 0}, "title", "R"));
	json_array_append_new(flow_path_get(d, "steps.4.config.interactive.action.sections"),
			      json_pack("{s:s,s:o}", "title", "B", "rows", more));
	EXPECT(d, "steps[4].config.interactive.action.sections");
}

static void test_row_title_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.4.config.interactive.action.sections.0.rows.0", "title",
	    str_n(FLOW_WA_ROW_TITLE_MAX + 1, 'r'));
	EXPECT(d, "steps[4].config.interactive.action.sections[0].rows[0].title");
}

static void test_row_description_limit(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.4.config.interactive.action.sections.0.rows.0", "description",
	    str_n(FLOW_WA_ROW_DESC_MAX + 1, 'd'));
	EXPECT(d, "steps[4].config.interactive.action.sections[0].rows[0].description");
}

static void test_interactive_type(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.4.config.interactive", "type", json_string("carousel"));
	EXPECT(d, "steps[4].config.interactive.type");
}

static void test_flow_message_needs_flow_id(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.6.config.interactive.action.parameters", "flow_id");
	EXPECT(d, "steps[6].config.interactive.action.parameters.flow_id");
}

static void test_limits_count_characters(void **state)
{
	json_t *d = base(), *problems = json_array();
	char title[FLOW_WA_BUTTON_TITLE_MAX * 2 + 1];

	(void)state;
	/* 20 two-byte characters are 40 bytes but within the 20-character limit */
	for (int i = 0; i < FLOW_WA_BUTTON_TITLE_MAX; i++)
		memcpy(title + 2 * i, "\xc3\xa9", 2);
	title[FLOW_WA_BUTTON_TITLE_MAX * 2] = '\0';
	put(d, "steps.2.config.message_config.interactive.action.buttons.0.reply", "title",
	    json_string(title));
	assert_int_equal(flow_validate(d, problems), 0);
	json_decref(problems);
	json_decref(d);
}

static void test_templated_strings_measured_after_render(void **state)
{
	json_t *d = base(), *problems = json_array();

	(void)state;
	/* longer than 20 as written, but what matters is the rendered title (clamped) */
	put(d, "steps.2.config.message_config.interactive.action.buttons.0.reply", "title",
	    json_string("{{ contact.first_name | title }}"));
	assert_int_equal(flow_validate(d, problems), 0);
	json_decref(problems);
	/* still bounded */
	problems = json_array();
	{
		json_t *big = str_n(5000, 'x');
		char *s = malloc(5000 + 10);

		assert_non_null(s);
		snprintf(s, 5010, "{{ a }}%s", json_string_value(big));
		put(d, "steps.2.config.message_config.interactive.action.buttons.0.reply", "title",
		    json_string(s));
		free(s);
		json_decref(big);
	}
	EXPECT(d, "steps[2].config.message_config.interactive.action.buttons[0].reply.title");
	json_decref(problems);
}

static void test_step_needs_way_out(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.5", "transitions", json_array());
	EXPECT(d, "steps[5].transitions");
}

static void test_send_message_type_required(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.0.config", "message_type");
	EXPECT(d, "steps[0].config.message_type");
}

static void test_send_message_type_known(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.config", "message_type", json_string("fax"));
	EXPECT(d, "steps[0].config.message_type");
}

static void test_send_message_object_present(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.0.config", "message_type", json_string("video"));
	EXPECT(d, "steps[0].config.video");
}

static void test_question_needs_message_config(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.1.config", "message_config");
	EXPECT(d, "steps[1].config.message_config");
}

static void test_question_needs_reply_config(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.1.config", "reply_config");
	EXPECT(d, "steps[1].config.reply_config");
}

static void test_expected_type_known(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.reply_config", "expected_type", json_string("phone"));
	EXPECT(d, "steps[1].config.reply_config.expected_type");
}

static void test_save_to_variable_name(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.reply_config", "save_to_variable", json_string("first name"));
	EXPECT(d, "steps[1].config.reply_config.save_to_variable");
}

static void test_max_retries_bounded(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.fallback_config", "max_retries", json_integer(1000));
	EXPECT(d, "steps[1].config.fallback_config.max_retries");
}

static void test_action_after_retries_known(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.fallback_config", "action_after_retries", json_string("re_prompt"));
	EXPECT(d, "steps[1].config.fallback_config.action_after_retries");
}

static void test_switch_after_retries_needs_target(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.1.config.fallback_config", "action_after_retries",
	    json_string("switch_flow"));
	EXPECT(d, "steps[1].config.fallback_config.config_after_retries");
}

static void test_action_needs_actions(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.3.config", "actions_to_run");
	EXPECT(d, "steps[3].config.actions_to_run");
}

static void test_action_type_known(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.3.config.actions_to_run.0", "action_type", json_string("query_model"));
	EXPECT(d, "steps[3].config.actions_to_run[0].action_type");
}

static void test_set_variable_needs_name(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.3.config.actions_to_run.0", "variable_name");
	EXPECT(d, "steps[3].config.actions_to_run[0].variable_name");
}

static void test_action_needs_value_template(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.3.config.actions_to_run.0", "value_template");
	EXPECT(d, "steps[3].config.actions_to_run[0].value_template");
}

static void test_contact_field_whitelist(void **state)
{
	json_t *d = base();

	(void)state;
	put(d, "steps.3.config.actions_to_run.1", "field_path", json_string("needs_human"));
	EXPECT(d, "steps[3].config.actions_to_run[1].field_path");
	assert_true(flow_contact_field_allowed("email"));
	assert_false(flow_contact_field_allowed("wa_id"));
	assert_false(flow_contact_field_allowed(NULL));
}

static void test_switch_needs_target(void **state)
{
	json_t *d = base();

	(void)state;
	del(d, "steps.8.config", "target_flow_name");
	EXPECT(d, "steps[8].config.target_flow_name");
}

static void test_reports_every_problem_at_once(void **state)
{
	json_t *d = base(), *problems = json_array(), *p;
	static const char *const want[] = {
	    "name",
	    "steps[0].transitions[0].to_step",
	    "steps[1].config.reply_config.expected_type",
	    "steps[2].transitions[0].condition_config.value",
	    "steps[3].config.actions_to_run[1].field_path",
	    "steps[5].config.image.caption",
	    "steps[8].config.target_flow_name",
	    "trigger_config.extraction_regex",
	};
	size_t n, i;

	(void)state;
	del(d, "", "name");
	put(d, "steps.0.transitions.0", "to_step", json_string("nowhere"));
	put(d, "steps.1.config.reply_config", "expected_type", json_string("phone"));
	del(d, "steps.2.transitions.0.condition_config", "value");
	put(d, "steps.3.config.actions_to_run.1", "field_path", json_string("id"));
	put(d, "steps.5.config.image", "caption", str_n(FLOW_WA_CAPTION_MAX + 1, 'c'));
	del(d, "steps.8.config", "target_flow_name");
	put(d, "trigger_config", "extraction_regex", json_string("(("));
	n = flow_validate(d, problems);
	assert_int_equal(n, sizeof(want) / sizeof(want[0]));
	assert_int_equal(json_array_size(problems), n);
	for (size_t k = 0; k < n; k++) {
		bool found = false;

		json_array_foreach(problems, i, p)
		{
			if (strcmp(json_string_value(json_object_get(p, "path")), want[k]) == 0)
				found = true;
		}
		if (!found)
			fail_msg("no problem at %s", want[k]);
	}
	json_decref(problems);
	json_decref(d);
}

static void test_problem_list_is_bounded(void **state)
{
	json_t *d = base(), *steps = json_object_get(d, "steps"), *problems = json_array();

	(void)state;
	/* 190 broken steps with several problems each */
	for (int i = 0; i < 190; i++)
		json_array_append_new(steps, json_pack("{s:i,s:s,s:[i]}", "name", i, "type", "nope",
						       "transitions", 1));
	assert_true(flow_validate(d, problems) > 0);
	assert_int_equal(json_array_size(problems), FLOW_MAX_PROBLEMS + 1);
	json_decref(problems);
	json_decref(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_base_is_valid),
	    cmocka_unit_test(test_not_an_object),
	    cmocka_unit_test(test_name_required),
	    cmocka_unit_test(test_steps_required),
	    cmocka_unit_test(test_too_many_steps),
	    cmocka_unit_test(test_no_entry_step),
	    cmocka_unit_test(test_two_entry_steps),
	    cmocka_unit_test(test_duplicate_step_names),
	    cmocka_unit_test(test_unknown_step_type),
	    cmocka_unit_test(test_transition_target_exists),
	    cmocka_unit_test(test_too_many_transitions),
	    cmocka_unit_test(test_unknown_condition_type),
	    cmocka_unit_test(test_condition_missing_value),
	    cmocka_unit_test(test_condition_missing_variable),
	    cmocka_unit_test(test_condition_numeric_value),
	    cmocka_unit_test(test_condition_missing_keyword),
	    cmocka_unit_test(test_condition_regex_compiles),
	    cmocka_unit_test(test_validation_regex_compiles),
	    cmocka_unit_test(test_extraction_regex_compiles),
	    cmocka_unit_test(test_extraction_needs_variable),
	    cmocka_unit_test(test_trigger_keywords),
	    cmocka_unit_test(test_text_body_limit),
	    cmocka_unit_test(test_caption_limit),
	    cmocka_unit_test(test_media_needs_source),
	    cmocka_unit_test(test_too_many_buttons),
	    cmocka_unit_test(test_button_title_limit),
	    cmocka_unit_test(test_button_ids_unique),
	    cmocka_unit_test(test_interactive_body_limit),
	    cmocka_unit_test(test_header_limit),
	    cmocka_unit_test(test_footer_limit),
	    cmocka_unit_test(test_list_sections_limit),
	    cmocka_unit_test(test_list_rows_limit),
	    cmocka_unit_test(test_row_title_limit),
	    cmocka_unit_test(test_row_description_limit),
	    cmocka_unit_test(test_interactive_type),
	    cmocka_unit_test(test_flow_message_needs_flow_id),
	    cmocka_unit_test(test_limits_count_characters),
	    cmocka_unit_test(test_templated_strings_measured_after_render),
	    cmocka_unit_test(test_step_needs_way_out),
	    cmocka_unit_test(test_send_message_type_required),
	    cmocka_unit_test(test_send_message_type_known),
	    cmocka_unit_test(test_send_message_object_present),
	    cmocka_unit_test(test_question_needs_message_config),
	    cmocka_unit_test(test_question_needs_reply_config),
	    cmocka_unit_test(test_expected_type_known),
	    cmocka_unit_test(test_save_to_variable_name),
	    cmocka_unit_test(test_max_retries_bounded),
	    cmocka_unit_test(test_action_after_retries_known),
	    cmocka_unit_test(test_switch_after_retries_needs_target),
	    cmocka_unit_test(test_action_needs_actions),
	    cmocka_unit_test(test_action_type_known),
	    cmocka_unit_test(test_set_variable_needs_name),
	    cmocka_unit_test(test_action_needs_value_template),
	    cmocka_unit_test(test_contact_field_whitelist),
	    cmocka_unit_test(test_switch_needs_target),
	    cmocka_unit_test(test_reports_every_problem_at_once),
	    cmocka_unit_test(test_problem_list_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
