/*
 * test_e2e_webhooks.c - the Twilio webhooks through nginx (API.md
 * "Webhooks"):
 *   - call-status: a missing or bad signature is 403 with a [SECURITY] line;
 *     another media type is 415; an unknown CallSid is 204; a signed
 *     callback for a call made in the database moves call_log and the job,
 *     a repeat is 204 and counts nothing twice, and a late 'ringing' after
 *     'completed' changes nothing;
 *   - voice: <Hangup/> for an unknown or cancelled call, the script's <Say>
 *     (XML-escaped) for a live one, a bridge's <Dial>, the voicemail for an
 *     answering machine, and the choice posted back by <Gather>; 2 of the
 *     default menu opts the lead out (do_not_call) and stores the digit;
 *   - amd: a signed verdict is 204 and lands on the job as answered_by.
 * Requests are signed as Twilio signs them, with the stack's auth token, over
 * DIALFLOW_PUBLIC_URL + the path. Fixtures are written as the owner role
 * (DIALFLOW_TEST_DATABASE_URL); their runs carry a far-future heartbeat under a
 * fixture lease so that the running worker leaves them alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/provider.h"
#include "e2e.h"

#define MAX_PARAMS 16

static struct {
	PGconn *db;
	char *token;
	const char *account;
	char public_url[256];
	unsigned counter;
} fx;

/* One call made in the database: business, lead, run (with a script), job, call_log row. */
typedef struct call_fx {
	int64_t business, lead, run, job, log;
	char sid[40];
	char to[20];
} call_fx_t;

/* --- database ------------------------------------------------------------- */

static PGresult *q(const char *sql, int n, const char *const *params)
{
	PGresult *r = PQexecParams(fx.db, sql, n, NULL, params, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		print_error("SQL failed: %s\n%s\n", PQerrorMessage(fx.db), sql);
		PQclear(r);
		fail();
	}
	return r;
}
#define Q(sql, ...)                                                                                \
	q((sql), (int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(char *)),                    \
	  (const char *[]){__VA_ARGS__})

static int64_t q_i64(PGresult *r)
{
	int64_t v = (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) ? atoll(PQgetvalue(r, 0, 0)) : -1;

	PQclear(r);
	return v;
}

static char *q_str(PGresult *r)
{
	char *v = (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) ? strdup(PQgetvalue(r, 0, 0)) : NULL;

	PQclear(r);
	return v;
}

static void assert_sql_str(const char *want, const char *sql, const char *arg)
{
	char *got = q_str(Q(sql, arg));

	if (got == NULL || strcmp(got, want) != 0) {
		print_error("%s [%s] gave '%s', want '%s'\n", sql, arg, got ? got : "(null)", want);
		free(got);
		fail();
	}
	free(got);
}

/* A unique Twilio-shaped call sid ("CA" + 32 hex). */
static void new_sid(char *out, size_t outsz)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(out, outsz, "CA%08x%08x%08lx%08x", (unsigned)getpid(), ++fx.counter,
		 (unsigned long)ts.tv_sec & 0xffffffffUL, (unsigned)ts.tv_nsec);
}

/* A live call of a fresh business whose run speaks script `script_json` (NULL: no script). */
static void make_call(call_fx_t *c, const char *script_json)
{
	char b[24], l[24], r[24], j[24];

	memset(c, 0, sizeof(c[0]));
	c->business = e2e_business_create("e2e-hooks", "calls_outbound", NULL);
	new_sid(c->sid, sizeof(c->sid));
	snprintf(c->to, sizeof(c->to), "+1555%07u",
		 ((unsigned)getpid() * 131u + fx.counter) % 10000000u);
	snprintf(b, sizeof(b), "%lld", (long long)c->business);
	c->lead = q_i64(Q("INSERT INTO leads (business_id, phone_e164, name) "
			  "VALUES ($1::bigint, $2, 'E2E Webhook Lead') RETURNING id",
			  b, c->to));
	snprintf(l, sizeof(l), "%lld", (long long)c->lead);
	c->run =
	    q_i64(Q("INSERT INTO outbound_call_runs (business_id, status, concurrency, script, "
		    "locked_by_worker, lease_token, lock_ts, last_heartbeat_at, started_at) "
		    "VALUES ($1::bigint, 'running', 1, $2::jsonb, 'e2e-webhooks-fixture', "
		    "gen_random_uuid(), now(), now() + interval '1 hour', now()) RETURNING id",
		    b, script_json));
	snprintf(r, sizeof(r), "%lld", (long long)c->run);
	c->job = q_i64(Q("INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone, "
			 "status, call_sid, attempts, dial_started_at) VALUES ($1::bigint, "
			 "$2::bigint, $3::bigint, $4, 'calling', $5, 1, now()) RETURNING id",
			 r, b, l, c->to, c->sid));
	snprintf(j, sizeof(j), "%lld", (long long)c->job);
	c->log = q_i64(Q("INSERT INTO call_log (business_id, call_sid, direction, from_number, "
			 "to_number, status, lead_id, run_id, job_id) VALUES ($1::bigint, $2, "
			 "'outbound', '+15550000100', $3, 'initiated', $4::bigint, $5::bigint, "
			 "$6::bigint) RETURNING id",
			 b, c->sid, c->to, l, r, j));
}

