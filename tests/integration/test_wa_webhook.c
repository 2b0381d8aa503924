/*
 * test_wa_webhook.c - GET/POST /webhooks/whatsapp run through api_dispatch()
 * against a real database, as the API's role dialflow_app:
 *   - the subscription handshake (token known / unknown, bad requests);
 *   - a signed message: contact upserted with its profile name, the message
 *     stored, the inbound hook called once inside the transaction (its
 *     outbox row commits with the message);
 *   - a duplicate delivery: 200, the hook not called, nothing changed;
 *   - refusals (403, nothing stored): no/bad signature, unknown account,
 *     an empty app secret, a body that is not JSON;
 *   - signed garbage is 400; a failing hook rolls the message back (503)
 *     so that Meta's redelivery is processed;
 *   - statuses move an outbound message forward only and keep Meta's error,
 *     and never touch another tenant's message with the same wamid;
 *   - RLS: tenant A's scope sees none of tenant B's contacts or messages.
 * Fixtures are written through the owner connection.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dialflow/api.h"
#include "dialflow/auth.h"
#include "dialflow/err.h"
#include "dialflow/http.h"
#include "dialflow/whatsapp.h"

static struct {
	api_ctx_t ctx;
	PGconn *owner;
	int hook_calls;
	int hook_fail; /* the hook returns this while non-zero */
	int64_t hook_contact, hook_message, hook_business;
	char hook_name[64], hook_text[64];
} fx;

/* A tenant with a WhatsApp account. */
typedef struct tenant {
	int64_t biz;
	char bid[24];
	char pnid[24];
	char secret[40];
	char verify[40];
} tenant_t;

typedef struct resp {
	int status;
	char ctype[64];
	char *body; /* malloc'd */
	json_t *json;
} resp_t;

static unsigned seq;

#define PAYLOAD_MAX 2048

static void tenant_new(tenant_t *t, const char *secret)
{
	char u[64];

	t->biz = itest_create_business(fx.owner, "wa", true);
	itest_i64s(t->bid, sizeof(t->bid), t->biz);
	/* unique digits: pid, time, counter */
	snprintf(t->pnid, sizeof(t->pnid), "9%06d%08ld%02u", (int)getpid() % 1000000,
		 (long)time(NULL) % 100000000, ++seq % 100);
	snprintf(t->secret, sizeof(t->secret), "%s", secret);
	snprintf(t->verify, sizeof(t->verify), "verify-%s", itest_unique(u, sizeof(u)));
	ITEST_X(fx.owner,
		"INSERT INTO whatsapp_accounts (business_id, phone_number_id, access_token, "
		"app_secret, verify_token) VALUES ($1::bigint, $2, 'tok', $3, $4)",
		t->bid, t->pnid, t->secret, t->verify);
}

static resp_t call(const char *method, const char *uri, const char *sig, const char *body)
{
	arena_t *a = arena_new(16384);
	http_request_t req;
	char h[128];
	const char *envp[2] = {NULL, NULL};
	const char *q = strchr(uri, '?');
	resp_t out;

	memset(&out, 0, sizeof(out));
	memset(&req, 0, sizeof(req));
	req.arena = a;
	req.method = http_method_parse(method);
	req.method_name = method;
	req.path = q ? arena_strndup(a, uri, (size_t)(q - uri)) : uri;
	req.query = q ? q + 1 : "";
	req.content_type = body ? "application/json" : NULL;
	req.body_type = http_body_type(req.content_type);
	req.body = body ? body : "";
	req.body_len = body ? strlen(body) : 0;
	req.remote_addr = "127.0.0.1";
	req.request_id = "itest-wa";
	if (sig != NULL) {
		snprintf(h, sizeof(h), "HTTP_X_HUB_SIGNATURE_256=%s", sig);
		envp[0] = h;
	}
	req.envp = envp;
	api_dispatch(&fx.ctx, &req);
	out.status = req.status;
	snprintf(out.ctype, sizeof(out.ctype), "%s", req.resp_ctype ? req.resp_ctype : "");
	out.body = strndup(req.resp_body ? req.resp_body : "", req.resp_len);
	out.json = json_loads(out.body, 0, NULL);
	arena_free(a);
	return out;
}

