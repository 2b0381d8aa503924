/*
 * test_e2e_whatsapp.c - the WhatsApp transport through the whole stack:
 *   - GET /webhooks/whatsapp: the subscription handshake through nginx;
 *   - POST: a signed message is stored (contact, message), a redelivery is
 *     200 and stored once, a bad signature is 403 with a [SECURITY] line;
 *   - outbound: messages queued with wa_enqueue() (what the engine and the
 *     agents' replies do, in their own transactions) reach the stack's fake
 *     Graph server through the running worker, in order, the first one
 *     after a 500 that the worker retried; their wamids are recorded, and a
 *     signed "delivered" status moves the message on.
 * Fixtures are written as the owner role (DIALFLOW_TEST_DATABASE_URL); the
 * fake Graph is DIALFLOW_TEST_FAKE_GRAPH_URL.
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

#include "dialflow/whatsapp.h"
#include "e2e.h"

#define TOKEN "e2e-graph-token"

static struct {
	PGconn *db;
	const char *graph;
	int64_t biz;
	char bid[24];
	char pnid[32];
	char secret[64];
	char verify[64];
	char wa_id[24];
} fx;

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

/* Poll until sql yields want (every 100 ms, up to ms). */
static bool wait_i64(int64_t want, int ms, const char *sql, const char *p1)
{
	for (int waited = 0; waited <= ms; waited += 100) {
		if (q_i64(Q(sql, p1)) == want)
			return true;
		e2e_sleep_ms(100);
	}
	return false;
}

static e2e_resp_t post_signed(const char *secret, const char *body)
{
	char sig[WA_SIGNATURE_LEN + 1], hdr[128];
	const char *hdrs[] = {hdr, NULL};

	assert_int_equal(wa_signature(secret, body, strlen(body), sig, sizeof(sig)), 0);
	snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
	return e2e_req("POST", WA_WEBHOOK_PATH, NULL, "application/json", body, strlen(body), hdrs);
}

static char *message_body(const char *wamid, const char *text)
{
	char *s = NULL;

	assert_true(
	    asprintf(&s,
		     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
		     "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
		     "\"whatsapp\",\"metadata\":{\"phone_number_id\":\"%s\"},\"contacts\":["
		     "{\"profile\":{\"name\":\"E2E\"},\"wa_id\":\"%s\"}],\"messages\":[{"
		     "\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"1750000000\","
		     "\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]}}]}]}",
		     fx.pnid, fx.wa_id, fx.wa_id, wamid, text) > 0);
	return s;
}

/* The fake Graph's control endpoints (plain http on loopback). */
typedef struct buf {
	char *p;
	size_t n;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
	buf_t *b = arg;
	size_t n = size * nmemb;

	b->p = realloc(b->p, b->n + n + 1);
	memcpy(b->p + b->n, ptr, n);
	b->n += n;
	b->p[b->n] = '\0';
	return n;
}

