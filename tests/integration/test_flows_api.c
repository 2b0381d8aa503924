/*
 * test_flows_api.c - the WhatsApp flows HTTP API (API.md "WhatsApp flows")
 * through the API pipeline (api_dispatch) on a real database as
 * dialflow_app:
 *
 *   - flows: create (201, version 1), 422 invalid_flow with every problem and
 *     its path, 409 on a taken name, 413 past 1 MiB, list and get, PUT makes
 *     version 2 while a running conversation stays pinned to version 1,
 *     activate/deactivate, DELETE refused with 409 flow_in_use and forced
 *     (sessions ended, FLOW_STATE audit row);
 *   - simulate: a question answered wrongly then rightly, to the end, and
 *     nothing written anywhere (row counts before and after);
 *   - contacts: the needs_human inbox, a contact with its flow state and
 *     messages, an agent's reply (202, an outbox row with sender agent, the
 *     handover stays), resolving a handover (HANDOVER audit row);
 *   - WhatsApp settings: secrets never answered, first PUT needs every field,
 *     a phone_number_id of another business is 409;
 *   - role guards, and tenant isolation: another tenant's flow or contact is
 *     403 forbidden with a tenant.cross_access audit row, an unknown id 404.
 */
#include "apitest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
	api_ctx_t ctx;
	char secret[64];
	PGconn *owner;
} fx;

typedef struct tenant {
	int64_t biz, owner, admin, agent;
	char *owner_tok, *admin_tok, *agent_tok;
	char bid[24];
} tenant_t;

static void tenant_new(tenant_t *t)
{
	static const char *const pages[] = {"whatsapp_flows", "contacts", "settings", NULL};

	memset(t, 0, sizeof(*t));
	t->biz = itest_create_business(fx.owner, "flowsapi", true);
	itest_i64s(t->bid, sizeof(t->bid), t->biz);
	itest_enable_pages(fx.owner, t->biz, pages);
	t->owner = itest_create_user(fx.owner, t->biz, "owner", NULL, NULL, 0);
	t->admin = itest_create_user(fx.owner, t->biz, "admin", NULL, NULL, 0);
	t->agent = itest_create_user(fx.owner, t->biz, "agent", NULL, NULL, 0);
	t->owner_tok = at_token(&fx.ctx, t->owner);
	t->admin_tok = at_token(&fx.ctx, t->admin);
	t->agent_tok = at_token(&fx.ctx, t->agent);
}

static void tenant_free(tenant_t *t)
{
	free(t->owner_tok);
	free(t->admin_tok);
	free(t->agent_tok);
}

static const char *s64(char *buf, int64_t v)
{
	return itest_i64s(buf, 24, v);
}

/*
 * A three-step flow: a greeting that uses the trigger's extracted order
 * number, a number question (re-prompted once wrong), and an end message.
 */
static const char *const order_json =
    "{\"name\":\"order\",\"description\":\"Order intake\",\"trigger_keywords\":[\"order\"],"
    " \"trigger_config\":{\"extraction_regex\":\"order ([0-9]+)\","
    "  \"context_variable\":\"order_no\"},"
    " \"steps\":["
    "  {\"name\":\"welcome\",\"type\":\"send_message\",\"is_entry_point\":true,"
    "   \"config\":{\"message_type\":\"text\",\"text\":{\"body\":"
    "    \"Hi {{ contact.name }}, order {{ order_no | default('none') }}\"}},"
    "   "
    "\"transitions\":[{\"to_step\":\"ask_qty\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"ask_qty\",\"type\":\"question\","
    "   \"config\":{\"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"How "
    "many?\"}},"
    "    \"reply_config\":{\"save_to_variable\":\"qty\",\"expected_type\":\"number\"},"
    "    \"fallback_config\":{\"max_retries\":2,\"re_prompt_message_text\":\"Please send a "
    "number.\"}},"
    "   \"transitions\":[{\"to_step\":\"done\",\"condition_config\":{\"type\":\"always_true\"}}]},"
    "  {\"name\":\"done\",\"type\":\"end_flow\",\"config\":{\"message_config\":"
    "   {\"message_type\":\"text\",\"text\":{\"body\":\"Got {{ qty }}\"}}}}"
    " ]}";

/* order_json with another name (and optionally is_active), as a malloc'd string. */
static char *order_named(const char *name, int active)
{
	json_t *d = json_loads(order_json, JSON_REJECT_DUPLICATES, NULL);
	char *s;

	assert_non_null(d);
	json_object_set_new(d, "name", json_string(name));
	if (active >= 0)
		json_object_set_new(d, "is_active", json_boolean(active));
	s = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	return s;
}

/* POST /api/flows as t's admin; returns the new flow's id. */
static int64_t create_flow(tenant_t *t, const char *name, int active)
{
	char *body = order_named(name, active);
	at_resp_t r = at_json(&fx.ctx, "POST", "/api/flows", t->admin_tok, body);
	int64_t id;

	AT_STATUS(r, 201);
	id = at_int(&r, "flow.id");
	at_free(&r);
	free(body);
	return id;
}

