/*
 * test_flows_process.c - WhatsApp conversations end to end inside the API
 * process: real, signed Cloud API webhook payloads through api_dispatch()
 * (POST /webhooks/whatsapp), the flow engine as the webhook's inbound hook,
 * and what it leaves in the database (outbox rows in order, the contact's
 * flow state, handover flags, audit rows), as dialflow_app.
 *
 *   - a multi-step flow from its trigger to its end: templated messages,
 *     typed answers, an invalid answer re-prompted, the state row gone;
 *   - invalid replies x3 -> handover, then the bot is silent until resolved;
 *   - a duplicate wamid is processed once;
 *   - 20 messages of one contact at once, from 4 API processes, are
 *     serialised: a counter in the flow's context loses no increment;
 *   - a conversation finishes on the version it started on;
 *   - a broken stored version: one apology, handover, no stuck state;
 *   - rate limits per contact: flow starts and inbound messages, with one
 *     "slow down" notice per window;
 *   - a refused webhook leaves an audit row.
 * Flows are written through the owner connection (the flows API has its own
 * tests), accounts too.
 */
#include "apitest.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/whatsapp.h"

static struct {
	api_ctx_t ctx;
	char secret[64];
	PGconn *owner;
	unsigned seq;
} fx;

typedef struct tenant {
	int64_t biz;
	char bid[24];
	char pnid[32];
	char app_secret[40];
} tenant_t;

#define PAYLOAD_MAX 4096

/* Double quotes for the single quotes of s (definitions read better that way). Caller frees. */
static char *dq(const char *s)
{
	char *d = strdup(s);

	assert_non_null(d);
	for (char *c = d; *c; c++)
		if (*c == '\'')
			*c = '"';
	return d;
}

static void tenant_new(tenant_t *t)
{
	memset(t, 0, sizeof(*t));
	t->biz = itest_create_business(fx.owner, "flows", true);
	itest_i64s(t->bid, sizeof(t->bid), t->biz);
	snprintf(t->pnid, sizeof(t->pnid), "8%06d%08ld%03u", (int)getpid() % 1000000,
		 (long)time(NULL) % 100000000, ++fx.seq % 1000);
	snprintf(t->app_secret, sizeof(t->app_secret), "app-secret-%u", fx.seq);
	ITEST_X(fx.owner,
		"INSERT INTO whatsapp_accounts (business_id, phone_number_id, access_token, "
		"app_secret, verify_token) VALUES ($1::bigint, $2, 'token-xyz', $3, NULL)",
		t->bid, t->pnid, t->app_secret);
}

/* An active flow with its first version; returns the flow id (*version_out the version id). */
static int64_t flow_install(const tenant_t *t, const char *name, const char *def_sq,
			    int64_t *version_out)
{
	char *def = dq(def_sq), fid[24];
	int64_t flow, version;

	flow = ITEST_I64(fx.owner,
			 "INSERT INTO flows (business_id, name, is_active, trigger_keywords, "
			 "trigger_config) VALUES ($1::bigint, $2, true, "
			 "coalesce($3::jsonb->'trigger_keywords', '[]'), "
			 "coalesce($3::jsonb->'trigger_config', '{}')) RETURNING id",
			 t->bid, name, def);
	itest_i64s(fid, sizeof(fid), flow);
	version = ITEST_I64(fx.owner,
			    "INSERT INTO flow_versions (flow_id, business_id, version, definition) "
			    "VALUES ($1::bigint, $2::bigint, 1, $3::jsonb) RETURNING id",
			    fid, t->bid, def);
	ITEST_X(fx.owner,
		"UPDATE flows SET current_version_id = (SELECT max(id) FROM flow_versions "
		"WHERE flow_id = $1::bigint) WHERE id = $1::bigint",
		fid);
	free(def);
	if (version_out != NULL)
		*version_out = version;
	return flow;
}

/*
 * A Cloud API payload of one message from wa_id; `message` is the type's
 * part, e.g. "'type':'text','text':{'body':'hi'}" (single quotes). Caller frees.
 */