static json_t *graph(const char *path, const char *body)
{
	CURL *c = curl_easy_init();
	char url[256];
	buf_t b = {NULL, 0};
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", fx.graph, path);
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

static void test_verify(void **state)
{
	char path[256];
	e2e_resp_t r;

	(void)state;
	snprintf(path, sizeof(path),
		 WA_WEBHOOK_PATH "?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=424242",
		 fx.verify);
	r = e2e_get(path, NULL, NULL);
	E2E_STATUS(r, 200);
	assert_string_equal(r.body, "424242");
	e2e_resp_free(&r);
	r = e2e_get(WA_WEBHOOK_PATH "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
		    NULL, NULL);
	E2E_FORBIDDEN(r, "verification_failed");
	e2e_resp_free(&r);
}

static void test_inbound(void **state)
{
	char *body = message_body("wamid.E2E.in.1", "hi there");
	long long off;
	e2e_resp_t r;

	(void)state;
	r = post_signed(fx.secret, body);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	r = post_signed(fx.secret, body); /* Meta redelivers */
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	assert_int_equal(q_i64(Q("SELECT count(*) FROM messages m JOIN contacts c ON c.id = "
				 "m.contact_id WHERE m.business_id = $1::bigint AND m.direction = "
				 "'in' AND m.text = 'hi there' AND c.name = 'E2E'",
				 fx.bid)),
			 1);
	off = e2e_log_offset();
	r = post_signed("not-the-secret", body);
	E2E_FORBIDDEN(r, "invalid_signature");
	e2e_resp_free(&r);
	E2E_LOG_EXPECT(off, "[SECURITY]", "reason=bad_signature", "whatsapp");
	free(body);
}

static void test_outbound_in_order_with_retry(void **state)
{
	char script[128], path[96], cid[24];
	json_t *log, *items;
	int64_t contact;
	int statuses[8], n;
	const char *texts[8];

	(void)state;
	contact = q_i64(Q("SELECT id FROM contacts WHERE business_id = $1::bigint", fx.bid));
	assert_true(contact > 0);
	snprintf(cid, sizeof(cid), "%lld", (long long)contact);
	snprintf(script, sizeof(script), "{\"status\":500,\"count\":1,\"to\":\"%s\"}", fx.wa_id);
	json_decref(graph("/__fake/script", script));
	for (int i = 1; i <= 3; i++) {
		char payload[128];

		snprintf(payload, sizeof(payload),
			 "{\"type\":\"text\",\"text\":{\"body\":\"out %d\",\"preview_url\":false}}",
			 i);
		PQclear(Q("SELECT wa_enqueue($1::bigint, $2::bigint, $3::jsonb, 'bot')", fx.bid,
			  cid, payload));
	}
	assert_true(wait_i64(3, 20000,
			     "SELECT count(*) FROM messages WHERE contact_id = $1::bigint AND "
			     "direction = 'out' AND status = 'sent' AND wamid IS NOT NULL",
			     cid));
	snprintf(path, sizeof(path), "/__fake/messages?to=%s", fx.wa_id);
	log = graph(path, NULL);
	items = json_object_get(log, "items");
	n = (int)json_array_size(items);
	assert_int_equal(n, 4);
	for (int i = 0; i < n; i++) {
		json_t *it = json_array_get(items, (size_t)i);

		statuses[i] = (int)json_integer_value(json_object_get(it, "status"));
		texts[i] = json_string_value(
		    json_object_get(json_object_get(json_object_get(it, "body"), "text"), "body"));
		assert_string_equal(json_string_value(json_object_get(it, "token")), TOKEN);
		assert_string_equal(json_string_value(json_object_get(it, "phone_number_id")),
				    fx.pnid);
	}
	assert_int_equal(statuses[0], 500);
	assert_string_equal(texts[0], "out 1");
	assert_string_equal(texts[1], "out 1");
	assert_string_equal(texts[2], "out 2");
	assert_string_equal(texts[3], "out 3");
	/* Meta's status callback for the first one, signed like the rest */
	{
		const char *wamid =
		    json_string_value(json_object_get(json_array_get(items, 1), "wamid"));
		char *st = NULL;
		e2e_resp_t r;

		assert_true(
		    asprintf(&st,
			     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":"
			     "\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{"
			     "\"metadata\":{\"phone_number_id\":\"%s\"},\"statuses\":[{\"id\":"
			     "\"%s\",\"status\":\"delivered\",\"timestamp\":\"1750000200\"}]}}]}]}",
			     fx.pnid, wamid) > 0);
		r = post_signed(fx.secret, st);
		E2E_STATUS(r, 200);
		e2e_resp_free(&r);
		assert_int_equal(q_i64(Q("SELECT count(*) FROM messages WHERE wamid = $1 AND "
					 "status = 'delivered' AND delivered_at IS NOT NULL",
					 wamid)),
				 1);
		free(st);
	}
	json_decref(log);
}

/* A signed message of `fragment` (its type part, JSON) from wa_id; 200 expected. */
static void send_from(const char *wa_id, const char *wamid, const char *fragment)
{
	char *body = NULL;
	e2e_resp_t r;

	assert_true(
	    asprintf(&body,
		     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
		     "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
		     "\"whatsapp\",\"metadata\":{\"phone_number_id\":\"%s\"},\"contacts\":["
		     "{\"profile\":{\"name\":\"Eve\"},\"wa_id\":\"%s\"}],\"messages\":[{"
		     "\"from\":\"%s\",\"id\":\"%s\",\"timestamp\":\"1750000000\",%s}]}}]}]}",
		     fx.pnid, wa_id, wa_id, wamid, fragment) > 0);
	r = post_signed(fx.secret, body);
	E2E_STATUS(r, 200);
	e2e_resp_free(&r);
	free(body);
}

/*
 * A conversation through the whole stack: an admin saves a flow through the
 * API (an invalid one is refused with every problem), signed webhooks drive
 * it, and the engine's messages reach the fake Graph through the worker in
 * order, the first after a 500 that was retried.
 */
static void test_flow_conversation(void **state)
{
	static const char flow[] =
	    "{\"name\":\"e2e order\",\"trigger_keywords\":[\"order\"],\"is_active\":true,"
	    "\"steps\":[{\"name\":\"hi\",\"type\":\"send_message\",\"is_entry_point\":true,"
	    "\"config\":{\"message_type\":\"text\",\"text\":{\"body\":\"Hi {{ contact.name }}\"}},"
	    "\"transitions\":[{\"to_step\":\"size\",\"condition_config\":{\"type\":"
	    "\"always_true\"}}]},{\"name\":\"size\",\"type\":\"question\",\"config\":{"
	    "\"message_config\":{\"message_type\":\"interactive\",\"interactive\":{\"type\":"
	    "\"button\",\"body\":{\"text\":\"Which size?\"},\"action\":{\"buttons\":["
	    "{\"type\":\"reply\",\"reply\":{\"id\":\"S\",\"title\":\"Small\"}},"
	    "{\"type\":\"reply\",\"reply\":{\"id\":\"M\",\"title\":\"Medium\"}}]}}},"
	    "\"reply_config\":{\"save_to_variable\":\"size\",\"expected_type\":"
	    "\"interactive_id\"}},\"transitions\":[{\"to_step\":\"done\",\"condition_config\":"
	    "{\"type\":\"always_true\"}}]},{\"name\":\"done\",\"type\":\"end_flow\","
	    "\"config\":{\"message_config\":{\"message_type\":\"text\",\"text\":{\"body\":"
	    "\"Size {{ size }} noted\"}}}}]}";
	static const char bad[] =
	    "{\"name\":\"bad\",\"trigger_keywords\":[\"x\"],\"steps\":[{\"name\":\"a\","
	    "\"type\":\"question\",\"config\":{},\"transitions\":[{\"to_step\":\"nowhere\","
	    "\"condition_config\":{\"type\":\"always_true\"}}]}]}";
	char wa_id[24], wamid[64], script[128], path[96], cid[24];
	const char *want[] = {"Hi Eve", "Hi Eve", "Which size?", "Size M noted"};
	e2e_user_t admin;
	json_t *log, *items;
	e2e_resp_t r;

	(void)state;
	e2e_pages_set(fx.biz, "whatsapp_flows");
	e2e_user_create(&admin, fx.biz, "admin");
	r = e2e_raw_json("POST", "/api/flows", admin.token, bad);
	E2E_ERROR(r, 422, "invalid_flow");
	E2E_TRUE(r, json_array_size(e2e_jget(r.json, "error.problems")) >= 2,
		 "every problem is listed");
	e2e_resp_free(&r);
	r = e2e_raw_json("POST", "/api/flows", admin.token, flow);
	E2E_STATUS(r, 201);
	e2e_resp_free(&r);

	snprintf(wa_id, sizeof(wa_id), "4918%07d", ((int)getpid() + 7) % 10000000);
	snprintf(script, sizeof(script), "{\"status\":500,\"count\":1,\"to\":\"%s\"}", wa_id);
	json_decref(graph("/__fake/script", script));
	snprintf(wamid, sizeof(wamid), "wamid.E2EF.%d.1", (int)getpid());
	send_from(wa_id, wamid, "\"type\":\"text\",\"text\":{\"body\":\"I want to order\"}");
	snprintf(wamid, sizeof(wamid), "wamid.E2EF.%d.2", (int)getpid());
	send_from(wa_id, wamid,
		  "\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
		  "\"button_reply\":{\"id\":\"M\",\"title\":\"Medium\"}}");
	snprintf(cid, sizeof(cid), "%lld",
		 (long long)q_i64(Q("SELECT id FROM contacts WHERE business_id = $1::bigint AND "
				    "wa_id = $2",
				    fx.bid, wa_id)));
	assert_true(wait_i64(3, 20000,
			     "SELECT count(*) FROM messages WHERE contact_id = $1::bigint AND "
			     "direction = 'out' AND status = 'sent'",
			     cid));
	snprintf(path, sizeof(path), "/__fake/messages?to=%s", wa_id);
	log = graph(path, NULL);
	items = json_object_get(log, "items");
	assert_int_equal(json_array_size(items), 4);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(items, 0), "status")),
			 500);
	for (size_t i = 0; i < 4; i++) {
		json_t *body = json_object_get(json_array_get(items, i), "body");
		const char *text =
		    json_string_value(json_object_get(json_object_get(body, "text"), "body"));

		if (text == NULL)
			text = json_string_value(json_object_get(
			    json_object_get(json_object_get(body, "interactive"), "body"), "text"));
		assert_non_null(text);
		assert_string_equal(text, want[i]);
	}
	json_decref(log);
	/* the conversation is over */
	assert_int_equal(q_i64(Q("SELECT count(*) FROM contact_flow_state WHERE contact_id = "
				 "$1::bigint",
				 cid)),
			 0);
	e2e_user_free(&admin);
}