static int64_t create_contact(tenant_t *t, const char *wa_id, bool needs_human)
{
	return ITEST_I64(fx.owner,
			 "INSERT INTO contacts (business_id, wa_id, name, needs_human, "
			 "handover_requested_at, handover_reason) VALUES ($1::bigint, $2, "
			 "'Dana', $3::boolean, CASE WHEN $3::boolean THEN now() END, "
			 "CASE WHEN $3::boolean THEN 'retries_exhausted' END) RETURNING id",
			 t->bid, wa_id, needs_human ? "true" : "false");
}

static int64_t audit_rows(tenant_t *t, const char *tag, const char *action, const char *type,
			  int64_t id)
{
	char ids[24];

	return ITEST_I64(
	    fx.owner,
	    "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint AND "
	    "tag = $2 AND action = $3 AND resource_type = $4 AND resource_id = $5::bigint",
	    t->bid, tag, action, type, s64(ids, id));
}

/* --- flows ---------------------------------------------------------------- */

static void test_create_get_list(void **state)
{
	tenant_t t;
	char uri[96], *body;
	at_resp_t r;
	int64_t id;

	(void)state;
	tenant_new(&t);
	body = order_named("order", 1);
	r = at_json(&fx.ctx, "POST", "/api/flows", t.admin_tok, body);
	AT_STATUS(r, 201);
	id = at_int(&r, "flow.id");
	assert_string_equal(at_str(&r, "flow.name"), "order");
	assert_string_equal(at_str(&r, "flow.description"), "Order intake");
	assert_int_equal(at_int(&r, "flow.version"), 1);
	assert_true(at_int(&r, "flow.version_id") > 0);
	assert_true(json_is_true(at_get(&r, "flow.is_active")));
	assert_string_equal(at_str(&r, "flow.trigger_keywords.0"), "order");
	assert_string_equal(at_str(&r, "flow.trigger_config.context_variable"), "order_no");
	assert_string_equal(at_str(&r, "flow.definition.steps.1.name"), "ask_qty");
	at_str(&r, "flow.created_at");
	at_str(&r, "flow.updated_at");
	at_free(&r);
	assert_int_equal(audit_rows(&t, "AUDIT", "flow.create", "flow", id), 1);

	/* the same name again */
	r = at_json(&fx.ctx, "POST", "/api/flows", t.admin_tok, body);
	AT_ERROR(r, 409, "conflict");
	at_free(&r);
	free(body);

	/* is_active defaults to false */
	(void)create_flow(&t, "second", -1);

	r = at_json(&fx.ctx, "GET", "/api/flows?page_size=1", t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 2);
	assert_int_equal(at_int(&r, "page_size"), 1);
	assert_int_equal(json_array_size(at_get(&r, "items")), 1);
	assert_string_equal(at_str(&r, "items.0.name"), "order"); /* by name */
	assert_int_equal(at_int(&r, "items.0.version"), 1);
	assert_string_equal(at_str(&r, "items.0.trigger_keywords.0"), "order");
	at_str(&r, "items.0.updated_at");
	assert_null(at_get(&r, "items.0.definition"));
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/flows?is_active=false", t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 1);
	assert_string_equal(at_str(&r, "items.0.name"), "second");
	assert_true(json_is_false(at_get(&r, "items.0.is_active")));
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/flows?is_active=maybe", t.admin_tok, NULL);
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);

	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "GET", uri, t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "flow.id"), id);
	assert_string_equal(at_str(&r, "flow.definition.name"), "order");
	at_free(&r);

	/* malformed and unknown ids */
	r = at_json(&fx.ctx, "GET", "/api/flows/1'OR'1'='1", t.admin_tok, NULL);
	assert_true(r.status == 404 || r.status == 400);
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/flows/99999999999999999999", t.admin_tok, NULL);
	assert_true(r.status == 404 || r.status == 400);
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/flows/9000000000000000", t.admin_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	tenant_free(&t);
}

static bool has_problem(const at_resp_t *r, const char *path)
{
	json_t *v;
	size_t i;

	json_array_foreach(at_get(r, "error.problems"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "path")), path) == 0)
			return true;
	}
	return false;
}