static char *payload(const tenant_t *t, const char *wa_id, const char *wamid, const char *message)
{
	char *s = malloc(PAYLOAD_MAX), *m = dq(message);
	int n;

	assert_non_null(s);
	n = snprintf(s, PAYLOAD_MAX,
		     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
		     "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
		     "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001111\","
		     "\"phone_number_id\":\"%s\"},\"contacts\":[{\"profile\":{\"name\":"
		     "\"Ada\"},\"wa_id\":\"%s\"}],\"messages\":[{\"from\":\"%s\",\"id\":\"%s\","
		     "\"timestamp\":\"1750000000\",%s}]}}]}]}",
		     t->pnid, wa_id, wa_id, wamid, m);
	free(m);
	assert_true(n > 0 && n < PAYLOAD_MAX);
	return s;
}

/* POST a signed payload through ctx; returns the status. */
static int post_on(api_ctx_t *ctx, const tenant_t *t, const char *body)
{
	char sig[WA_SIGNATURE_LEN + 1], hdr[128];
	at_resp_t r;
	int st;

	assert_int_equal(wa_signature(t->app_secret, body, strlen(body), sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "HTTP_X_HUB_SIGNATURE_256=%s", sig);
	r = at_call(ctx, "POST", WA_WEBHOOK_PATH, NULL, "application/json", body, hdr, NULL);
	st = r.status;
	at_free(&r);
	return st;
}

/* Send a text from wa_id with a fresh wamid; expect 200. */
static void say(const tenant_t *t, const char *wa_id, const char *text)
{
	char wamid[64], msg[512], *body;

	snprintf(wamid, sizeof(wamid), "wamid.T%d.%u", (int)getpid(), ++fx.seq);
	snprintf(msg, sizeof(msg), "'type':'text','text':{'body':'%s'}", text);
	body = payload(t, wa_id, wamid, msg);
	assert_int_equal(post_on(&fx.ctx, t, body), 200);
	free(body);
}

/* The text bodies (or interactive body texts) queued for wa_id, oldest first, "|"-joined. */
static char *outbox_of(const tenant_t *t, const char *wa_id)
{
	PGresult *r = ITEST_Q(fx.owner,
			      "SELECT coalesce(string_agg(coalesce(o.payload->'text'->>'body', "
			      "o.payload->'interactive'->'body'->>'text', o.payload->>'type'), '|' "
			      "ORDER BY o.id), '') FROM wa_outbox o JOIN contacts c ON c.id = "
			      "o.contact_id WHERE c.business_id = $1::bigint AND c.wa_id = $2",
			      t->bid, wa_id);
	char *s = strdup(PQgetvalue(r, 0, 0));

	PQclear(r);
	return s;
}
#define OUTBOX_IS(t, wa, want)                                                                     \
	do {                                                                                       \
		char *o_ = outbox_of((t), (wa));                                                   \
		assert_string_equal(o_, (want));                                                   \
		free(o_);                                                                          \
	} while (0)

static int64_t contact_i64(const tenant_t *t, const char *wa_id, const char *expr)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "SELECT %s FROM contacts c LEFT JOIN contact_flow_state s ON s.contact_id = c.id "
		 "WHERE c.business_id = $1::bigint AND c.wa_id = $2",
		 expr);
	return itest_i64(fx.owner, sql, 2, (const char *[]){t->bid, wa_id});
}

static int64_t audits(const tenant_t *t, const char *tag, const char *action)
{
	return ITEST_I64(fx.owner,
			 "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint "
			 "AND tag = $2 AND action = $3",
			 t->bid, tag, action);
}

/* --- a multi-step flow ------------------------------------------------------ */