/* --- signed requests ------------------------------------------------------ */

typedef struct params {
	const char *names[MAX_PARAMS];
	const char *values[MAX_PARAMS];
	size_t n;
} params_t;

static void add(params_t *p, const char *name, const char *value)
{
	assert_true(p->n < MAX_PARAMS);
	p->names[p->n] = name;
	p->values[p->n] = value;
	p->n++;
}

/* The parameters Twilio sends with every call webhook. */
static void base_params(params_t *p, const char *sid, const char *status)
{
	memset(p, 0, sizeof(*p));
	add(p, "AccountSid", fx.account);
	add(p, "ApiVersion", "2010-04-01");
	add(p, "CallSid", sid);
	add(p, "CallStatus", status);
	add(p, "Direction", "outbound-api");
	add(p, "From", "+15550000100");
	add(p, "To", "+15550000200");
}

/* Encode p as a form body (malloc'd). */
static char *form_body(const params_t *p)
{
	size_t cap = 16, len = 0;
	char *out = malloc(cap);

	out[0] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		char *v = curl_easy_escape(NULL, p->values[i], 0);
		size_t need = len + strlen(p->names[i]) + strlen(v) + 3;

		if (need > cap) {
			cap = need * 2;
			out = realloc(out, cap);
		}
		len += (size_t)sprintf(out + len, "%s%s=%s", i ? "&" : "", p->names[i], v);
		curl_free(v);
	}
	return out;
}

/*
 * POST p to path. sign: 1 with the stack's token, 0 unsigned, -1 with a
 * wrong token. ctype NULL is the form media type.
 */
static e2e_resp_t post(const char *path, const params_t *p, int sign, const char *ctype)
{
	char url[512], sig[64], hdr[96];
	const char *headers[] = {hdr, NULL};
	char *body = form_body(p);
	e2e_resp_t r;

	snprintf(url, sizeof(url), "%s%s", fx.public_url, path);
	if (sign != 0)
		assert_int_equal(twilio_signature(sign > 0 ? fx.token : "not-the-auth-token", url,
						  p->names, p->values, p->n, sig, sizeof(sig)),
				 0);
	snprintf(hdr, sizeof(hdr), "X-Twilio-Signature: %s", sig);
	r = e2e_req("POST", path, NULL, ctype ? ctype : "application/x-www-form-urlencoded", body,
		    strlen(body), sign != 0 ? headers : NULL);
	free(body);
	return r;
}

static void expect_status_204(const char *sid, const char *status, const char *duration)
{
	params_t p;
	e2e_resp_t r;

	base_params(&p, sid, status);
	if (duration != NULL)
		add(&p, "CallDuration", duration);
	r = post(TWILIO_STATUS_PATH, &p, 1, NULL);
	E2E_STATUS(r, 204);
	e2e_resp_free(&r);
}

static void expect_twiml(const e2e_resp_t *r)
{
	const char *ct = e2e_header(r, "Content-Type");

	E2E_TRUE(*r, ct != NULL && strncmp(ct, "text/xml", 8) == 0, "Content-Type is %s",
		 ct ? ct : "(none)");
	E2E_TRUE(*r,
		 strncmp(r->body, "<?xml", 5) == 0 && strstr(r->body, "<Response>") != NULL &&
		     strstr(r->body, "</Response>") != NULL,
		 "not a TwiML document");
}