static void test_invalid_definitions(void **state)
{
	/* no entry step, a target that does not exist, an unknown expected_type, a
	 * regex that does not compile, a button title that is too long */
	static const char *const bad =
	    "{\"name\":\"bad\",\"trigger_keywords\":[\"x\"],\"steps\":["
	    " {\"name\":\"a\",\"type\":\"send_message\",\"config\":{\"message_type\":"
	    "\"interactive\","
	    "  \"interactive\":{\"type\":\"button\",\"body\":{\"text\":\"Pick\"},\"action\":{"
	    "   \"buttons\":[{\"type\":\"reply\",\"reply\":{\"id\":\"b1\","
	    "    \"title\":\"A title far longer than twenty\"}}]}}},"
	    "  \"transitions\":[{\"to_step\":\"nowhere\","
	    "   \"condition_config\":{\"type\":\"always_true\"}}]},"
	    " {\"name\":\"b\",\"type\":\"question\",\"config\":{"
	    "  \"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Q\"}},"
	    "  \"reply_config\":{\"save_to_variable\":\"v\",\"expected_type\":\"bogus\","
	    "   \"validation_regex\":\"(\"}},"
	    "  "
	    "\"transitions\":[{\"to_step\":\"a\",\"condition_config\":{\"type\":\"always_true\"}}]}"
	    "]}";
	tenant_t t;
	at_resp_t r;
	char *big;
	size_t n = 1024 * 1024 + 16;

	(void)state;
	tenant_new(&t);
	r = at_json(&fx.ctx, "POST", "/api/flows", t.admin_tok, bad);
	AT_ERROR(r, 422, "invalid_flow");
	assert_true(json_array_size(at_get(&r, "error.problems")) >= 5);
	at_str(&r, "error.message");
	assert_true(has_problem(&r, "steps[0].transitions[0].to_step"));
	assert_true(has_problem(&r, "steps[1].config.reply_config.expected_type"));
	assert_true(has_problem(&r, "steps[1].config.reply_config.validation_regex"));
	assert_true(has_problem(&r, "steps[0].config.interactive.action.buttons[0].reply.title"));
	at_str(&r, "error.problems.0.message");
	at_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM flows WHERE business_id = $1", t.bid), 0);

	/* not an object; too large */
	r = at_json(&fx.ctx, "POST", "/api/flows", t.admin_tok, "[1,2]");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	big = malloc(n + 64);
	assert_non_null(big);
	strcpy(big, "{\"name\":\"big\",\"description\":\"");
	memset(big + strlen(big), 'a', n);
	strcpy(big + strlen("{\"name\":\"big\",\"description\":\"") + n, "\"}");
	r = at_json(&fx.ctx, "POST", "/api/flows", t.admin_tok, big);
	AT_ERROR(r, 413, "payload_too_large");
	at_free(&r);
	free(big);
	tenant_free(&t);
}

static void test_versions_are_pinned(void **state)
{
	tenant_t t;
	char uri[96], ids[24], v1s[24], cs[24], *body;
	int64_t id, v1, v2, contact;
	json_t *d;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	id = create_flow(&t, "order", 1);
	s64(ids, id);
	v1 = ITEST_I64(fx.owner, "SELECT current_version_id FROM flows WHERE id = $1::bigint", ids);
	/* a conversation in progress on version 1 */
	contact = create_contact(&t, "972500000001", false);
	ITEST_X(
	    fx.owner,
	    "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, flow_version_id, "
	    "current_step, context) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, "
	    "'ask_qty', '{\"order_no\":\"7\"}')",
	    s64(cs, contact), t.bid, ids, s64(v1s, v1));

	d = json_loads(order_json, 0, NULL);
	json_object_set_new(d, "description", json_string("Order intake, v2"));
	json_object_set_new(d, "trigger_keywords", json_pack("[s,s]", "order", "buy"));
	body = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "PUT", uri, t.admin_tok, body);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "flow.version"), 2);
	v2 = at_int(&r, "flow.version_id");
	assert_true(v2 != v1);
	assert_string_equal(at_str(&r, "flow.description"), "Order intake, v2");
	assert_string_equal(at_str(&r, "flow.trigger_keywords.1"), "buy");
	assert_true(json_is_true(at_get(&r, "flow.is_active"))); /* not given: kept */
	assert_int_equal(at_int(&r, "flow.active_sessions"), 1);
	at_free(&r);
	free(body);
	/* the running conversation keeps version 1 */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT flow_version_id FROM contact_flow_state "
				   "WHERE contact_id = $1::bigint",
				   cs),
			 v1);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT current_version_id FROM flows WHERE id = $1::bigint", ids),
	    v2);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM audit_events WHERE action = 'flow.update' "
				   "AND resource_id = $1::bigint AND details->>'version' = '2'",
				   ids),
			 1);

	r = at_json(&fx.ctx, "GET", "/api/flows/0/versions", t.admin_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/versions", (long long)id);
	r = at_json(&fx.ctx, "GET", uri, t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 2);
	assert_int_equal(at_int(&r, "items.0.version"), 2);
	assert_true(json_is_true(at_get(&r, "items.0.is_current")));
	assert_int_equal(at_int(&r, "items.1.id"), v1);
	at_free(&r);

	/* an invalid new definition changes nothing */
	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "PUT", uri, t.admin_tok, "{\"name\":\"order\",\"steps\":[]}");
	AT_ERROR(r, 422, "invalid_flow");
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM flow_versions WHERE flow_id = $1::bigint",
				   ids),
			 2);
	/* renaming onto another flow's name */
	(void)create_flow(&t, "taken", 0);
	body = order_named("taken", -1);
	r = at_json(&fx.ctx, "PUT", uri, t.admin_tok, body);
	AT_ERROR(r, 409, "conflict");
	at_free(&r);
	free(body);
	tenant_free(&t);
}