static void resp_free(resp_t *r)
{
	free(r->body);
	json_decref(r->json);
}

static void expect_status_at(resp_t *r, int want, int line)
{
	if (r->status != want)
		fail_msg("line %d: status %d, want %d: %s", line, r->status, want, r->body);
}
#define STATUS(r, want) expect_status_at(&(r), (want), __LINE__)

/* POST a body signed with secret (NULL: unsigned). */
static resp_t post(const char *secret, const char *body)
{
	char sig[WA_SIGNATURE_LEN + 1];

	if (secret == NULL)
		return call("POST", WA_WEBHOOK_PATH, NULL, body);
	assert_int_equal(wa_signature(secret, body, strlen(body), sig, sizeof(sig)), 0);
	return call("POST", WA_WEBHOOK_PATH, sig, body);
}

/* A Meta-shaped payload with one text message from wa_id. Caller frees. */
static char *text_payload(const tenant_t *t, const char *wa_id, const char *wamid, const char *text)
{
	char *s = malloc(PAYLOAD_MAX);
	int n;

	assert_non_null(s);
	n = snprintf(s, PAYLOAD_MAX,
		     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
		     "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
		     "\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001111\","
		     "\"phone_number_id\":\"%s\"},\"contacts\":[{\"profile\":{\"name\":"
		     "\"Ada\"},\"wa_id\":\"%s\"}],\"messages\":[{\"from\":\"%s\",\"id\":\"%s\","
		     "\"timestamp\":\"1750000000\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}"
		     "]}}]}]}",
		     t->pnid, wa_id, wa_id, wamid, text);
	assert_true(n > 0 && n < PAYLOAD_MAX);
	return s;
}

static char *status_payload(const tenant_t *t, const char *wamid, const char *status)
{
	char *s = malloc(PAYLOAD_MAX);
	int n;

	assert_non_null(s);
	n = snprintf(s, PAYLOAD_MAX,
		     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
		     "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
		     "\"whatsapp\",\"metadata\":{\"phone_number_id\":\"%s\"},\"statuses\":["
		     "{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":\"1750000100\","
		     "\"recipient_id\":\"4915100000001\"%s}]}}]}]}",
		     t->pnid, wamid, status,
		     strcmp(status, "failed") == 0
			 ? ",\"errors\":[{\"code\":131026,\"title\":\"Message undeliverable\"}]"
			 : "");
	assert_true(n > 0 && n < PAYLOAD_MAX);
	return s;
}

static int64_t count(const char *sql, const char *p1, const char *p2)
{
	return ITEST_I64(fx.owner, sql, p1, p2);
}

/* The hook: records what it saw and queues a reply in the same transaction. */
static int hook(db_t *db, arena_t *a, const wa_inbound_t *in)
{
	int rc;

	fx.hook_calls++;
	if (fx.hook_fail)
		return fx.hook_fail;
	fx.hook_contact = in->contact_id;
	fx.hook_message = in->message_id;
	fx.hook_business = in->business_id;
	snprintf(fx.hook_name, sizeof(fx.hook_name), "%s",
		 in->contact_name ? in->contact_name : "");
	snprintf(fx.hook_text, sizeof(fx.hook_text), "%s", in->msg->text ? in->msg->text : "");
	assert_true(json_is_object(in->msg->raw));
	rc = wa_outbox_enqueue(db, a, in->business_id, in->contact_id,
			       wa_text_payload(a, "thanks!"), "bot", NULL);
	return rc;
}

/* --- tests -------------------------------------------------------------------- */