static const char signup[] =
    "{'name':'signup','trigger_keywords':['join'],'steps':["
    " {'name':'hello','type':'send_message','is_entry_point':true,"
    "  'config':{'message_type':'text','text':{'body':'Hi {{ contact.name }}!'}},"
    "  'transitions':[{'to_step':'ask_age','condition_config':{'type':'always_true'}}]},"
    " {'name':'ask_age','type':'question',"
    "  'config':{'message_config':{'message_type':'text','text':{'body':'Age?'}},"
    "   'reply_config':{'save_to_variable':'age','expected_type':'number'},"
    "   'fallback_config':{'max_retries':2,'re_prompt_message_text':'A number, please.'}},"
    "  'transitions':[{'to_step':'ask_plan','condition_config':{'type':'always_true'}}]},"
    " {'name':'ask_plan','type':'question',"
    "  'config':{'message_config':{'message_type':'interactive','interactive':{"
    "    'type':'button','body':{'text':'Plan?'},'action':{'buttons':["
    "    {'type':'reply','reply':{'id':'gold','title':'Gold'}},"
    "    {'type':'reply','reply':{'id':'free','title':'Free'}}]}}},"
    "   'reply_config':{'save_to_variable':'plan','expected_type':'interactive_id'}},"
    "  'transitions':["
    "   {'to_step':'gold','priority':1,'condition_config':"
    "    {'type':'interactive_reply_id_equals','value':'gold'}},"
    "   {'to_step':'bye','priority':2,'condition_config':{'type':'always_true'}}]},"
    " {'name':'gold','type':'action','config':{'actions_to_run':["
    "   {'action_type':'set_context_variable','variable_name':'vip','value_template':'yes'},"
    "   {'action_type':'update_contact_field','field_path':'notes',"
    "    'value_template':'gold at {{ age }}'}]},"
    "  'transitions':[{'to_step':'bye','condition_config':{'type':'always_true'}}]},"
    " {'name':'bye','type':'end_flow','config':{'message_config':{'message_type':'text',"
    "  'text':{'body':'Done: {{ plan }}, {{ age }}, vip {{ vip }}'}}}}"
    "]}";

static void test_multi_step_flow(void **state)
{
	tenant_t t;
	char wamid[64], *body, bid[24];

	(void)state;
	tenant_new(&t);
	flow_install(&t, "signup", signup, NULL);
	say(&t, "4915100000101", "hello"); /* no keyword: stored, no flow */
	OUTBOX_IS(&t, "4915100000101", "");
	say(&t, "4915100000101", "I want to JOIN please");
	OUTBOX_IS(&t, "4915100000101", "Hi Ada!|Age?");
	say(&t, "4915100000101", "thirty");
	OUTBOX_IS(&t, "4915100000101", "Hi Ada!|Age?|A number, please.");
	say(&t, "4915100000101", "36");
	OUTBOX_IS(&t, "4915100000101", "Hi Ada!|Age?|A number, please.|Plan?");
	/* the typed answer is kept as a number in the pinned state */
	assert_int_equal(contact_i64(&t, "4915100000101", "(s.context->>'age')::int"), 36);
	assert_int_equal(
	    contact_i64(&t, "4915100000101", "(jsonb_typeof(s.context->'age') = 'number')::int"),
	    1);
	snprintf(wamid, sizeof(wamid), "wamid.B%d.%u", (int)getpid(), ++fx.seq);
	body = payload(&t, "4915100000101", wamid,
		       "'type':'interactive','interactive':{'type':'button_reply',"
		       "'button_reply':{'id':'gold','title':'Gold'}}");
	assert_int_equal(post_on(&fx.ctx, &t, body), 200);
	free(body);
	OUTBOX_IS(&t, "4915100000101",
		  "Hi Ada!|Age?|A number, please.|Plan?|Done: gold, 36, vip yes");
	/* the flow is over: no state row; the contact field was written */
	assert_int_equal(contact_i64(&t, "4915100000101", "count(s.contact_id)"), 0);
	{
		PGresult *r = ITEST_Q(fx.owner,
				      "SELECT notes FROM contacts WHERE business_id = $1::bigint "
				      "AND wa_id = '4915100000101'",
				      itest_i64s(bid, sizeof(bid), t.biz));

		assert_string_equal(PQgetvalue(r, 0, 0), "gold at 36");
		PQclear(r);
	}
	assert_int_equal(audits(&t, "FLOW_STATE", "flow.started"), 1);
	assert_int_equal(audits(&t, "FLOW_STATE", "flow.ended"), 1);
	/* every outbound message is the bot's, queued for the worker */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM messages WHERE business_id = $1::bigint "
				   "AND direction = 'out' AND sender = 'bot' AND status = 'queued'",
				   t.bid),
			 5);
}

/* --- handover ----------------------------------------------------------------- */