static void test_activate_and_delete(void **state)
{
	tenant_t t;
	char uri[128], ids[24], cs[24], vs[24];
	int64_t id, contact;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	id = create_flow(&t, "order", 0);
	s64(ids, id);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/activate", (long long)id);
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_true(json_is_true(at_get(&r, "flow.is_active")));
	at_free(&r);
	assert_int_equal(audit_rows(&t, "AUDIT", "flow.activate", "flow", id), 1);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/deactivate", (long long)id);
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_true(json_is_false(at_get(&r, "flow.is_active")));
	at_free(&r);
	assert_int_equal(audit_rows(&t, "AUDIT", "flow.deactivate", "flow", id), 1);

	contact = create_contact(&t, "972500000002", false);
	ITEST_X(
	    fx.owner,
	    "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, flow_version_id, "
	    "current_step) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, 'ask_qty')",
	    s64(cs, contact), t.bid, ids,
	    s64(vs,
		ITEST_I64(fx.owner, "SELECT current_version_id FROM flows WHERE id = $1", ids)));
	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "DELETE", uri, t.admin_tok, NULL);
	AT_ERROR(r, 409, "flow_in_use");
	assert_int_equal(at_int(&r, "error.contacts"), 1);
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld?force=perhaps", (long long)id);
	r = at_json(&fx.ctx, "DELETE", uri, t.admin_tok, NULL);
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld?force=true", (long long)id);
	r = at_json(&fx.ctx, "DELETE", uri, t.admin_tok, NULL);
	AT_STATUS(r, 204);
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM contact_flow_state WHERE contact_id = $1",
				   cs),
			 0);
	assert_int_equal(ITEST_I64(fx.owner, "SELECT count(*) FROM flows WHERE id = $1", ids), 0);
	assert_int_equal(ITEST_I64(fx.owner, "SELECT count(*) FROM contacts WHERE id = $1", cs), 1);
	assert_int_equal(audit_rows(&t, "FLOW_STATE", "flow.session_ended", "flow", id), 1);
	assert_int_equal(audit_rows(&t, "AUDIT", "flow.delete", "flow", id), 1);
	r = at_json(&fx.ctx, "DELETE", uri, t.admin_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);

	/* a flow nobody is in goes without force */
	id = create_flow(&t, "idle", 0);
	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "DELETE", uri, t.admin_tok, NULL);
	AT_STATUS(r, 204);
	at_free(&r);
	tenant_free(&t);
}

/* --- simulate ------------------------------------------------------------- */

static int64_t tenant_rows(tenant_t *t)
{
	return ITEST_I64(
	    fx.owner,
	    "SELECT (SELECT count(*) FROM messages WHERE business_id = $1::bigint) + "
	    "(SELECT count(*) FROM contact_flow_state WHERE business_id = $1::bigint) * 1000 + "
	    "(SELECT count(*) FROM contacts WHERE business_id = $1::bigint) * 1000000 + "
	    "(SELECT count(*) FROM audit_events WHERE business_id = $1::bigint) * 1000000000 + "
	    "(SELECT count(*) FROM wa_outbox WHERE business_id = $1::bigint) * 100 + "
	    "(SELECT count(*) FROM flow_versions WHERE business_id = $1::bigint) * 10",
	    t->bid);
}

static const char *bot_body(const at_resp_t *r, size_t i)
{
	char path[64];

	snprintf(path, sizeof(path), "transcript.%zu.from", i);
	assert_string_equal(at_str(r, path), "bot");
	snprintf(path, sizeof(path), "transcript.%zu.message.text.body", i);
	return at_str(r, path);
}

static void test_simulate_writes_nothing(void **state)
{
	tenant_t t;
	char uri[96];
	int64_t id, before;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	id = create_flow(&t, "order", 0); /* inactive: the simulator runs it all the same */
	(void)create_contact(&t, "972500000003", false);
	before = tenant_rows(&t);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/simulate", (long long)id);
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok,
		    "{\"messages\":[\"order 42 please\",\"lots\",\"3\",\"hello?\"]}");
	AT_STATUS(r, 200);
	assert_string_equal(at_str(&r, "transcript.0.from"), "user");
	assert_string_equal(at_str(&r, "transcript.0.text"), "order 42 please");
	assert_string_equal(bot_body(&r, 1), "Hi Simulator, order 42");
	assert_string_equal(bot_body(&r, 2), "How many?");
	assert_string_equal(at_str(&r, "transcript.3.text"), "lots");
	assert_string_equal(bot_body(&r, 4), "Please send a number.");
	assert_string_equal(at_str(&r, "transcript.5.text"), "3");
	assert_string_equal(bot_body(&r, 6), "Got 3");
	/* the session is over: the last message gets no answer */
	assert_string_equal(at_str(&r, "transcript.7.from"), "user");
	assert_string_equal(at_str(&r, "transcript.7.text"), "hello?");
	assert_int_equal(json_array_size(at_get(&r, "transcript")), 8);
	assert_true(json_is_false(at_get(&r, "final_state.active")));
	assert_true(json_is_true(at_get(&r, "final_state.ended")));
	assert_true(json_is_false(at_get(&r, "final_state.handover")));
	assert_true(json_is_null(at_get(&r, "final_state.error")));
	assert_true(json_is_null(at_get(&r, "final_state.current_step")));
	assert_string_equal(at_str(&r, "final_state.flow"), "order");
	assert_string_equal(at_str(&r, "final_state.context.order_no"), "42");
	/* the context the conversation ended with, the last answer included (a number) */
	assert_true(json_is_number(at_get(&r, "final_state.context.qty")));
	at_free(&r);

	/* stopped while waiting */
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok, "{\"messages\":[\"hi\"]}");
	AT_STATUS(r, 200);
	assert_true(json_is_true(at_get(&r, "final_state.active")));
	assert_string_equal(at_str(&r, "final_state.current_step"), "ask_qty");
	assert_string_equal(bot_body(&r, 1), "Hi Simulator, order none");
	assert_non_null(at_get(&r, "final_state.awaiting"));
	at_free(&r);
	assert_int_equal(tenant_rows(&t), before);

	/* bounded input */
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok, "{\"messages\":[]}");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	r = at_json(&fx.ctx, "POST", uri, t.admin_tok, "{\"messages\":[\"a\",3]}");
	AT_ERROR(r, 400, "invalid_input");
	assert_string_equal(at_str(&r, "error.fields.0.field"), "messages[1]");
	at_free(&r);
	{
		json_t *m = json_array(), *o;
		char *body;

		for (int i = 0; i < 51; i++)
			json_array_append_new(m, json_string("x"));
		o = json_pack("{s:o}", "messages", m);
		body = json_dumps(o, JSON_COMPACT);
		json_decref(o);
		r = at_json(&fx.ctx, "POST", uri, t.admin_tok, body);
		AT_ERROR(r, 400, "invalid_input");
		at_free(&r);
		free(body);
	}
	r = at_json(&fx.ctx, "POST", "/api/flows/9000000000000001/simulate", t.admin_tok,
		    "{\"messages\":[\"hi\"]}");
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	assert_int_equal(tenant_rows(&t), before);
	tenant_free(&t);
}