static void test_verify(void **state)
{
	tenant_t t;
	char uri[256];
	resp_t r;

	(void)state;
	tenant_new(&t, "s1");
	snprintf(uri, sizeof(uri),
		 WA_WEBHOOK_PATH "?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=1158201444",
		 t.verify);
	r = call("GET", uri, NULL, NULL);
	STATUS(r, 200);
	assert_string_equal(r.body, "1158201444");
	assert_non_null(strstr(r.ctype, "text/plain"));
	resp_free(&r);
	/* unknown token, wrong mode, a challenge that is not plain, nothing at all */
	r = call("GET", WA_WEBHOOK_PATH "?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1",
		 NULL, NULL);
	STATUS(r, 403);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
	    "forbidden");
	resp_free(&r);
	snprintf(uri, sizeof(uri),
		 WA_WEBHOOK_PATH "?hub.mode=unsubscribe&hub.verify_token=%s&hub.challenge=1",
		 t.verify);
	r = call("GET", uri, NULL, NULL);
	STATUS(r, 403);
	resp_free(&r);
	snprintf(uri, sizeof(uri),
		 WA_WEBHOOK_PATH
		 "?hub.mode=subscribe&hub.verify_token=%s&hub.challenge=%%3Cscript%%3E",
		 t.verify);
	r = call("GET", uri, NULL, NULL);
	STATUS(r, 403);
	resp_free(&r);
	r = call("GET", WA_WEBHOOK_PATH, NULL, NULL);
	STATUS(r, 403);
	resp_free(&r);
}

static void test_message_stored_once(void **state)
{
	tenant_t t;
	char *body, *dup;
	resp_t r;
	char cid[24];
	int64_t upd1, upd2;

	(void)state;
	tenant_new(&t, "app-secret-xyz");
	wa_set_inbound_hook(hook);
	fx.hook_calls = 0;
	body = text_payload(&t, "4915100000001", "wamid.ONE.1", "hello bot");
	r = post(t.secret, body);
	STATUS(r, 200);
	resp_free(&r);
	assert_int_equal(fx.hook_calls, 1);
	assert_int_equal(fx.hook_business, t.biz);
	assert_string_equal(fx.hook_name, "Ada");
	assert_string_equal(fx.hook_text, "hello bot");
	itest_i64s(cid, sizeof(cid), fx.hook_contact);
	assert_int_equal(count("SELECT count(*) FROM contacts WHERE business_id = $1::bigint AND "
			       "wa_id = $2 AND name = 'Ada' AND last_seen IS NOT NULL",
			       t.bid, "4915100000001"),
			 1);
	assert_int_equal(count("SELECT count(*) FROM messages WHERE business_id = $1::bigint AND "
			       "direction = 'in' AND wamid = $2 AND status = 'received' AND "
			       "text = 'hello bot' AND payload->>'id' = 'wamid.ONE.1'",
			       t.bid, "wamid.ONE.1"),
			 1);
	/* the hook's reply committed with the message */
	assert_int_equal(
	    count("SELECT count(*) FROM messages m JOIN wa_outbox o ON o.message_id = "
		  "m.id WHERE m.contact_id = $1::bigint AND m.direction = 'out' AND "
		  "m.sender = 'bot' AND m.status = 'queued' AND o.status = 'queued' AND "
		  "m.text = 'thanks!' AND $2 = $2",
		  cid, "x"),
	    1);
	upd1 = count("SELECT (extract(epoch FROM updated_at) * 1e6)::bigint FROM contacts "
		     "WHERE id = $1::bigint AND $2 = $2",
		     cid, "x");
	/* a redelivery: 200, no hook, nothing changed */
	r = post(t.secret, body);
	STATUS(r, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "duplicates")), 1);
	resp_free(&r);
	assert_int_equal(fx.hook_calls, 1);
	upd2 = count("SELECT (extract(epoch FROM updated_at) * 1e6)::bigint FROM contacts "
		     "WHERE id = $1::bigint AND $2 = $2",
		     cid, "x");
	assert_int_equal(upd1, upd2);
	assert_int_equal(count("SELECT count(*) FROM messages WHERE contact_id = $1::bigint AND "
			       "$2 = $2",
			       cid, "x"),
			 2);
	/* a second message of the same contact: same contact row */
	dup = text_payload(&t, "4915100000001", "wamid.ONE.2", "again");
	r = post(t.secret, dup);
	STATUS(r, 200);
	resp_free(&r);
	assert_int_equal(fx.hook_calls, 2);
	assert_int_equal(fx.hook_contact, atoll(cid));
	free(body);
	free(dup);
	wa_set_inbound_hook(NULL);
}

