/*
 * test_wa_outbox.c - the WhatsApp outbox sender and sweeps against a real
 * PostgreSQL (a scratch database: the sender claims every row of it) and a
 * tests/fakes/fake_graph child that checks the Graph API request format:
 *   - one contact's messages go out strictly in order, a 500 is retried
 *     (the next message waits for it), each wamid is recorded;
 *   - a 400 fails the message for good with Meta's error in messages.error
 *     and wa_outbox.last_error, and does not hold the contact's queue;
 *   - two contacts are independent; the bearer token and the path are the
 *     account's;
 *   - a row whose worker died (lease expired) is sent again;
 *   - a real worker process (worker_run_with) wakes on the 'outbox' NOTIFY;
 *   - the idle-session sweep (with the pinned version's idle message) and
 *     the handover notice, each exactly once.
 * DIALFLOW_FAKE_GRAPH_BIN names the fake (default: next to this binary).
 */
#include "worker_fixture.h"

#include <curl/curl.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dialflow/err.h"
#include "dialflow/whatsapp.h"

#define TOKEN "fake-graph-token-1"

static struct {
	pid_t graph;
	char base[64];
	wa_graph_t *g;
	db_t *db; /* dialflow_worker */
	arena_t *a;
	int64_t biz;
	char bid[24];
	char pnid[24];
	unsigned n;
} fx;

/* --- the fake Graph child -------------------------------------------------- */

static const char *graph_bin(char *buf, size_t bufsz)
{
	const char *env = getenv("DIALFLOW_FAKE_GRAPH_BIN");
	char self[PATH_MAX];
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return env;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	assert_true(n > 0);
	self[n] = '\0';
	snprintf(buf, bufsz, "%s/../fakes/fake_graph", dirname(self));
	return buf;
}

