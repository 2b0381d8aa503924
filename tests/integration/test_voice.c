/*
 * test_voice.c - what an answered call does (issue 7), against a real
 * PostgreSQL: the voice and AMD webhooks through api_dispatch() in-process
 * (the API's own role, signed as Twilio signs), and dialflow-worker children
 * on the fake provider for what the worker does about it.
 *
 *   - signatures: missing or bad -> 403 (TwiML for the voice webhook) and a
 *     [SECURITY] audit row; a good one -> the script's TwiML;
 *   - unknown call and cancelled run -> only <Hangup/>;
 *   - <Gather> 2 -> the job keeps digits '2', the lead is do_not_call (with an
 *     [AUDIT] row), a goodbye, nothing new in call_log, and a later run never
 *     dials that lead; 1 -> <Dial> to bridge_to with the business caller id,
 *     and the agent's whisper (looked up by ParentCallSid);
 *   - AMD: place_call asks for it when the business enables it;
 *     machine_end_beep -> answered_by machine, the worker redirects the call
 *     to the voicemail TwiML and clears the request, once; amd_action hangup
 *     -> the worker hangs up; human -> the run's humans_reached counts it;
 *   - scripts CRUD: the new options are validated with field paths.
 *
 * Works in a scratch database of its own (worker_fixture.h): the workers
 * claim every run they see.
 */
#include "worker_fixture.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apitest.h"
#include "dialflow/auth.h"
#include "dialflow/form.h"
#include "dialflow/http.h"
#include "dialflow/provider.h"
#include "dialflow/twiml.h"

#define PUBLIC	"https://dialflow.test" /* wfix_config()'s public URL, without the slash */
#define TOKEN	"itest-voice-twilio-token-0123456789"
#define BRIDGE	"+15550009999"
#define WAIT_MS 10000

static struct {
	api_ctx_t ctx;
	char token_file[64];
	fake_provider_t *fp;
	int64_t business;
	int64_t admin;
	char *admin_tok;
} fx;

/* --- the API in-process ---------------------------------------------------- */

typedef struct vresp {
	int status;
	char ctype[64];
	char body[16384];
} vresp_t;

enum { SIG_NONE, SIG_GOOD, SIG_BAD, SIG_OTHER_URL };

/* POST body (form) to uri (path + optional query), signed as told. */
static vresp_t post_form(const char *uri, const char *body, int sig)
{
	arena_t *a = arena_new(16384);
	http_request_t req;
	const char *envp[2] = {NULL, NULL};
	const char **names = NULL, **values = NULL, *why = NULL, *q = strchr(uri, '?');
	char url[512], sigv[64], hdr[128];
	form_t f;
	vresp_t out;

	memset(&out, 0, sizeof(out));
	memset(&req, 0, sizeof(req));
	if (sig != SIG_NONE) {
		assert_int_equal(form_parse(a, body, strlen(body), &f, &why), 0);
		form_arrays(a, &f, &names, &values);
		snprintf(url, sizeof(url), "%s%s%s", PUBLIC, uri, sig == SIG_OTHER_URL ? "x" : "");
		assert_int_equal(twilio_signature(sig == SIG_BAD ? "not-the-token" : TOKEN, url,
						  names, values, f.n, sigv, sizeof(sigv)),
				 0);
		snprintf(hdr, sizeof(hdr), "HTTP_X_TWILIO_SIGNATURE=%s", sigv);
		envp[0] = hdr;
	}
	req.arena = a;
	req.method = HTTP_POST;
	req.method_name = "POST";
	req.path = q ? arena_strndup(a, uri, (size_t)(q - uri)) : uri;
	req.query = q ? q + 1 : "";
	req.content_type = "application/x-www-form-urlencoded";
	req.body_type = http_body_type(req.content_type);
	req.body = body;
	req.body_len = strlen(body);
	req.remote_addr = "127.0.0.1";
	req.request_id = "itest-voice";
	req.envp = envp;
	api_dispatch(&fx.ctx, &req);
	out.status = req.status;
	snprintf(out.ctype, sizeof(out.ctype), "%s", req.resp_ctype ? req.resp_ctype : "");
	if (req.resp_body != NULL)
		snprintf(out.body, sizeof(out.body), "%.*s", (int)req.resp_len, req.resp_body);
	arena_free(a);
	return out;
}