static void test_refusals(void **state)
{
	tenant_t t, empty;
	char *body, *b2, *b3, *pn;
	resp_t r;
	char sig[WA_SIGNATURE_LEN + 1];

	(void)state;
	tenant_new(&t, "right-secret");
	tenant_new(&empty, "");
	body = text_payload(&t, "4915100000002", "wamid.REF.1", "hi");
	/* no signature, a malformed one, a wrong secret, a signature of another body */
	r = post(NULL, body);
	STATUS(r, 403);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "reason")),
	    "invalid_signature");
	resp_free(&r);
	r = call("POST", WA_WEBHOOK_PATH, "sha256=zz", body);
	STATUS(r, 403);
	resp_free(&r);
	r = post("wrong-secret", body);
	STATUS(r, 403);
	resp_free(&r);
	assert_int_equal(wa_signature(t.secret, "{}", 2, sig, sizeof(sig)), 0);
	r = call("POST", WA_WEBHOOK_PATH, sig, body);
	STATUS(r, 403);
	resp_free(&r);
	/* an account with no app secret is refused even with the "right" empty key */
	b2 = text_payload(&empty, "4915100000002", "wamid.REF.2", "hi");
	r = call("POST", WA_WEBHOOK_PATH,
		 "sha256=b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad", b2);
	STATUS(r, 403);
	resp_free(&r);
	/* not JSON, no account named, an unknown account: nothing to verify against */
	r = post(t.secret, "not json at all");
	STATUS(r, 403);
	resp_free(&r);
	r = post(t.secret, "{\"object\":\"whatsapp_business_account\",\"entry\":[]}");
	STATUS(r, 403);
	resp_free(&r);
	b3 = text_payload(&t, "4915100000002", "wamid.REF.3", "hi");
	pn = strstr(b3, t.pnid);
	assert_non_null(pn);
	*pn = '8'; /* another phone_number_id */
	r = post(t.secret, b3);
	STATUS(r, 403);
	resp_free(&r);
	assert_int_equal(count("SELECT count(*) FROM contacts WHERE business_id IN ($1::bigint, "
			       "$2::bigint)",
			       t.bid, empty.bid),
			 0);
	free(body);
	free(b2);
	free(b3);
}

static void test_signed_garbage_and_hook_failure(void **state)
{
	tenant_t t;
	char *bad = NULL, *body;
	resp_t r;

	(void)state;
	tenant_new(&t, "g-secret");
	assert_true(asprintf(&bad,
			     "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
			     "\"value\":{\"metadata\":{\"phone_number_id\":\"%s\"},\"messages\":[{"
			     "\"from\":\"not-a-number\",\"id\":\"x\",\"type\":\"text\"}]}}]}]}",
			     t.pnid) > 0);
	r = post(t.secret, bad);
	STATUS(r, 400);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(r.json, "error"), "code")),
	    "invalid_payload");
	resp_free(&r);
	/* the hook fails: nothing is stored, Meta is told to come back */
	wa_set_inbound_hook(hook);
	fx.hook_calls = 0;
	fx.hook_fail = ERR_UNAVAIL;
	body = text_payload(&t, "4915100000003", "wamid.HF.1", "hi");
	r = post(t.secret, body);
	STATUS(r, 503);
	resp_free(&r);
	assert_int_equal(count("SELECT count(*) FROM messages WHERE business_id = $1::bigint AND "
			       "wamid = $2",
			       t.bid, "wamid.HF.1"),
			 0);
	fx.hook_fail = 0;
	r = post(t.secret, body);
	STATUS(r, 200);
	resp_free(&r);
	assert_int_equal(fx.hook_calls, 2);
	assert_int_equal(count("SELECT count(*) FROM messages WHERE business_id = $1::bigint AND "
			       "wamid = $2",
			       t.bid, "wamid.HF.1"),
			 1);
	wa_set_inbound_hook(NULL);
	free(bad);
	free(body);
}