/* --- contacts ------------------------------------------------------------- */

static void add_message(int64_t biz, int64_t contact, const char *dir, const char *text, int seq)
{
	char b[24], c[24], w[64], n[24];

	snprintf(w, sizeof(w), "wamid.%lld.%d", (long long)contact, seq);
	ITEST_X(fx.owner,
		"INSERT INTO messages (business_id, contact_id, direction, wamid, type, text, "
		"status, sender, payload, created_at) VALUES ($1::bigint, $2::bigint, $3, "
		"CASE WHEN $3 = 'in' THEN $4 END, 'text', $5, "
		"CASE WHEN $3 = 'in' THEN 'received' ELSE 'sent' END, "
		"CASE WHEN $3 = 'out' THEN 'bot' END, "
		"jsonb_build_object('type', 'text', 'text', jsonb_build_object('body', $5::text)), "
		"now() - make_interval(secs => 100 - $6::int))",
		s64(b, biz), s64(c, contact), dir, w, text, s64(n, seq));
}

static void test_contacts_inbox_and_detail(void **state)
{
	tenant_t t;
	char uri[128], cs[24];
	int64_t c1, c2, flow;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	c1 = create_contact(&t, "972500000010", true);
	c2 = create_contact(&t, "972500000011", false);
	flow = create_flow(&t, "order", 1);
	{
		char fs[24], vs[24];

		s64(fs, flow);
		ITEST_X(
		    fx.owner,
		    "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, "
		    "flow_version_id, current_step, context, fallback_count) VALUES "
		    "($1::bigint, $2::bigint, $3::bigint, $4::bigint, 'ask_qty', "
		    "'{\"order_no\":\"9\"}', 1)",
		    s64(cs, c2), t.bid, fs,
		    s64(vs, ITEST_I64(fx.owner,
				      "SELECT current_version_id FROM flows WHERE id = $1", fs)));
	}
	add_message(t.biz, c1, "in", "hello", 1);
	add_message(t.biz, c1, "out", "How many?", 2);
	add_message(t.biz, c1, "in", "a human please", 3);

	r = at_json(&fx.ctx, "GET", "/api/contacts?needs_human=true", t.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 1);
	assert_int_equal(at_int(&r, "items.0.id"), c1);
	assert_string_equal(at_str(&r, "items.0.wa_id"), "972500000010");
	assert_string_equal(at_str(&r, "items.0.name"), "Dana");
	assert_true(json_is_true(at_get(&r, "items.0.needs_human")));
	assert_true(json_is_null(at_get(&r, "items.0.current_flow")));
	at_str(&r, "items.0.last_message_at");
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/contacts", t.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 2);
	assert_int_equal(at_int(&r, "items.0.id"), c2); /* newest first */
	assert_string_equal(at_str(&r, "items.0.current_flow"), "order");
	assert_string_equal(at_str(&r, "items.0.current_step"), "ask_qty");
	assert_true(json_is_null(at_get(&r, "items.0.last_message_at")));
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/contacts?needs_human=yes", t.agent_tok, NULL);
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);

	snprintf(uri, sizeof(uri), "/api/contacts/%lld", (long long)c1);
	r = at_json(&fx.ctx, "GET", uri, t.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "contact.id"), c1);
	assert_string_equal(at_str(&r, "contact.handover_reason"), "retries_exhausted");
	at_str(&r, "contact.handover_requested_at");
	assert_true(json_is_null(at_get(&r, "flow_state")));
	assert_int_equal(json_array_size(at_get(&r, "messages")), 3);
	assert_string_equal(at_str(&r, "messages.0.text"), "hello"); /* newest last */
	assert_string_equal(at_str(&r, "messages.1.direction"), "out");
	assert_string_equal(at_str(&r, "messages.1.sender"), "bot");
	assert_string_equal(at_str(&r, "messages.2.text"), "a human please");
	assert_string_equal(at_str(&r, "messages.2.payload.text.body"), "a human please");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/contacts/%lld", (long long)c2);
	r = at_json(&fx.ctx, "GET", uri, t.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "flow_state.flow_id"), flow);
	assert_string_equal(at_str(&r, "flow_state.flow_name"), "order");
	assert_int_equal(at_int(&r, "flow_state.flow_version"), 1);
	assert_string_equal(at_str(&r, "flow_state.current_step"), "ask_qty");
	assert_string_equal(at_str(&r, "flow_state.context.order_no"), "9");
	assert_int_equal(at_int(&r, "flow_state.fallback_count"), 1);
	assert_int_equal(json_array_size(at_get(&r, "messages")), 0);
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/contacts/9000000000000002", t.agent_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	tenant_free(&t);
}