static vresp_t voice(const char *query, const char *body)
{
	char uri[256];

	snprintf(uri, sizeof(uri), "%s%s", TWILIO_VOICE_PATH, query ? query : "");
	return post_form(uri, body, SIG_GOOD);
}

static void expect_twiml(const vresp_t *r, int status)
{
	if (r->status != status)
		fail_msg("status %d, want %d: %s", r->status, status, r->body);
	assert_string_equal(r->ctype, TWIML_CONTENT_TYPE);
	assert_int_equal(
	    strncmp(r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>", 48), 0);
	assert_non_null(strstr(r->body, "</Response>"));
}

#define HAS(r, s)                                                                                  \
	do {                                                                                       \
		if (strstr((r).body, (s)) == NULL)                                                 \
			fail_msg("%s not in %s", (s), (r).body);                                   \
	} while (0)
#define LACKS(r, s)                                                                                \
	do {                                                                                       \
		if (strstr((r).body, (s)) != NULL)                                                 \
			fail_msg("%s unexpectedly in %s", (s), (r).body);                          \
	} while (0)

/* --- fixtures --------------------------------------------------------------- */

static const char *s64(char *buf, int64_t v)
{
	return itest_i64s(buf, 24, v);
}

static int64_t q64(const char *sql, const char *p1)
{
	return ITEST_I64(wfix_owner(), sql, p1);
}

/* A call in progress: lead named `name`, a running run with `script`, its job calling as sid. */
typedef struct call {
	int64_t run, job, lead;
	char sid[40];
	char phone[24];
} call_t;

static void make_call(call_t *c, int64_t business, const char *name, const char *script)
{
	static unsigned seq;
	char b[24], u[64], run[24], lead[24];

	memset(c, 0, sizeof(*c));
	s64(b, business);
	snprintf(c->phone, sizeof(c->phone), "+1555%03u%04u", (unsigned)(getpid() % 1000),
		 9000 + ++seq);
	snprintf(c->sid, sizeof(c->sid), "CAvoice%s", itest_unique(u, sizeof(u)));
	for (char *p = c->sid; *p; p++)
		if (*p == '_')
			*p = 'x';
	c->lead = ITEST_I64(wfix_owner(),
			    "INSERT INTO leads (business_id, phone_e164, name, email) "
			    "VALUES ($1::bigint, $2, $3, 'lead@example.com') RETURNING id",
			    b, c->phone, name);
	c->run =
	    ITEST_I64(wfix_owner(),
		      "INSERT INTO outbound_call_runs (business_id, status, script, started_at) "
		      "VALUES ($1::bigint, 'running', $2::jsonb, now()) RETURNING id",
		      b, script);
	s64(run, c->run);
	s64(lead, c->lead);
	c->job =
	    ITEST_I64(wfix_owner(),
		      "INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone, "
		      "status, call_sid, attempts) VALUES ($1::bigint, $2::bigint, $3::bigint, "
		      "$4, 'calling', $5, 1) RETURNING id",
		      run, b, lead, c->phone, c->sid);
	ITEST_X(wfix_owner(),
		"INSERT INTO call_log (business_id, call_sid, from_number, to_number, status, "
		"lead_id, run_id, job_id) SELECT business_id, call_sid, $2, phone, 'in-progress', "
		"lead_id, run_id, id FROM outbound_call_jobs WHERE id = $1::bigint",
		s64(b, c->job), WFIX_CALLER_ID);
}

/* End the run of c (and its call), as the status callbacks would. */
static void end_call(const call_t *c)
{
	char run[24];

	ITEST_X(
	    wfix_owner(),
	    "WITH j AS (UPDATE outbound_call_jobs SET status = 'completed', completed_at = now() "
	    "WHERE run_id = $1::bigint) UPDATE outbound_call_runs SET status = 'completed', "
	    "ended_at = now() WHERE id = $1::bigint",
	    s64(run, c->run));
}

/*
 * A business of its own for a fixture call (one active run per business).
 * Fixture runs have no lease: the tests that fork workers end them first
 * (wfix_quiesce), or a worker would take them over.
 */
static int64_t own_business(void)
{
	return wfix_business(5);
}

static int64_t count_audit(const char *action, int64_t business)
{
	char b[24];

	return ITEST_I64(wfix_owner(),
			 "SELECT count(*) FROM audit_events WHERE action = $1 "
			 "AND ($2::bigint = 0 OR business_id = $2::bigint)",
			 action, s64(b, business));
}

static int group_setup(void **state)
{
	static const char *const pages[] = {"calls_outbound", NULL};
	char secret[72] = "", path[] = "/tmp/itest-voice-secret-XXXXXX";
	const char *err = NULL;
	FILE *f;
	int fd;

	if (wfix_setup(state) != 0)
		return -1;
	fx.fp = fake_provider_new();
	assert_non_null(fx.fp);
	/* the API process: the scratch database, our public URL and auth token */
	assert_int_equal(auth_random_token(secret, 64, 24), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	close(fd);
	snprintf(fx.token_file, sizeof(fx.token_file), "/tmp/itest-voice-token-XXXXXX");
	fd = mkstemp(fx.token_file);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(TOKEN "\n", f);
	fclose(f);
	setenv("DIALFLOW_JWT_SECRET_FILE", path, 1);
	setenv("DIALFLOW_API_DATABASE_URL", wfix_url(), 1);
	setenv("DIALFLOW_PUBLIC_URL", PUBLIC, 1);
	setenv("DIALFLOW_TWILIO_AUTH_TOKEN_FILE", fx.token_file, 1);
	unsetenv("DIALFLOW_TWILIO_ACCOUNT_SID");
	unsetenv("DIALFLOW_API_DB_ROLE");
	if (api_ctx_init(&fx.ctx, "itest_voice", &err) < 0)
		fail_msg("api_ctx_init: %s", err);
	unlink(path);
	fx.business = wfix_business(5);
	itest_enable_pages(wfix_owner(), fx.business, pages);
	fx.admin = itest_create_user(wfix_owner(), fx.business, "admin", NULL, NULL, 0);
	fx.admin_tok = at_token(&fx.ctx, fx.admin);
	return 0;
}

static int group_teardown(void **state)
{
	free(fx.admin_tok);
	api_ctx_free(&fx.ctx);
	unlink(fx.token_file);
	fake_provider_free(fx.fp);
	return wfix_teardown(state);
}

#define GATHER_SCRIPT                                                                              \
	"{\"kind\":\"gather\",\"text\":\"Hi {{ lead.name }}, press 1 to talk, 2 to stop.\","       \
	"\"language\":\"en-US\",\"voice\":\"alice\",\"bridge_to\":\"" BRIDGE "\","                 \
	"\"options\":{\"whisper\":\"Lead {{ lead.name }} pressed 1\"},"                            \
	"\"voicemail\":\"Sorry we missed you\"}"

/* --- tests ------------------------------------------------------------------ */

static void test_signatures(void **state)
{
	int64_t before_missing = count_audit("webhook.signature_failed", 0);
	char body[160];
	call_t c;
	vresp_t r;

	(void)state;
	make_call(&c, own_business(), "Ada", GATHER_SCRIPT);
	snprintf(body, sizeof(body), "CallSid=%s&CallStatus=in-progress", c.sid);
	r = post_form(TWILIO_VOICE_PATH, body, SIG_NONE);
	expect_twiml(&r, 403);
	HAS(r, "<Hangup/>");
	LACKS(r, "<Say");
	r = post_form(TWILIO_VOICE_PATH, body, SIG_BAD);
	expect_twiml(&r, 403);
	/* signed for another URL (Twilio signs the query string too) */
	r = post_form(TWILIO_VOICE_PATH "?mode=voicemail", body, SIG_OTHER_URL);
	expect_twiml(&r, 403);
	r = post_form(TWILIO_AMD_PATH, body, SIG_BAD);
	assert_int_equal(r.status, 403);
	assert_non_null(strstr(r.body, "invalid_signature"));
	/* each refusal leaves its [SECURITY] audit row, though the request failed */
	assert_int_equal(count_audit("webhook.signature_failed", 0), before_missing + 4);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM audit_events WHERE action = "
				   "'webhook.signature_failed' AND tag = 'SECURITY' AND "
				   "details->>'reason' = $1",
				   "missing_signature"),
			 1);
	/* the good one: the gather, its prompt templated and escaped-safe */
	r = voice(NULL, body);
	expect_twiml(&r, 200);
	HAS(r, "<Gather input=\"dtmf\" numDigits=\"1\" timeout=\"5\" method=\"POST\" "
	       "action=\"" PUBLIC TWILIO_VOICE_PATH "\"><Say voice=\"alice\" language=\"en-US\">Hi "
	       "Ada, press 1 to talk, 2 to stop.</Say></Gather>");
}

static void test_unknown_and_cancelled_hang_up(void **state)
{
	char body[160], run[24];
	call_t c;
	vresp_t r;

	(void)state;
	r = voice(NULL, "CallSid=CAnobodyknowsthiscall&CallStatus=in-progress");
	expect_twiml(&r, 200);
	assert_string_equal(r.body, twiml_hangup_doc);
	make_call(&c, own_business(), "Bob",
		  "{\"kind\":\"say\",\"text\":\"You should not hear this\"}");
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET status = 'cancelled', force_cancel = true, "
		"cancel_requested = true, ended_at = now() WHERE id = $1::bigint",
		s64(run, c.run));
	snprintf(body, sizeof(body), "CallSid=%s&CallStatus=in-progress", c.sid);
	r = voice(NULL, body);
	expect_twiml(&r, 200);
	assert_string_equal(r.body, twiml_hangup_doc);
	/* and every later request of that call too */
	r = voice("?mode=voicemail", body);
	assert_string_equal(r.body, twiml_hangup_doc);
	snprintf(body, sizeof(body), "CallSid=%s&Digits=1", c.sid);
	r = voice(NULL, body);
	assert_string_equal(r.body, twiml_hangup_doc);
	/* a mode we do not know is refused, still as TwiML */
	r = voice("?mode=dance", body);
	expect_twiml(&r, 400);
}