/* An outbound message of t's contact wa_id with wamid, as the sender leaves it. */
static int64_t outbound(const tenant_t *t, const char *wa_id, const char *wamid)
{
	int64_t c = ITEST_I64(fx.owner,
			      "INSERT INTO contacts (business_id, wa_id) VALUES ($1::bigint, $2) "
			      "ON CONFLICT (business_id, wa_id) DO UPDATE SET name = contacts.name "
			      "RETURNING id",
			      t->bid, wa_id);
	char cs[24];

	return ITEST_I64(
	    fx.owner,
	    "INSERT INTO messages (business_id, contact_id, direction, wamid, type, "
	    "status, sender, sent_at) VALUES ($1::bigint, $2::bigint, 'out', $3, 'text', "
	    "'sent', 'bot', now()) RETURNING id",
	    t->bid, itest_i64s(cs, sizeof(cs), c), wamid);
}

static char *msg_status(int64_t id)
{
	char s[24];
	PGresult *r = ITEST_Q(fx.owner, "SELECT status FROM messages WHERE id = $1::bigint",
			      itest_i64s(s, sizeof(s), id));
	char *v = strdup(PQgetvalue(r, 0, 0));

	PQclear(r);
	return v;
}

static void post_status(const tenant_t *t, const char *wamid, const char *st)
{
	char *b = status_payload(t, wamid, st);
	resp_t r = post(t->secret, b);

	STATUS(r, 200);
	resp_free(&r);
	free(b);
}

static void test_statuses(void **state)
{
	tenant_t t, other;
	int64_t m1, m2, mo;
	char *s, id[24];

	(void)state;
	tenant_new(&t, "st-secret");
	tenant_new(&other, "st-secret-2");
	m1 = outbound(&t, "4915100000010", "wamid.ST.1");
	m2 = outbound(&t, "4915100000010", "wamid.ST.2");
	mo = outbound(&other, "4915100000010", "wamid.ST.1"); /* same wamid, other tenant */
	post_status(&t, "wamid.ST.1", "delivered");
	s = msg_status(m1);
	assert_string_equal(s, "delivered");
	free(s);
	post_status(&t, "wamid.ST.1", "sent"); /* late: never backwards */
	s = msg_status(m1);
	assert_string_equal(s, "delivered");
	free(s);
	post_status(&t, "wamid.ST.1", "read");
	post_status(&t, "wamid.ST.1", "failed"); /* after read: ignored */
	s = msg_status(m1);
	assert_string_equal(s, "read");
	free(s);
	assert_int_equal(
	    count("SELECT count(*) FROM messages WHERE id = $1::bigint AND "
		  "delivered_at IS NOT NULL AND read_at IS NOT NULL AND failed_at IS NULL "
		  "AND $2 = $2",
		  itest_i64s(id, sizeof(id), m1), "x"),
	    1);
	/* failed keeps Meta's error */
	post_status(&t, "wamid.ST.2", "failed");
	s = msg_status(m2);
	assert_string_equal(s, "failed");
	free(s);
	assert_int_equal(count("SELECT count(*) FROM messages WHERE id = $1::bigint AND "
			       "(error #>> '{errors,0,code}')::int = 131026 AND $2 = $2",
			       itest_i64s(id, sizeof(id), m2), "x"),
			 1);
	/* the other tenant's message with the same wamid was never touched */
	s = msg_status(mo);
	assert_string_equal(s, "sent");
	free(s);
	/* a status of an unknown wamid is fine (200, nothing) */
	post_status(&t, "wamid.UNKNOWN", "read");
}