static void test_agent_reply_and_resolve(void **state)
{
	tenant_t t;
	char uri[128], cs[24], ms[24], us[24], *body;
	int64_t c1, mid;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	c1 = create_contact(&t, "972500000020", true);
	s64(cs, c1);
	snprintf(uri, sizeof(uri), "/api/contacts/%lld/messages", (long long)c1);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, "{\"text\":\"Hello, Dana here.\"}");
	AT_STATUS(r, 202);
	mid = at_int(&r, "message_id");
	at_free(&r);
	s64(ms, mid);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM messages m JOIN wa_outbox o ON "
				   "o.message_id = m.id WHERE m.id = $1::bigint AND "
				   "m.contact_id = $2::bigint AND m.sender = 'agent' AND "
				   "m.agent_id = $3::bigint AND m.direction = 'out' AND "
				   "m.status = 'queued' AND o.status = 'queued' AND "
				   "o.payload #>> '{text,body}' = 'Hello, Dana here.'",
				   ms, cs, s64(us, t.agent)),
			 1);
	/* a reply does not lift the handover */
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT needs_human::int FROM contacts WHERE id = $1::bigint", cs),
	    1);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, "{\"text\":\"\"}");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, "{\"text\":\"  \\n \"}");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, "{}");
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	body = malloc(4200);
	strcpy(body, "{\"text\":\"");
	memset(body + 9, 'x', 4097);
	strcpy(body + 9 + 4097, "\"}");
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, body);
	AT_ERROR(r, 400, "invalid_input");
	at_free(&r);
	/* exactly 4096 characters, some of them multi-byte */
	strcpy(body, "{\"text\":\"\xc3\xa9");
	memset(body + 11, 'x', 4095);
	strcpy(body + 11 + 4095, "\"}");
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, body);
	AT_STATUS(r, 202);
	at_free(&r);
	free(body);

	snprintf(uri, sizeof(uri), "/api/contacts/%lld/handover/resolve", (long long)c1);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "contact.id"), c1);
	assert_true(json_is_false(at_get(&r, "contact.needs_human")));
	assert_true(json_is_null(at_get(&r, "contact.handover_requested_at")));
	assert_true(json_is_null(at_get(&r, "contact.handover_reason")));
	assert_true(json_is_null(at_get(&r, "contact.handover_notice_sent_at")));
	at_free(&r);
	assert_int_equal(audit_rows(&t, "HANDOVER", "handover.resolved", "contact", c1), 1);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM contacts WHERE id = $1::bigint AND "
				   "NOT needs_human AND handover_requested_at IS NULL",
				   cs),
			 1);
	tenant_free(&t);
}

/* --- settings ------------------------------------------------------------- */

static void assert_no_secrets(const at_resp_t *r, const char *const *secrets)
{
	char *s = json_dumps(r->json, JSON_COMPACT);

	for (size_t i = 0; secrets[i] != NULL; i++)
		assert_null(strstr(s, secrets[i]));
	assert_null(at_get(r, "access_token"));
	assert_null(at_get(r, "app_secret"));
	assert_null(at_get(r, "verify_token"));
	free(s);
}