static void test_say_escapes_the_lead(void **state)
{
	char body[160];
	call_t c;
	vresp_t r;

	(void)state;
	make_call(&c, own_business(), "<script>&\"'",
		  "{\"kind\":\"say\",\"text\":\"Hello {{ lead.name }} from {{ business.name }}\","
		  "\"options\":{\"repeat\":3}}");
	snprintf(body, sizeof(body), "CallSid=%s", c.sid);
	r = voice(NULL, body);
	expect_twiml(&r, 200);
	HAS(r, "loop=\"3\">Hello &lt;script&gt;&amp;&quot;&apos; from wk ");
	HAS(r, "</Say><Hangup/></Response>");
	LACKS(r, "<script>");
}

static void test_gather_opt_out_never_dialled_again(void **state)
{
	char body[160], job[24], lead[24], b[24], run[24], other[24], u[64];
	int64_t logs, run2, audits = count_audit("lead.opt_out", fx.business);
	config_t cfg;
	call_t c;
	vresp_t r;
	pid_t w;

	(void)state;
	make_call(&c, fx.business, "Opt Out", GATHER_SCRIPT);
	s64(job, c.job);
	s64(lead, c.lead);
	logs = q64("SELECT count(*) FROM call_log WHERE job_id = $1::bigint", job);
	snprintf(body, sizeof(body), "CallSid=%s&Digits=2", c.sid);
	r = voice(NULL, body);
	expect_twiml(&r, 200);
	assert_string_equal(r.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say "
				    "voice=\"alice\" language=\"en-US\">" TWIML_DEFAULT_OPT_OUT
				    "</Say><Hangup/></Response>");
	assert_int_equal(q64("SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
			     "AND digits = '2' AND status = 'calling'",
			     job),
			 1);
	assert_int_equal(
	    q64("SELECT count(*) FROM leads WHERE id = $1::bigint AND do_not_call", lead), 1);
	assert_int_equal(count_audit("lead.opt_out", fx.business), audits + 1);
	assert_int_equal(q64("SELECT count(*) FROM call_log WHERE job_id = $1::bigint", job), logs);
	/* a repeat is idempotent: still a goodbye, no second audit row */
	r = voice(NULL, body);
	HAS(r, TWIML_DEFAULT_OPT_OUT);
	assert_int_equal(count_audit("lead.opt_out", fx.business), audits + 1);
	end_call(&c);

	/* the API will not put the lead in a new run ... */
	snprintf(body, sizeof(body), "{\"lead_ids\":[%lld]}", (long long)c.lead);
	{
		at_resp_t ar =
		    at_json(&fx.ctx, "POST", "/api/outbound_calls/runs", fx.admin_tok, body);

		AT_ERROR(ar, 400, "invalid_input");
		at_free(&ar);
	}
	/* ... and a run made before the opt-out, holding its job, never dials it */
	s64(b, fx.business);
	run2 = ITEST_I64(wfix_owner(),
			 "INSERT INTO outbound_call_runs (business_id, concurrency) "
			 "VALUES ($1::bigint, 2) RETURNING id",
			 b);
	s64(run, run2);
	ITEST_X(wfix_owner(),
		"INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
		"SELECT $1::bigint, business_id, id, phone_e164 FROM leads WHERE id = $2::bigint",
		run, lead);
	snprintf(other, sizeof(other), "+1555%03u8%03u", (unsigned)(getpid() % 1000),
		 (unsigned)(itest_now_ms() % 1000));
	ITEST_X(wfix_owner(),
		"WITH l AS (INSERT INTO leads (business_id, phone_e164, name) "
		"VALUES ($2::bigint, $3, $4) RETURNING id) "
		"INSERT INTO outbound_call_jobs (run_id, business_id, lead_id, phone) "
		"SELECT $1::bigint, $2::bigint, id, $3 FROM l",
		run, b, other, itest_unique(u, sizeof(u)));
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fx.fp);
	assert_true(WFIX_WAIT(1, WAIT_MS,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND lead_id = $2::bigint AND status = 'cancelled' "
			      "AND error_code = 'do_not_call'",
			      run, lead));
	assert_true(WFIX_WAIT(1, WAIT_MS,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id = $1::bigint "
			      "AND phone = $2 AND call_sid IS NOT NULL",
			      run, other));
	assert_int_equal(fake_provider_calls_to(fx.fp, c.phone), 0);
	assert_int_equal(fake_provider_calls_to(fx.fp, other), 1);
	assert_int_equal(wfix_stop(w, SIGTERM, 5000), 0);
}