static void graph_start(void)
{
	char bin[PATH_MAX + 32], line[128];
	const char *path = graph_bin(bin, sizeof(bin));
	int pfd[2], port = 0;
	FILE *f;

	assert_int_equal(pipe(pfd), 0);
	fx.graph = fork();
	assert_true(fx.graph >= 0);
	if (fx.graph == 0) {
		dup2(pfd[1], STDOUT_FILENO);
		close(pfd[0]);
		close(pfd[1]);
		execl(path, path, "--port", "0", "--token", TOKEN, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	assert_non_null(f);
	if (fgets(line, sizeof(line), f) == NULL ||
	    sscanf(line, "fake_graph listening on 127.0.0.1:%d", &port) != 1)
		fail_msg("fake_graph (%s) did not start", path);
	fclose(f);
	snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%d", port);
}

typedef struct buf {
	char *p;
	size_t n;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	buf_t *b = arg;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	assert_non_null(b->p);
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

/* GET or POST (body non-NULL) the fake's control path; returns the parsed answer. */
static json_t *graph_ctl(const char *path, const char *body)
{
	CURL *c = curl_easy_init();
	char url[256];
	buf_t b = {NULL, 0};
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", fx.base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	j = json_loads(b.p ? b.p : "", 0, NULL);
	free(b.p);
	assert_non_null(j);
	return j;
}

/* The fake's records for one recipient (new reference). */
static json_t *sent_to(const char *wa_id)
{
	char path[96];
	json_t *j, *items;

	snprintf(path, sizeof(path), "/__fake/messages?to=%s", wa_id);
	j = graph_ctl(path, NULL);
	items = json_incref(json_object_get(j, "items"));
	json_decref(j);
	return items;
}

static void script(const char *wa_id, int status, int count)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"status\":%d,\"count\":%d,\"to\":\"%s\"}", status, count,
		 wa_id);
	json_decref(graph_ctl("/__fake/script", body));
}

/* --- fixtures ------------------------------------------------------------------ */

static int64_t contact(char *wa_id_out)
{
	char cid[24];
	int64_t id;

	snprintf(wa_id_out, 24, "49151%06d%03u", (int)getpid() % 1000000, ++fx.n);
	id = ITEST_I64(
	    wfix_owner(),
	    "INSERT INTO contacts (business_id, wa_id) VALUES ($1::bigint, $2) RETURNING id",
	    fx.bid, wa_id_out);
	(void)cid;
	return id;
}

static int64_t enqueue(int64_t cid, const char *text)
{
	int64_t mid = 0;

	arena_reset(fx.a);
	assert_int_equal(db_begin(fx.db), 0);
	assert_int_equal(
	    wa_outbox_enqueue(fx.db, fx.a, fx.biz, cid, wa_text_payload(fx.a, text), "bot", &mid),
	    0);
	assert_int_equal(db_commit(fx.db), 0);
	assert_true(mid > 0);
	return mid;
}

static const wa_outbox_opts_t opts = {
    .owner = "itest:1", .batch = 10, .lease_s = 30, .retry_base_ms = 10, .retry_cap_ms = 50};

/* Run sender rounds until nothing is queued or sending (bounded). */
static void drain(void)
{
	for (int i = 0; i < 200; i++) {
		int claimed = 0;

		arena_reset(fx.a);
		assert_int_equal(wa_outbox_run_batch(fx.db, fx.a, fx.g, &opts, NULL, &claimed), 0);
		if (ITEST_I64(
			wfix_owner(),
			"SELECT count(*) FROM wa_outbox WHERE status IN ('queued', 'sending') "
			"AND business_id = $1::bigint",
			fx.bid) == 0)
			return;
		if (claimed == 0)
			wfix_sleep_ms(10);
	}
	fail_msg("the outbox did not drain");
}

static const char *item_str(json_t *items, size_t i, const char *path1, const char *path2)
{
	json_t *v = json_object_get(json_array_get(items, i), path1);

	if (path2 != NULL)
		v = json_object_get(v, path2);
	return json_string_value(v);
}

static const char *item_text(json_t *items, size_t i)
{
	return json_string_value(json_object_get(
	    json_object_get(json_object_get(json_array_get(items, i), "body"), "text"), "body"));
}

static int item_status(json_t *items, size_t i)
{
	return (int)json_integer_value(json_object_get(json_array_get(items, i), "status"));
}

/* --- tests ----------------------------------------------------------------------- */

static void test_order_and_retry(void **state)
{
	char wa[24], mid[24];
	int64_t c, m[3];
	json_t *items;

	(void)state;
	c = contact(wa);
	script(wa, 500, 1);
	m[0] = enqueue(c, "first");
	m[1] = enqueue(c, "second");
	m[2] = enqueue(c, "third");
	drain();
	items = sent_to(wa);
	assert_int_equal(json_array_size(items), 4);
	/* the 500 was retried before the second message was even tried */
	assert_int_equal(item_status(items, 0), 500);
	assert_string_equal(item_text(items, 0), "first");
	assert_string_equal(item_text(items, 1), "first");
	assert_string_equal(item_text(items, 2), "second");
	assert_string_equal(item_text(items, 3), "third");
	for (size_t i = 1; i < 4; i++) {
		assert_int_equal(item_status(items, i), 200);
		assert_string_equal(item_str(items, i, "token", NULL), TOKEN);
		assert_string_equal(item_str(items, i, "phone_number_id", NULL), fx.pnid);
		assert_string_equal(item_str(items, i, "version", NULL), "v21.0");
		assert_string_equal(item_str(items, i, "body", "messaging_product"), "whatsapp");
		assert_string_equal(item_str(items, i, "body", "recipient_type"), "individual");
		assert_string_equal(item_str(items, i, "body", "to"), wa);
		/* the wamid Meta answered is the message's */
		assert_int_equal(
		    ITEST_I64(wfix_owner(),
			      "SELECT count(*) FROM messages WHERE id = $1::bigint AND "
			      "status = 'sent' AND sent_at IS NOT NULL AND wamid = $2",
			      itest_i64s(mid, sizeof(mid), m[i - 1]),
			      item_str(items, i, "wamid", NULL)),
		    1);
	}
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM wa_outbox WHERE message_id = $1::bigint AND "
		      "status = 'sent' AND attempts = 2",
		      itest_i64s(mid, sizeof(mid), m[0])),
	    1);
	json_decref(items);
}

static void test_permanent_failure(void **state)
{
	char wa[24], mid[24];
	int64_t c, m1, m2;
	json_t *items;

	(void)state;
	c = contact(wa);
	script(wa, 400, 1);
	m1 = enqueue(c, "will fail");
	m2 = enqueue(c, "goes anyway");
	drain();
	items = sent_to(wa);
	assert_int_equal(json_array_size(items), 2);
	assert_int_equal(item_status(items, 0), 400);
	assert_string_equal(item_text(items, 1), "goes anyway");
	json_decref(items);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM messages m JOIN wa_outbox o ON o.message_id = "
		      "m.id WHERE m.id = $1::bigint AND m.status = 'failed' AND "
		      "m.failed_at IS NOT NULL AND (m.error->>'code')::int = 131009 AND "
		      "(m.error->>'http_status')::int = 400 AND m.error ? 'fbtrace_id' AND "
		      "o.status = 'failed' AND o.attempts = 1 AND "
		      "o.last_error LIKE '%131009%'",
		      itest_i64s(mid, sizeof(mid), m1)),
	    1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM messages WHERE id = $1::bigint AND "
				   "status = 'sent'",
				   itest_i64s(mid, sizeof(mid), m2)),
			 1);
}