static void test_whatsapp_settings(void **state)
{
	static const char *const secrets[] = {"EAAG-token-0123456789", "app-secret-abcdef",
					      "verify-me-please", NULL};
	tenant_t t, u;
	char body[512], phone[40], ids[24];
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	tenant_new(&u);
	/* unique across the shared database */
	snprintf(phone, sizeof(phone), "1%lld%d", (long long)t.biz, (int)(t.biz % 97));
	r = at_json(&fx.ctx, "GET", "/api/settings/whatsapp", t.owner_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	/* the first set needs every field */
	snprintf(body, sizeof(body), "{\"phone_number_id\":\"%s\"}", phone);
	r = at_json(&fx.ctx, "PUT", "/api/settings/whatsapp", t.owner_tok, body);
	AT_ERROR(r, 400, "invalid_input");
	assert_int_equal(json_array_size(at_get(&r, "error.fields")), 4);
	at_free(&r);
	snprintf(body, sizeof(body),
		 "{\"phone_number_id\":\"12ab\",\"waba_id\":\"1\",\"access_token\":\"short\","
		 "\"app_secret\":\"app-secret-abcdef\",\"verify_token\":\"verify-me-please\"}");
	r = at_json(&fx.ctx, "PUT", "/api/settings/whatsapp", t.owner_tok, body);
	AT_ERROR(r, 400, "invalid_input");
	assert_int_equal(json_array_size(at_get(&r, "error.fields")), 2);
	assert_no_secrets(&r, secrets);
	at_free(&r);
	/* an admin is not enough */
	r = at_json(&fx.ctx, "GET", "/api/settings/whatsapp", t.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	assert_string_equal(at_str(&r, "error.reason"), "insufficient_role");
	at_free(&r);

	snprintf(body, sizeof(body),
		 "{\"phone_number_id\":\"%s\",\"waba_id\":\"555\",\"access_token\":\"%s\","
		 "\"app_secret\":\"%s\",\"verify_token\":\"%s-%lld\"}",
		 phone, secrets[0], secrets[1], secrets[2], (long long)t.biz);
	r = at_json(&fx.ctx, "PUT", "/api/settings/whatsapp", t.owner_tok, body);
	AT_STATUS(r, 200);
	assert_string_equal(at_str(&r, "phone_number_id"), phone);
	assert_string_equal(at_str(&r, "waba_id"), "555");
	assert_true(json_is_true(at_get(&r, "access_token_set")));
	assert_true(json_is_true(at_get(&r, "app_secret_set")));
	assert_true(json_is_true(at_get(&r, "verify_token_set")));
	at_str(&r, "updated_at");
	assert_no_secrets(&r, secrets);
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM whatsapp_accounts WHERE business_id = $1 "
				   "AND access_token = $2 AND app_secret = $3",
				   t.bid, secrets[0], secrets[1]),
			 1);
	/* the audit row names the fields, never their values */
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM audit_events WHERE business_id = $1 AND "
		      "action = 'settings.whatsapp' AND details->'fields' ? 'app_secret' "
		      "AND position($2 IN details::text) = 0 "
		      "AND position($3 IN details::text) = 0",
		      t.bid, secrets[0], secrets[1]),
	    1);

	r = at_json(&fx.ctx, "GET", "/api/settings/whatsapp", t.owner_tok, NULL);
	AT_STATUS(r, 200);
	assert_string_equal(at_str(&r, "phone_number_id"), phone);
	assert_true(json_is_true(at_get(&r, "app_secret_set")));
	assert_no_secrets(&r, secrets);
	at_free(&r);

	/* an update may leave the secrets out: they are kept */
	r = at_json(&fx.ctx, "PUT", "/api/settings/whatsapp", t.owner_tok, "{\"waba_id\":\"777\"}");
	AT_STATUS(r, 200);
	assert_string_equal(at_str(&r, "waba_id"), "777");
	assert_true(json_is_true(at_get(&r, "access_token_set")));
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM whatsapp_accounts WHERE business_id = $1 "
				   "AND app_secret = $2 AND waba_id = '777'",
				   t.bid, secrets[1]),
			 1);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM audit_events WHERE business_id = $1 AND "
		      "action = 'settings.whatsapp' AND details->'fields' = '[\"waba_id\"]'",
		      t.bid),
	    1);

	/* another business cannot take the phone_number_id */
	snprintf(body, sizeof(body),
		 "{\"phone_number_id\":\"%s\",\"waba_id\":\"556\",\"access_token\":\"%s\","
		 "\"app_secret\":\"%s\",\"verify_token\":\"other-%lld\"}",
		 phone, secrets[0], secrets[1], (long long)u.biz);
	r = at_json(&fx.ctx, "PUT", "/api/settings/whatsapp", u.owner_tok, body);
	AT_ERROR(r, 409, "phone_number_id_taken");
	at_free(&r);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM whatsapp_accounts WHERE business_id = $1",
				   s64(ids, u.biz)),
			 0);
	tenant_free(&t);
	tenant_free(&u);
}

/* --- guards and tenant isolation ------------------------------------------- */