static const char strict[] =
    "{'name':'strict','trigger_keywords':['quiz'],'steps':["
    " {'name':'q','type':'question','is_entry_point':true,"
    "  'config':{'message_config':{'message_type':'text','text':{'body':'Email?'}},"
    "   'reply_config':{'save_to_variable':'email','expected_type':'email'},"
    "   'fallback_config':{'max_retries':2,'action_after_retries':'human_handover'}},"
    "  'transitions':[{'to_step':'end','condition_config':{'type':'always_true'}}]},"
    " {'name':'end','type':'end_flow','config':{}}"
    "]}";

static void test_invalid_thrice_hands_over_then_silence(void **state)
{
	tenant_t t;
	char *before, *after;
	at_resp_t r;
	char uri[96];

	(void)state;
	tenant_new(&t);
	flow_install(&t, "strict", strict, NULL);
	say(&t, "4915100000201", "quiz");
	say(&t, "4915100000201", "not an email");
	say(&t, "4915100000201", "still not");
	assert_int_equal(contact_i64(&t, "4915100000201", "c.needs_human::int"), 0);
	say(&t, "4915100000201", "nope");
	assert_int_equal(contact_i64(&t, "4915100000201", "c.needs_human::int"), 1);
	assert_int_equal(contact_i64(&t, "4915100000201", "count(s.contact_id)"), 0);
	assert_int_equal(audits(&t, "HANDOVER", "handover.requested"), 1);
	/* silence: stored, never answered, whatever is said (even the trigger) */
	before = outbox_of(&t, "4915100000201");
	say(&t, "4915100000201", "hello?");
	say(&t, "4915100000201", "quiz");
	after = outbox_of(&t, "4915100000201");
	assert_string_equal(before, after);
	free(before);
	free(after);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM messages m JOIN contacts c ON c.id = "
		      "m.contact_id WHERE c.business_id = $1::bigint AND m.direction = 'in'",
		      t.bid),
	    6);
	(void)r;
	(void)uri;
}

/* --- exactly once --------------------------------------------------------------- */

static void test_duplicate_wamid_processed_once(void **state)
{
	tenant_t t;
	char *body;

	(void)state;
	tenant_new(&t);
	flow_install(&t, "signup", signup, NULL);
	body = payload(&t, "4915100000301", "wamid.DUP.1", "'type':'text','text':{'body':'join'}");
	assert_int_equal(post_on(&fx.ctx, &t, body), 200);
	assert_int_equal(post_on(&fx.ctx, &t, body), 200); /* Meta redelivers */
	assert_int_equal(post_on(&fx.ctx, &t, body), 200);
	free(body);
	OUTBOX_IS(&t, "4915100000301", "Hi Ada!|Age?");
	assert_int_equal(audits(&t, "FLOW_STATE", "flow.started"), 1);
}

/* --- concurrency ------------------------------------------------------------------ */

/* Each reply appends one "x" to `seen`: a lost update would lose an x. */
static const char counter[] =
    "{'name':'counter','trigger_keywords':['count'],'steps':["
    " {'name':'bump','type':'action','is_entry_point':true,'config':{'actions_to_run':["
    "   {'action_type':'set_context_variable','variable_name':'seen',"
    "    'value_template':'{{ seen }}x'}]},"
    "  'transitions':[{'to_step':'wait','condition_config':{'type':'always_true'}}]},"
    " {'name':'wait','type':'question','config':{"
    "   'message_config':{'message_type':'text','text':{'body':'ok'}},"
    "   'reply_config':{'save_to_variable':'last','expected_type':'any'}},"
    "  'transitions':[{'to_step':'bump','condition_config':{'type':'always_true'}}]}"
    "]}";

#define CONC_PROCS 4
#define CONC_EACH  5