/* --- setup ---------------------------------------------------------------- */

static int group_setup(void **state)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {NULL, "5", NULL};
	const char *path;
	FILE *f;
	char buf[512];
	size_t n;

	if (e2e_global_setup(state) != 0)
		return -1;
	vals[0] = e2e_env_required("DIALFLOW_TEST_DATABASE_URL");
	fx.db = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(fx.db) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(fx.db));
		return -1;
	}
	path = e2e_env_required("DIALFLOW_TWILIO_AUTH_TOKEN_FILE");
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	fx.token = strdup(buf);
	fx.account = e2e_env_required("DIALFLOW_TWILIO_ACCOUNT_SID");
	snprintf(fx.public_url, sizeof(fx.public_url), "%s",
		 e2e_env("DIALFLOW_PUBLIC_URL", e2e_base_url()));
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(fx.db);
	free(fx.token);
	return e2e_global_teardown(state);
}

/* --- call-status ---------------------------------------------------------- */

static void test_status_missing_signature(void **state)
{
	long long off = e2e_log_offset();
	params_t p;
	e2e_resp_t r;

	(void)state;
	base_params(&p, "CA0000000000000000000000000000dead", "completed");
	r = post(TWILIO_STATUS_PATH, &p, 0, NULL);
	E2E_FORBIDDEN(r, "invalid_signature");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[SECURITY]", "reason=missing_signature", "call-status");
}

static void test_status_bad_signature(void **state)
{
	long long off = e2e_log_offset();
	char url[512], sig[64], hdr[96];
	const char *headers[] = {hdr, NULL};
	params_t p;
	e2e_resp_t r;
	char *body;

	(void)state;
	/* signed with another token */
	base_params(&p, "CA0000000000000000000000000000dead", "completed");
	r = post(TWILIO_STATUS_PATH, &p, -1, NULL);
	E2E_FORBIDDEN(r, "invalid_signature");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[SECURITY]", "reason=bad_signature", "call-status");
	/* signed correctly, then one parameter changed on the way */
	snprintf(url, sizeof(url), "%s%s", fx.public_url, TWILIO_STATUS_PATH);
	assert_int_equal(twilio_signature(fx.token, url, p.names, p.values, p.n, sig, sizeof(sig)),
			 0);
	snprintf(hdr, sizeof(hdr), "X-Twilio-Signature: %s", sig);
	p.values[3] = "busy";
	body = form_body(&p);
	r = e2e_req("POST", TWILIO_STATUS_PATH, NULL, "application/x-www-form-urlencoded", body,
		    strlen(body), headers);
	E2E_FORBIDDEN(r, "invalid_signature");
	e2e_resp_free(&r);
	free(body);
	/* the right signature for another URL (a query string added) */
	p.values[3] = "completed";
	body = form_body(&p);
	r = e2e_req("POST", TWILIO_STATUS_PATH "?x=1", NULL, "application/x-www-form-urlencoded",
		    body, strlen(body), headers);
	E2E_FORBIDDEN(r, "invalid_signature");
	e2e_resp_free(&r);
	free(body);
}

static void test_status_wrong_media_type(void **state)
{
	e2e_resp_t r;

	(void)state;
	r = e2e_raw_json("POST", TWILIO_STATUS_PATH, NULL, "{\"CallSid\":\"CA1\"}");
	E2E_ERROR(r, 415, "unsupported_media_type");
	e2e_resp_free(&r);
	r = e2e_get(TWILIO_STATUS_PATH, NULL, NULL);
	E2E_ERROR(r, 405, "method_not_allowed");
	e2e_resp_free(&r);
}

static void test_status_unknown_call(void **state)
{
	char sid[40];

	(void)state;
	new_sid(sid, sizeof(sid));
	expect_status_204(sid, "completed", "3");
}