static void test_two_contacts_and_429(void **state)
{
	char wa1[24], wa2[24];
	int64_t c1, c2;
	json_t *i1, *i2;

	(void)state;
	c1 = contact(wa1);
	c2 = contact(wa2);
	script(wa1, 429, 2);
	enqueue(c1, "a1");
	enqueue(c2, "b1");
	enqueue(c1, "a2");
	enqueue(c2, "b2");
	drain();
	i1 = sent_to(wa1);
	i2 = sent_to(wa2);
	assert_int_equal(json_array_size(i1), 4); /* two 429s, then a1, a2 */
	assert_int_equal(item_status(i1, 1), 429);
	assert_string_equal(item_text(i1, 2), "a1");
	assert_string_equal(item_text(i1, 3), "a2");
	assert_int_equal(json_array_size(i2), 2);
	assert_string_equal(item_text(i2, 0), "b1");
	assert_string_equal(item_text(i2, 1), "b2");
	json_decref(i1);
	json_decref(i2);
}

static void test_rescue(void **state)
{
	char wa[24], mid[24];
	int64_t c, m;
	int n = 0;
	json_t *items;

	(void)state;
	c = contact(wa);
	m = enqueue(c, "lost worker");
	/* a worker claimed it and died before recording anything */
	ITEST_X(wfix_owner(),
		"UPDATE wa_outbox SET status = 'sending', attempts = 1, locked_by = 'dead:1', "
		"locked_until = now() - interval '1 second' WHERE message_id = $1::bigint",
		itest_i64s(mid, sizeof(mid), m));
	arena_reset(fx.a);
	assert_int_equal(wa_outbox_rescue(fx.db, fx.a, &n), 0);
	assert_true(n >= 1);
	drain();
	items = sent_to(wa);
	assert_int_equal(json_array_size(items), 1);
	json_decref(items);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM messages WHERE id = $1::bigint AND "
				   "status = 'sent'",
				   mid),
			 1);
}

static void test_worker_process(void **state)
{
	config_t cfg;
	char wa[24], url[64], ver[] = "v21.0", empty[] = "";
	int64_t c;
	pid_t w;
	bool ok;

	(void)state;
	wfix_config(&cfg);
	snprintf(url, sizeof(url), "%s", fx.base);
	cfg.whatsapp_graph_url = url;
	cfg.whatsapp_graph_version = ver;
	cfg.wa_ca_file = empty;
	cfg.outbox_batch = 10;
	cfg.outbox_lease_s = 30;
	cfg.outbox_retry_base_ms = 20;
	cfg.dispatch_poll_ms = 60000; /* only the NOTIFY can wake it in time */
	w = wfix_spawn_worker(&cfg, NULL);
	wfix_sleep_ms(300);
	c = contact(wa);
	script(wa, 500, 1);
	enqueue(c, "w1");
	enqueue(c, "w2");
	ok = WFIX_WAIT(2, 10000,
		       "SELECT count(*) FROM messages WHERE business_id = $1::bigint AND "
		       "contact_id = $2::bigint AND status = 'sent'",
		       fx.bid, db_i64s(fx.a, c));
	assert_int_equal(wfix_stop(w, SIGTERM, 5000), 0);
	assert_true(ok);
}