static void test_gather_bridge_and_whisper(void **state)
{
	char body[200], job[24];
	call_t c;
	vresp_t r;

	(void)state;
	make_call(&c, own_business(), "Grace", GATHER_SCRIPT);
	snprintf(body, sizeof(body), "CallSid=%s&Digits=1", c.sid);
	r = voice(NULL, body);
	expect_twiml(&r, 200);
	HAS(r, "<Dial callerId=\"" WFIX_CALLER_ID "\" action=\"" PUBLIC TWILIO_VOICE_PATH
	       "?mode=dial_done\" method=\"POST\"><Number url=\"" PUBLIC TWILIO_VOICE_PATH
	       "?mode=whisper\" method=\"POST\">" BRIDGE "</Number></Dial>");
	assert_int_equal(q64("SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
			     "AND digits = '1'",
			     s64(job, c.job)),
			 1);
	assert_int_equal(q64("SELECT count(*) FROM leads WHERE id = $1::bigint AND do_not_call",
			     s64(job, c.lead)),
			 0);
	/* the agent's leg: a child call whose parent is ours */
	snprintf(body, sizeof(body), "CallSid=CAagentleg1&ParentCallSid=%s", c.sid);
	r = voice("?mode=whisper", body);
	expect_twiml(&r, 200);
	assert_string_equal(r.body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say "
				    "voice=\"alice\" language=\"en-US\">Lead Grace pressed 1</Say>"
				    "</Response>");
	/* the agent did not answer */
	snprintf(body, sizeof(body), "CallSid=%s&DialCallStatus=no-answer", c.sid);
	r = voice("?mode=dial_done", body);
	expect_twiml(&r, 200);
	HAS(r, TWIML_DEFAULT_UNAVAILABLE "</Say><Hangup/>");
	/* a choice that is not on the menu */
	snprintf(body, sizeof(body), "CallSid=%s&Digits=7", c.sid);
	r = voice(NULL, body);
	HAS(r, TWIML_DEFAULT_INVALID);
	assert_int_equal(q64("SELECT count(*) FROM outbound_call_jobs WHERE id = $1::bigint "
			     "AND digits = '7'",
			     s64(job, c.job)),
			 1);
}