static void test_status_updates_and_is_idempotent(void **state)
{
	const char *log_status = "SELECT status FROM call_log WHERE call_sid = $1";
	const char *job_status = "SELECT status FROM outbound_call_jobs WHERE call_sid = $1";
	const char *lead_jobs = "SELECT count(*)::text FROM background_jobs WHERE kind = "
				"'create_lead_from_call' AND payload->>'call_sid' = $1";
	call_fx_t c;
	char *dur;

	(void)state;
	make_call(&c, NULL);
	expect_status_204(c.sid, "ringing", NULL);
	assert_sql_str("ringing", log_status, c.sid);
	assert_sql_str("calling", job_status, c.sid);
	expect_status_204(c.sid, "in-progress", NULL);
	assert_sql_str("in-progress", log_status, c.sid);
	expect_status_204(c.sid, "completed", "12");
	assert_sql_str("completed", log_status, c.sid);
	assert_sql_str("completed", job_status, c.sid);
	dur = q_str(Q("SELECT duration::text FROM call_log WHERE call_sid = $1", c.sid));
	assert_non_null(dur);
	assert_string_equal(dur, "12");
	free(dur);
	assert_sql_str("1", lead_jobs, c.sid);
	/* Twilio delivers at least once: the same callback again */
	expect_status_204(c.sid, "completed", "12");
	assert_sql_str("completed", job_status, c.sid);
	assert_sql_str("1", lead_jobs, c.sid);
	/* a late, out-of-order event changes nothing */
	expect_status_204(c.sid, "ringing", NULL);
	assert_sql_str("completed", log_status, c.sid);
	assert_sql_str("completed", job_status, c.sid);
	/* nor does a contradicting final status */
	expect_status_204(c.sid, "busy", "0");
	assert_sql_str("completed", log_status, c.sid);
	assert_sql_str("1", lead_jobs, c.sid);
}

/* --- voice ---------------------------------------------------------------- */

static void test_voice_unknown_call_hangs_up(void **state)
{
	params_t p;
	e2e_resp_t r;
	char sid[40];

	(void)state;
	new_sid(sid, sizeof(sid));
	base_params(&p, sid, "in-progress");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "<Hangup/>") != NULL && strstr(r.body, "<Say") == NULL,
		 "expected only <Hangup/>");
	e2e_resp_free(&r);
}

static void test_voice_says_the_script(void **state)
{
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"say\",\"text\":\"Hello <friend> & welcome\","
		      "\"language\":\"en-GB\",\"voice\":\"alice\"}");
	base_params(&p, c.sid, "in-progress");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r,
		 strstr(r.body, "<Say voice=\"alice\" language=\"en-GB\">Hello &lt;friend&gt; "
				"&amp; welcome</Say>") != NULL,
		 "the script's text, escaped");
	E2E_TRUE(r, strstr(r.body, "<Hangup/>") != NULL, "ends with <Hangup/>");
	e2e_resp_free(&r);
	/* unsigned: refused, still as TwiML */
	r = post(TWILIO_VOICE_PATH, &p, 0, NULL);
	E2E_STATUS(r, 403);
	expect_twiml(&r);
	e2e_resp_free(&r);
}

/* A bridge dials its number; an answering machine hears the voicemail text instead. */
static void test_voice_bridge_and_voicemail(void **state)
{
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"bridge\",\"text\":\"Connecting you\",\"bridge_to\":"
		      "\"+15550000999\",\"options\":{\"timeout\":20},\"voicemail\":"
		      "\"Sorry we missed you\"}");
	base_params(&p, c.sid, "in-progress");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "Connecting you</Say>") != NULL, "the text first");
	E2E_TRUE(r, strstr(r.body, " timeout=\"20\" action=\"") != NULL, "then the bridge");
	E2E_TRUE(r, strstr(r.body, TWILIO_VOICE_PATH "?mode=dial_done\"") != NULL,
		 "whose end comes back to us");
	E2E_TRUE(r, strstr(r.body, "<Number>+15550000999</Number></Dial>") != NULL, "the number");
	e2e_resp_free(&r);
	add(&p, "AnsweredBy", "machine_end_beep");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "Sorry we missed you</Say><Hangup/>") != NULL, "voicemail");
	E2E_TRUE(r, strstr(r.body, "<Dial") == NULL, "no bridge for a machine");
	e2e_resp_free(&r);
}