static void test_sweeps(void **state)
{
	char wa1[24], wa2[24], s1[24], s2[24];
	int64_t c1, c2, flow, ver;
	int ended = -1, sent = -1;

	(void)state;
	c1 = contact(wa1);
	c2 = contact(wa2);
	itest_i64s(s1, sizeof(s1), c1);
	itest_i64s(s2, sizeof(s2), c2);
	flow = ITEST_I64(wfix_owner(),
			 "INSERT INTO flows (business_id, name, is_active) VALUES ($1::bigint, $2, "
			 "true) RETURNING id",
			 fx.bid, wa1);
	ver = ITEST_I64(wfix_owner(),
			"INSERT INTO flow_versions (flow_id, business_id, version, definition) "
			"VALUES ($1::bigint, $2::bigint, 1, '{\"idle_timeout_message\":\"Session "
			"expired, send menu to start over\",\"steps\":[]}') RETURNING id",
			db_i64s(fx.a, flow), fx.bid);
	ITEST_X(
	    wfix_owner(),
	    "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, flow_version_id, "
	    "current_step, updated_at) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, "
	    "'ask', now() - interval '2 hours')",
	    s1, fx.bid, db_i64s(fx.a, flow), db_i64s(fx.a, ver));
	/* a fresh session of the other contact stays */
	ITEST_X(
	    wfix_owner(),
	    "INSERT INTO contact_flow_state (contact_id, business_id, flow_id, flow_version_id, "
	    "current_step) VALUES ($1::bigint, $2::bigint, $3::bigint, $4::bigint, 'ask')",
	    s2, fx.bid, db_i64s(fx.a, flow), db_i64s(fx.a, ver));
	arena_reset(fx.a);
	assert_int_equal(wa_sweep_idle(fx.db, fx.a, 3600, 100, &ended), 0);
	assert_int_equal(ended, 1);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM contact_flow_state WHERE contact_id IN "
				   "($1::bigint, $2::bigint)",
				   s1, s2),
			 1);
	assert_int_equal(
	    ITEST_I64(wfix_owner(),
		      "SELECT count(*) FROM messages WHERE contact_id = $1::bigint AND "
		      "sender = 'system' AND text LIKE 'Session expired%' AND $2 = $2",
		      s1, "x"),
	    1);
	arena_reset(fx.a);
	assert_int_equal(wa_sweep_idle(fx.db, fx.a, 3600, 100, &ended), 0);
	assert_int_equal(ended, 0);
	/* handover: waiting 20 minutes, notice once */
	ITEST_X(wfix_owner(),
		"UPDATE contacts SET needs_human = true, handover_requested_at = now() - "
		"interval '20 minutes' WHERE id = $1::bigint",
		s2);
	arena_reset(fx.a);
	assert_int_equal(wa_sweep_handover(fx.db, fx.a, 600, "Agents are busy", 100, &sent), 0);
	assert_int_equal(sent, 1);
	arena_reset(fx.a);
	assert_int_equal(wa_sweep_handover(fx.db, fx.a, 600, "Agents are busy", 100, &sent), 0);
	assert_int_equal(sent, 0);
	assert_int_equal(ITEST_I64(wfix_owner(),
				   "SELECT count(*) FROM messages m JOIN contacts c ON c.id = "
				   "m.contact_id WHERE c.id = $1::bigint AND m.text = $2 AND "
				   "c.handover_notice_sent_at IS NOT NULL AND c.needs_human",
				   s2, "Agents are busy"),
			 1);
	drain(); /* and both go out */
}

static int group_setup(void **state)
{
	char u[64];

	wfix_setup(state);
	wa_worker_register();
	curl_global_init(CURL_GLOBAL_DEFAULT);
	graph_start();
	fx.g = wa_graph_new(fx.base, "v21.0", NULL);
	assert_non_null(fx.g);
	wa_graph_set_timeouts(fx.g, 2000, 5000);
	fx.db = wfix_db("itest_wa_outbox", "dialflow_worker");
	fx.a = arena_new(16384);
	fx.biz = wfix_business(3);
	itest_i64s(fx.bid, sizeof(fx.bid), fx.biz);
	snprintf(fx.pnid, sizeof(fx.pnid), "77%d", (int)getpid());
	(void)u;
	ITEST_X(wfix_owner(),
		"INSERT INTO whatsapp_accounts (business_id, phone_number_id, access_token, "
		"app_secret) VALUES ($1::bigint, $2, $3, 'x')",
		fx.bid, fx.pnid, TOKEN);
	return 0;
}

static int group_teardown(void **state)
{
	int st;

	wa_graph_free(fx.g);
	db_free(fx.db);
	arena_free(fx.a);
	if (fx.graph > 0) {
		kill(fx.graph, SIGTERM);
		waitpid(fx.graph, &st, 0);
	}
	curl_global_cleanup();
	return wfix_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_retry),	 cmocka_unit_test(test_permanent_failure),
	    cmocka_unit_test(test_two_contacts_and_429), cmocka_unit_test(test_rescue),
	    cmocka_unit_test(test_worker_process),	 cmocka_unit_test(test_sweeps),
	};

	itest_init();
	return cmocka_run_group_tests_name("wa_outbox", tests, group_setup, group_teardown);
}