static void test_concurrent_messages_serialised(void **state)
{
	tenant_t t;
	pid_t kids[CONC_PROCS];
	char seen[64];

	(void)state;
	tenant_new(&t);
	flow_install(&t, "counter", counter, NULL);
	say(&t, "4915100000401", "count");
	fflush(NULL);
	for (int k = 0; k < CONC_PROCS; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			/* another API process: its own context and connection */
			api_ctx_t ctx;
			char secret[64];
			int bad = 0;

			memcpy(secret, fx.secret, sizeof(secret));
			at_ctx_init(&ctx, secret);
			for (int i = 0; i < CONC_EACH; i++) {
				char wamid[64], msg[96], *body;

				snprintf(wamid, sizeof(wamid), "wamid.C%d.%d", (int)getpid(), i);
				snprintf(msg, sizeof(msg), "'type':'text','text':{'body':'m%d-%d'}",
					 k, i);
				body = payload(&t, "4915100000401", wamid, msg);
				bad += post_on(&ctx, &t, body) != 200;
				free(body);
			}
			at_ctx_free(&ctx);
			_exit(bad == 0 ? 0 : 1);
		}
	}
	for (int k = 0; k < CONC_PROCS; k++) {
		int st;

		assert_int_equal(waitpid(kids[k], &st, 0), kids[k]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* 1 (the start) + 20 increments, none lost; one "ok" per message */
	memset(seen, 'x', CONC_PROCS * CONC_EACH + 1);
	seen[CONC_PROCS * CONC_EACH + 1] = '\0';
	{
		PGresult *r = ITEST_Q(fx.owner,
				      "SELECT s.context->>'seen' FROM contact_flow_state s JOIN "
				      "contacts c ON c.id = s.contact_id WHERE c.business_id = "
				      "$1::bigint",
				      t.bid);

		assert_int_equal(PQntuples(r), 1);
		assert_string_equal(PQgetvalue(r, 0, 0), seen);
		PQclear(r);
	}
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM wa_outbox WHERE business_id = $1::bigint",
				   t.bid),
			 CONC_PROCS * CONC_EACH + 1);
}

/* --- versions ---------------------------------------------------------------------- */

static void test_versions_pinned(void **state)
{
	tenant_t t;
	char fid[24], *v2;
	int64_t flow;

	(void)state;
	tenant_new(&t);
	flow = flow_install(&t, "signup", signup, NULL);
	say(&t, "4915100000501", "join");
	/* the flow is edited while the contact is in it */
	v2 =
	    dq("{'name':'signup','trigger_keywords':['join'],'steps':["
	       " {'name':'hello','type':'send_message','is_entry_point':true,"
	       "  'config':{'message_type':'text','text':{'body':'Welcome to v2'}},"
	       "  'transitions':[{'to_step':'ask_age','condition_config':{'type':'always_true'}}]},"
	       " {'name':'ask_age','type':'question',"
	       "  'config':{'message_config':{'message_type':'text','text':{'body':'Age v2?'}},"
	       "   'reply_config':{'save_to_variable':'age','expected_type':'number'}},"
	       "  'transitions':[{'to_step':'bye','condition_config':{'type':'always_true'}}]},"
	       " {'name':'bye','type':'end_flow','config':{'message_config':{'message_type':'text',"
	       "  'text':{'body':'Bye from v2'}}}}]}");
	itest_i64s(fid, sizeof(fid), flow);
	ITEST_X(fx.owner,
		"WITH v AS (INSERT INTO flow_versions (flow_id, business_id, version, definition) "
		"VALUES ($1::bigint, $2::bigint, 2, $3::jsonb) RETURNING id) "
		"UPDATE flows SET current_version_id = (SELECT id FROM v) WHERE id = $1::bigint",
		fid, t.bid, v2);
	free(v2);
	/* the contact in the flow goes on with version 1 (its Plan? question) */
	say(&t, "4915100000501", "40");
	OUTBOX_IS(&t, "4915100000501", "Hi Ada!|Age?|Plan?");
	/* a new contact starts on version 2 */
	say(&t, "4915100000502", "join");
	say(&t, "4915100000502", "41");
	OUTBOX_IS(&t, "4915100000502", "Welcome to v2|Age v2?|Bye from v2");
}

/* --- never stuck ---------------------------------------------------------------------- */