static void test_voice_cancelled_call_hangs_up(void **state)
{
	char run[24];
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"say\",\"text\":\"You should not hear this\"}");
	snprintf(run, sizeof(run), "%lld", (long long)c.run);
	PQclear(Q("UPDATE outbound_call_runs SET status = 'cancelled', force_cancel = true, "
		  "cancel_requested = true, ended_at = now() WHERE id = $1::bigint",
		  run));
	PQclear(
	    Q("UPDATE outbound_call_jobs SET status = 'cancelled' WHERE run_id = $1::bigint", run));
	base_params(&p, c.sid, "in-progress");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "<Hangup/>") != NULL && strstr(r.body, "<Say") == NULL,
		 "expected only <Hangup/>");
	e2e_resp_free(&r);
}

static void test_voice_gather_and_its_action(void **state)
{
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"gather\",\"text\":\"Press 1 for sales\","
		      "\"options\":{\"choices\":{\"1\":{\"say\":\"Connecting you to sales\"}},"
		      "\"no_input\":\"Goodbye then\"}}");
	base_params(&p, c.sid, "in-progress");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "<Gather input=\"dtmf\" numDigits=\"1\"") != NULL, "a <Gather>");
	E2E_TRUE(r,
		 strstr(r.body, "action=\"https://") != NULL &&
		     strstr(r.body, TWILIO_VOICE_PATH "\"") != NULL,
		 "its action is the voice URL");
	E2E_TRUE(r, strstr(r.body, "Goodbye then") != NULL, "the no-input text");
	e2e_resp_free(&r);
	add(&p, "Digits", "1");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "Connecting you to sales</Say>") != NULL, "choice 1");
	e2e_resp_free(&r);
	p.values[p.n - 1] = "9";
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "not one of the options") != NULL, "an invalid choice");
	e2e_resp_free(&r);
}

/* The default menu's 2 through nginx: digit stored, lead opted out, a goodbye. */
static void test_voice_gather_opt_out(void **state)
{
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"gather\",\"text\":\"Press 1 to talk, 2 to stop calls\","
		      "\"bridge_to\":\"+15550000999\"}");
	base_params(&p, c.sid, "in-progress");
	add(&p, "Digits", "2");
	r = post(TWILIO_VOICE_PATH, &p, 1, NULL);
	E2E_STATUS(r, 200);
	expect_twiml(&r);
	E2E_TRUE(r, strstr(r.body, "You will not be called again") != NULL, "a goodbye");
	E2E_TRUE(r, strstr(r.body, "<Hangup/>") != NULL, "then <Hangup/>");
	e2e_resp_free(&r);
	assert_sql_str("2", "SELECT digits FROM outbound_call_jobs WHERE call_sid = $1", c.sid);
	assert_sql_str("true",
		       "SELECT l.do_not_call::text FROM leads l JOIN outbound_call_jobs j "
		       "ON j.lead_id = l.id WHERE j.call_sid = $1",
		       c.sid);
}

static void test_amd_verdict(void **state)
{
	call_fx_t c;
	params_t p;
	e2e_resp_t r;

	(void)state;
	make_call(&c, "{\"kind\":\"say\",\"text\":\"Hello\"}");
	base_params(&p, c.sid, "in-progress");
	add(&p, "AnsweredBy", "human");
	r = post(TWILIO_AMD_PATH, &p, 0, NULL);
	E2E_STATUS(r, 403);
	e2e_resp_free(&r);
	r = post(TWILIO_AMD_PATH, &p, 1, NULL);
	E2E_STATUS(r, 204);
	e2e_resp_free(&r);
	assert_sql_str("human", "SELECT answered_by FROM outbound_call_jobs WHERE call_sid = $1",
		       c.sid);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_missing_signature),
	    cmocka_unit_test(test_status_bad_signature),
	    cmocka_unit_test(test_status_wrong_media_type),
	    cmocka_unit_test(test_status_unknown_call),
	    cmocka_unit_test(test_status_updates_and_is_idempotent),
	    cmocka_unit_test(test_voice_unknown_call_hangs_up),
	    cmocka_unit_test(test_voice_says_the_script),
	    cmocka_unit_test(test_voice_bridge_and_voicemail),
	    cmocka_unit_test(test_voice_cancelled_call_hangs_up),
	    cmocka_unit_test(test_voice_gather_and_its_action),
	    cmocka_unit_test(test_voice_gather_opt_out),
	    cmocka_unit_test(test_amd_verdict),
	};

	e2e_skip_without_stack();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