static void test_role_guards(void **state)
{
	static const char *const only_flows[] = {"whatsapp_flows", NULL};
	tenant_t t;
	char uri[96], *body;
	int64_t id, other, admin;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	body = order_named("order", -1);
	r = at_json(&fx.ctx, "POST", "/api/flows", t.agent_tok, body);
	AT_ERROR(r, 403, "forbidden");
	assert_string_equal(at_str(&r, "error.reason"), "insufficient_role");
	at_free(&r);
	id = create_flow(&t, "order", 0);
	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)id);
	r = at_json(&fx.ctx, "PUT", uri, t.agent_tok, body);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	r = at_json(&fx.ctx, "DELETE", uri, t.agent_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/activate", (long long)id);
	r = at_json(&fx.ctx, "POST", uri, t.agent_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	/* no token */
	r = at_json(&fx.ctx, "GET", "/api/flows", NULL, NULL);
	AT_ERROR(r, 401, "unauthenticated");
	at_free(&r);
	/* the page must be enabled: a business with flows but not the contacts inbox */
	other = itest_create_business(fx.owner, "flowsapi-nopage", true);
	itest_enable_pages(fx.owner, other, only_flows);
	admin = itest_create_user(fx.owner, other, "admin", NULL, NULL, 0);
	{
		char *tok = at_token(&fx.ctx, admin);

		r = at_json(&fx.ctx, "GET", "/api/contacts", tok, NULL);
		AT_ERROR(r, 403, "forbidden");
		assert_string_equal(at_str(&r, "error.reason"), "page_not_enabled");
		at_free(&r);
		r = at_json(&fx.ctx, "GET", "/api/flows", tok, NULL);
		AT_STATUS(r, 200);
		at_free(&r);
		free(tok);
	}
	free(body);
	tenant_free(&t);
}

static int64_t cross_rows(tenant_t *t, const char *type, int64_t id)
{
	char ids[24];

	return ITEST_I64(
	    fx.owner,
	    "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint AND "
	    "tag = 'SECURITY' AND action = 'tenant.cross_access' AND outcome = 'denied' "
	    "AND resource_type = $2 AND resource_id = $3::bigint",
	    t->bid, type, s64(ids, id));
}

static void test_tenant_isolation(void **state)
{
	tenant_t a, b;
	char uri[128], ids[24], *body;
	int64_t flow, contact, n;
	at_resp_t r;

	(void)state;
	tenant_new(&a);
	tenant_new(&b);
	flow = create_flow(&a, "order", 1);
	contact = create_contact(&a, "972500000030", true);
	body = order_named("hijack", 1);

	snprintf(uri, sizeof(uri), "/api/flows/%lld", (long long)flow);
	r = at_json(&fx.ctx, "GET", uri, b.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	assert_int_equal(cross_rows(&b, "flow", flow), 1);
	r = at_json(&fx.ctx, "PUT", uri, b.admin_tok, body);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	r = at_json(&fx.ctx, "DELETE", uri, b.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/deactivate", (long long)flow);
	r = at_json(&fx.ctx, "POST", uri, b.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/simulate", (long long)flow);
	r = at_json(&fx.ctx, "POST", uri, b.admin_tok, "{\"messages\":[\"order 1\"]}");
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/flows/%lld/versions", (long long)flow);
	r = at_json(&fx.ctx, "GET", uri, b.admin_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	assert_int_equal(cross_rows(&b, "flow", flow), 6);
	/* untouched */
	s64(ids, flow);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM flows WHERE id = $1::bigint AND is_active "
				   "AND name = 'order' AND (SELECT count(*) FROM flow_versions "
				   "WHERE flow_id = $1::bigint) = 1",
				   ids),
			 1);

	snprintf(uri, sizeof(uri), "/api/contacts/%lld", (long long)contact);
	r = at_json(&fx.ctx, "GET", uri, b.agent_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/contacts/%lld/messages", (long long)contact);
	r = at_json(&fx.ctx, "POST", uri, b.agent_tok, "{\"text\":\"hi\"}");
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	snprintf(uri, sizeof(uri), "/api/contacts/%lld/handover/resolve", (long long)contact);
	r = at_json(&fx.ctx, "POST", uri, b.agent_tok, NULL);
	AT_ERROR(r, 403, "forbidden");
	at_free(&r);
	assert_int_equal(cross_rows(&b, "contact", contact), 3);
	s64(ids, contact);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM contacts WHERE id = $1::bigint AND "
				   "needs_human AND NOT EXISTS (SELECT 1 FROM messages "
				   "WHERE contact_id = $1::bigint)",
				   ids),
			 1);
	/* lists never show another tenant's rows */
	r = at_json(&fx.ctx, "GET", "/api/contacts", b.agent_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 0);
	at_free(&r);
	r = at_json(&fx.ctx, "GET", "/api/flows", b.admin_tok, NULL);
	AT_STATUS(r, 200);
	assert_int_equal(at_int(&r, "total"), 0);
	at_free(&r);
	/* unknown ids are 404, and not audited as cross-tenant */
	n = ITEST_I64(fx.owner,
		      "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint AND "
		      "action = 'tenant.cross_access'",
		      b.bid);
	r = at_json(&fx.ctx, "GET", "/api/contacts/9000000000000003", b.agent_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	r = at_json(&fx.ctx, "DELETE", "/api/flows/9000000000000003", b.admin_tok, NULL);
	AT_ERROR(r, 404, "not_found");
	at_free(&r);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint "
		      "AND action = 'tenant.cross_access'",
		      b.bid),
	    n);
	free(body);
	tenant_free(&a);
	tenant_free(&b);
}

static int group_setup(void **state)
{
	(void)state;
	at_ctx_init(&fx.ctx, fx.secret);
	fx.owner = itest_owner_pg();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	PQfinish(fx.owner);
	at_ctx_free(&fx.ctx);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_create_get_list),
	    cmocka_unit_test(test_invalid_definitions),
	    cmocka_unit_test(test_versions_are_pinned),
	    cmocka_unit_test(test_activate_and_delete),
	    cmocka_unit_test(test_simulate_writes_nothing),
	    cmocka_unit_test(test_contacts_inbox_and_detail),
	    cmocka_unit_test(test_agent_reply_and_resolve),
	    cmocka_unit_test(test_whatsapp_settings),
	    cmocka_unit_test(test_role_guards),
	    cmocka_unit_test(test_tenant_isolation),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