static int group_setup(void **state)
{
	const char *keys[] = {"dbname", "connect_timeout", NULL};
	const char *vals[] = {NULL, "5", NULL};
	char name[96];

	if (e2e_global_setup(state) != 0)
		return -1;
	fx.graph = e2e_env_required("DIALFLOW_TEST_FAKE_GRAPH_URL");
	vals[0] = e2e_env_required("DIALFLOW_TEST_DATABASE_URL");
	fx.db = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(fx.db) != CONNECTION_OK) {
		fprintf(stderr, "connect: %s", PQerrorMessage(fx.db));
		return -1;
	}
	snprintf(name, sizeof(name), "e2e wa %d %ld", (int)getpid(), (long)time(NULL));
	fx.biz = q_i64(Q("INSERT INTO businesses (name) VALUES ($1) RETURNING id", name));
	snprintf(fx.bid, sizeof(fx.bid), "%lld", (long long)fx.biz);
	snprintf(fx.pnid, sizeof(fx.pnid), "5%d%ld", (int)getpid(), (long)time(NULL) % 1000000);
	snprintf(fx.secret, sizeof(fx.secret), "e2e-app-secret-%d", (int)getpid());
	snprintf(fx.verify, sizeof(fx.verify), "e2e-verify-%d-%ld", (int)getpid(),
		 (long)time(NULL));
	snprintf(fx.wa_id, sizeof(fx.wa_id), "4917%07d", (int)getpid() % 10000000);
	PQclear(Q("INSERT INTO whatsapp_accounts (business_id, phone_number_id, access_token, "
		  "app_secret, verify_token) VALUES ($1::bigint, $2, $3, $4, $5)",
		  fx.bid, fx.pnid, TOKEN, fx.secret, fx.verify));
	return 0;
}

static int group_teardown(void **state)
{
	PQfinish(fx.db);
	return e2e_global_teardown(state);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_inbound),
	    cmocka_unit_test(test_outbound_in_order_with_retry),
	    cmocka_unit_test(test_flow_conversation),
	};

	e2e_skip_without_stack();
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