static void test_broken_version_apologises_and_hands_over(void **state)
{
	tenant_t t;
	char *out;

	(void)state;
	tenant_new(&t);
	/* stored without validation: its only transition names a step that does not exist */
	flow_install(
	    &t, "broken",
	    "{'name':'broken','trigger_keywords':['go'],'steps':["
	    " {'name':'a','type':'send_message','is_entry_point':true,"
	    "  'config':{'message_type':'text','text':{'body':'one'}},"
	    "  'transitions':[{'to_step':'ghost','condition_config':{'type':'always_true'}}]}]}",
	    NULL);
	say(&t, "4915100000601", "go");
	out = outbox_of(&t, "4915100000601");
	/* exactly one apology, whatever was queued before the failure */
	assert_non_null(strstr(out, "Sorry"));
	assert_null(strstr(strstr(out, "Sorry") + 1, "Sorry"));
	free(out);
	assert_int_equal(contact_i64(&t, "4915100000601", "c.needs_human::int"), 1);
	assert_int_equal(contact_i64(&t, "4915100000601", "count(s.contact_id)"), 0);
	assert_int_equal(audits(&t, "FLOW_STATE", "flow.error"), 1);
	assert_int_equal(audits(&t, "HANDOVER", "handover.requested"), 1);
}

/* --- rate limits ----------------------------------------------------------------------- */

static const char quick[] =
    "{'name':'quick','trigger_keywords':['ping'],'steps':["
    " {'name':'pong','type':'end_flow','is_entry_point':true,'config':{'message_config':"
    "  {'message_type':'text','text':{'body':'pong'}}}}]}";

static void test_flow_start_and_inbound_limits(void **state)
{
	tenant_t t;
	char *out;

	(void)state;
	tenant_new(&t);
	flow_install(&t, "quick", quick, NULL);
	say(&t, "4915100000701", "ping");
	say(&t, "4915100000701", "ping"); /* within 10 s: stored, not started, one notice */
	say(&t, "4915100000701", "ping"); /* still: no second notice */
	out = outbox_of(&t, "4915100000701");
	assert_string_equal(out, "pong|You are sending messages faster than we can answer. Please "
				 "wait a moment before the next one.");
	free(out);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM messages WHERE business_id = $1::bigint "
				   "AND direction = 'in'",
				   t.bid),
			 3);
	/* 30 inbound messages a minute: the 31st is stored and not processed */
	for (int i = 0; i < 27; i++)
		say(&t, "4915100000701", "chatter");
	assert_int_equal(audits(&t, "RATE_LIMIT", "flow.slowdown_notice"), 1);
	say(&t, "4915100000701", "ping"); /* the 31st message */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM messages WHERE business_id = $1::bigint "
				   "AND direction = 'in'",
				   t.bid),
			 31);
	/* no pong for it (start limit aside, the inbound limit stopped it first) */
	out = outbox_of(&t, "4915100000701");
	assert_null(strstr(strstr(out, "pong") + 1, "pong"));
	free(out);
}

/* --- refusals ---------------------------------------------------------------------------- */

static void test_bad_signature_is_audited(void **state)
{
	tenant_t t;
	char *body;
	at_resp_t r;

	(void)state;
	tenant_new(&t);
	body = payload(&t, "4915100000801", "wamid.BAD.1", "'type':'text','text':{'body':'hi'}");
	r = at_call(&fx.ctx, "POST", WA_WEBHOOK_PATH, NULL, "application/json", body,
		    "HTTP_X_HUB_SIGNATURE_256=sha256=00000000000000000000000000000000000000000000"
		    "00000000000000000000",
		    NULL);
	AT_STATUS(r, 403);
	at_free(&r);
	free(body);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM audit_events WHERE business_id = $1::bigint "
		      "AND tag = 'SECURITY' AND action = 'webhook.signature_failed' "
		      "AND details->>'provider' = 'whatsapp'",
		      t.bid),
	    1);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM messages WHERE business_id = $1::bigint",
				   t.bid),
			 0);
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
	    cmocka_unit_test(test_multi_step_flow),
	    cmocka_unit_test(test_invalid_thrice_hands_over_then_silence),
	    cmocka_unit_test(test_duplicate_wamid_processed_once),
	    cmocka_unit_test(test_concurrent_messages_serialised),
	    cmocka_unit_test(test_versions_pinned),
	    cmocka_unit_test(test_broken_version_apologises_and_hands_over),
	    cmocka_unit_test(test_flow_start_and_inbound_limits),
	    cmocka_unit_test(test_bad_signature_is_audited),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