/* Wait for the call placed to `phone` and copy it. */
static void wait_call(const char *phone, fake_call_t *out)
{
	int64_t end = itest_now_ms() + WAIT_MS;

	while (itest_now_ms() < end) {
		for (int i = fake_provider_ncalls(fx.fp) - 1; i >= 0; i--)
			if (fake_provider_call(fx.fp, i, out) && strcmp(out->to, phone) == 0)
				return;
		wfix_sleep_ms(10);
	}
	fail_msg("no call to %s", phone);
}

static vresp_t amd(const char *sid, const char *answered_by)
{
	char body[200];

	snprintf(body, sizeof(body), "CallSid=%s&AnsweredBy=%s&MachineDetectionDuration=3100", sid,
		 answered_by);
	return post_form(TWILIO_AMD_PATH, body, SIG_GOOD);
}

static void test_amd_voicemail_human_and_hangup(void **state)
{
	char phones[2][24], hphones[1][24], b[24], hb[24], run[24], url[200], body[200];
	int64_t run_id, hbusiness, hrun;
	fake_call_t machine, human, hmachine;
	config_t cfg;
	at_resp_t ar;
	vresp_t r;
	pid_t w;

	(void)state;
	/* a business with AMD on, leaving voicemails; one with AMD on, hanging up */
	s64(b, fx.business);
	ITEST_X(wfix_owner(),
		"UPDATE businesses SET amd_enabled = true, amd_action = 'voicemail' "
		"WHERE id = $1::bigint",
		b);
	run_id = wfix_run(fx.business, 2, 2, 1, 0, phones);
	ITEST_X(wfix_owner(),
		"UPDATE outbound_call_runs SET script = $2::jsonb WHERE id = $1::bigint",
		s64(run, run_id), GATHER_SCRIPT);
	hbusiness = wfix_business(5);
	s64(hb, hbusiness);
	ITEST_X(
	    wfix_owner(),
	    "UPDATE businesses SET amd_enabled = true, amd_action = 'hangup' WHERE id = $1::bigint",
	    hb);
	hrun = wfix_run(hbusiness, 1, 1, 1, 0, hphones);
	wfix_config(&cfg);
	w = wfix_spawn_worker(&cfg, fx.fp);
	wait_call(phones[0], &machine);
	wait_call(phones[1], &human);
	wait_call(hphones[0], &hmachine);
	/* place_call asked for async AMD with our callback */
	assert_true(machine.amd);
	assert_string_equal(machine.amd_url, "https://dialflow.test" TWILIO_AMD_PATH);
	assert_true(WFIX_WAIT(3, WAIT_MS,
			      "SELECT count(*) FROM outbound_call_jobs WHERE run_id IN "
			      "($1::bigint, $2::bigint) AND status = 'calling'",
			      run, s64(url, hrun)));

	/* a machine whose greeting ended: the worker leaves the voicemail */
	r = amd(machine.sid, "machine_end_beep");
	assert_int_equal(r.status, 204);
	assert_true(WFIX_WAIT(1, WAIT_MS,
			      "SELECT count(*) FROM outbound_call_jobs WHERE call_sid = $1 AND "
			      "answered_by = 'machine' AND voicemail_requested_at IS NULL",
			      machine.sid));
	assert_int_equal(fake_provider_redirects_of(fx.fp, machine.sid, url, sizeof(url)), 1);
	assert_string_equal(url, "https://dialflow.test" TWILIO_VOICE_PATH "?mode=voicemail");
	assert_int_equal(fake_provider_hangups_of(fx.fp, machine.sid), 0);
	/* where the redirect leads */
	snprintf(body, sizeof(body), "CallSid=%s", machine.sid);
	r = voice("?mode=voicemail", body);
	expect_twiml(&r, 200);
	HAS(r, ">Sorry we missed you</Say><Hangup/>");
	/* a repeated verdict changes nothing: no second voicemail */
	r = amd(machine.sid, "machine_end_beep");
	assert_int_equal(r.status, 204);
	wfix_sleep_ms(300);
	assert_int_equal(fake_provider_redirects_of(fx.fp, machine.sid, NULL, 0), 1);
	assert_int_equal(q64("SELECT count(*) FROM outbound_call_jobs WHERE call_sid = $1 "
			     "AND voicemail_requested_at IS NULL",
			     machine.sid),
			 1);

	/* a human: recorded, nothing done, counted in the run's progress */
	r = amd(human.sid, "human");
	assert_int_equal(r.status, 204);
	assert_int_equal(q64("SELECT count(*) FROM outbound_call_jobs WHERE call_sid = $1 "
			     "AND answered_by = 'human' AND voicemail_requested_at IS NULL",
			     human.sid),
			 1);
	snprintf(body, sizeof(body), "/api/outbound_calls/runs/%lld", (long long)run_id);
	ar = at_json(&fx.ctx, "GET", body, fx.admin_tok, NULL);
	AT_STATUS(ar, 200);
	assert_int_equal(at_int(&ar, "run.humans_reached"), 1);
	at_free(&ar);
	snprintf(body, sizeof(body), "/api/outbound_calls/runs/%lld/jobs", (long long)run_id);
	ar = at_json(&fx.ctx, "GET", body, fx.admin_tok, NULL);
	AT_STATUS(ar, 200);
	assert_string_equal(at_str(&ar, "items.0.answered_by"), "machine");
	assert_string_equal(at_str(&ar, "items.1.answered_by"), "human");
	at_free(&ar);

	/* amd_action hangup: the worker hangs the machine up */
	r = amd(hmachine.sid, "machine_end_silence");
	assert_int_equal(r.status, 204);
	assert_true(WFIX_WAIT(1, WAIT_MS,
			      "SELECT count(*) FROM outbound_call_jobs WHERE call_sid = $1 AND "
			      "answered_by = 'machine' AND voicemail_requested_at IS NULL",
			      hmachine.sid));
	assert_int_equal(fake_provider_hangups_of(fx.fp, hmachine.sid), 1);
	assert_int_equal(fake_provider_redirects_of(fx.fp, hmachine.sid, NULL, 0), 0);

	/* unknown calls and missing fields */
	r = amd("CAnobodyknowsthis", "human");
	assert_int_equal(r.status, 204);
	r = post_form(TWILIO_AMD_PATH, "CallSid=CA1", SIG_GOOD);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "AnsweredBy"));

	assert_int_equal(wfix_stop(w, SIGTERM, 5000), 0);
	ITEST_X(wfix_owner(), "UPDATE businesses SET amd_enabled = false WHERE id = $1::bigint", b);
}