static void test_rls(void **state)
{
	tenant_t a, b;
	db_t *app;
	arena_t *ar = arena_new(4096);
	int64_t mb;
	int err;
	PGresult *r;

	(void)state;
	tenant_new(&a, "rls-a");
	tenant_new(&b, "rls-b");
	outbound(&a, "4915100000020", "wamid.RLS.A");
	mb = outbound(&b, "4915100000021", "wamid.RLS.B");
	app = itest_app_db("itest_wa_rls");
	assert_int_equal(db_begin(app), 0);
	assert_int_equal(db_set_tenant(app, ar, a.biz, false), 0);
	assert_int_equal(ITEST_DB_I64(app,
				      "SELECT count(*) FROM contacts WHERE business_id = "
				      "$1::bigint",
				      b.bid),
			 0);
	assert_int_equal(ITEST_DB_I64(app,
				      "SELECT count(*) FROM messages WHERE business_id = "
				      "$1::bigint",
				      b.bid),
			 0);
	assert_int_equal(ITEST_DB_I64(app,
				      "SELECT count(*) FROM contacts WHERE business_id = "
				      "$1::bigint",
				      a.bid),
			 1);
	/* not even by id, and not through the outbox helper */
	{
		char id[24];

		assert_int_equal(ITEST_DB_I64(app,
					      "SELECT count(*) FROM messages WHERE id = $1::bigint",
					      itest_i64s(id, sizeof(id), mb)),
				 0);
	}
	/* the secrets are not readable by the API's role */
	r = db_exec_sql(app, ar, "SELECT app_secret FROM whatsapp_accounts", 0, NULL, &err);
	assert_null(r);
	db_rollback(app);
	assert_int_equal(db_begin(app), 0);
	assert_int_equal(db_set_tenant(app, ar, a.biz, false), 0);
	r = db_exec_sql(app, ar, "SELECT app_secret_set FROM whatsapp_accounts", 0, NULL, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	/* flow versions are immutable for the API */
	r = db_exec_sql(app, ar, "UPDATE flow_versions SET version = version", 0, NULL, &err);
	assert_null(r);
	db_rollback(app);
	db_free(app);
	arena_free(ar);
}

static int group_setup(void **state)
{
	const char *err = NULL;
	char path[] = "/tmp/itest-wa-secret-XXXXXX", secret[64];
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(auth_random_token(secret, sizeof(secret), 24), 0);
	assert_int_equal(write(fd, secret, strlen(secret)), (ssize_t)strlen(secret));
	close(fd);
	setenv("DIALFLOW_JWT_SECRET_FILE", path, 1);
	setenv("DIALFLOW_API_DATABASE_URL", itest_db_url(), 1);
	unsetenv("DIALFLOW_API_DB_ROLE");
	if (api_ctx_init(&fx.ctx, "itest_wa_webhook", &err) < 0)
		fail_msg("api_ctx_init: %s", err);
	unlink(path);
	fx.owner = itest_owner_pg();
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	wa_set_inbound_hook(NULL);
	api_ctx_free(&fx.ctx);
	PQfinish(fx.owner);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verify),   cmocka_unit_test(test_message_stored_once),
	    cmocka_unit_test(test_refusals), cmocka_unit_test(test_signed_garbage_and_hook_failure),
	    cmocka_unit_test(test_statuses), cmocka_unit_test(test_rls),
	};

	itest_init();
	return cmocka_run_group_tests_name("wa_webhook", tests, group_setup, group_teardown);
}