static void test_script_options_validated(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} bad[] = {
	    {"{\"name\":\"g\",\"kind\":\"gather\",\"text\":\"t\"}", "bridge_to"},
	    {"{\"name\":\"s\",\"kind\":\"say\",\"text\":\"t\",\"options\":{\"repeat\":6}}",
	     "options.repeat"},
	    {"{\"name\":\"b\",\"kind\":\"bridge\",\"bridge_to\":\"+16465550100\","
	     "\"options\":{\"whisper\":7}}",
	     "options.whisper"},
	    {"{\"name\":\"g\",\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"choices\":{"
	     "\"2\":{\"action\":\"opt_out\",\"bridge_to\":\"+16465550100\"}}}}",
	     "options.choices.2.bridge_to"},
	    {"{\"name\":\"g\",\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"choices\":{"
	     "\"1\":{\"action\":\"dance\"}}}}",
	     "options.choices.1.action"},
	    {"{\"name\":\"g\",\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"choices\":{"
	     "\"12\":\"x\"}}}",
	     "options.choices.12"},
	    {"{\"name\":\"g\",\"kind\":\"gather\",\"text\":\"t\",\"options\":{\"choices\":{"
	     "\"1\":{\"action\":\"bridge\"}}}}",
	     "options.choices.1.bridge_to"},
	    {"{\"name\":\"s\",\"kind\":\"say\",\"text\":\"t\",\"options\":{\"choices\":{}}}",
	     "options.choices"},
	};
	at_resp_t r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = at_json(&fx.ctx, "POST", "/api/outbound_calls/scripts", fx.admin_tok,
			    bad[i].body);
		AT_ERROR(r, 400, "invalid_input");
		if (strcmp(at_str(&r, "error.fields.0.field"), bad[i].field) != 0)
			fail_msg("case %zu: field %s, want %s", i,
				 at_str(&r, "error.fields.0.field"), bad[i].field);
		at_free(&r);
	}
	/* the good one, numbers normalised */
	r = at_json(&fx.ctx, "POST", "/api/outbound_calls/scripts", fx.admin_tok,
		    "{\"name\":\"menu\",\"kind\":\"gather\",\"text\":\"t\",\"options\":{"
		    "\"repeat\":2,\"num_digits\":1,\"whisper\":\"w\",\"choices\":{"
		    "\"1\":{\"action\":\"bridge\",\"bridge_to\":\"(646) 555-0100\"},"
		    "\"2\":{\"action\":\"opt_out\",\"say\":\"Bye\"},\"3\":\"Hours\"}}}");
	AT_STATUS(r, 201);
	assert_string_equal(at_str(&r, "script.options.choices.1.bridge_to"), "+16465550100");
	assert_string_equal(at_str(&r, "script.options.choices.2.action"), "opt_out");
	at_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signatures),
	    cmocka_unit_test(test_unknown_and_cancelled_hang_up),
	    cmocka_unit_test(test_say_escapes_the_lead),
	    cmocka_unit_test_setup_teardown(test_gather_opt_out_never_dialled_again, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test(test_gather_bridge_and_whisper),
	    cmocka_unit_test_setup_teardown(test_amd_voicemail_human_and_hangup, wfix_quiesce,
					    wfix_quiesce),
	    cmocka_unit_test(test_script_options_validated),
	};

	itest_init();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
