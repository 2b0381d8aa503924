/*
 * test_twilio_client.c - the `twilio` provider (src/providers/twilio.c)
 * against a real dialflow-sandbox child on a free loopback port, and against
 * a misbehaving server run by the test itself:
 *   - the exact request format is accepted, and recorded as sent;
 *   - the sandbox's signed callbacks verify with twilio_signature_check();
 *   - fetch, hang-up (idempotent), bad auth, unknown calls;
 *   - the outcome mapping: 4xx REJECTED, 429/5xx and a closed port
 *     TRANSIENT, a lost or garbled answer UNKNOWN;
 *   - what the sandbox refuses (the fake Twilio the other tests rely on).
 * Needs no database. DIALFLOW_SANDBOX_BIN names the binary (default: the
 * build directory's dialflow-sandbox, found from this program's path).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/arena.h"
#include "dialflow/form.h"
#include "dialflow/log.h"
#include "dialflow/provider.h"

#define ACCOUNT "AC00000000000000000000000000000042"
#define TOKEN	"itest-twilio-token-0123456789abcdef"
#define FROM	"+15550000100"
#define WAIT_MS 8000

/* --- a small HTTP server in a thread: callback receiver or misbehaving API --- */

enum { MODE_RECEIVER, MODE_GARBAGE_201, MODE_CLOSE, MODE_503, MODE_SILENT, MODE_RECORD };

typedef struct hit {
	char path[64];
	char status[32];
	int seq;
	bool valid;
} hit_t;

typedef struct srv {
	int fd;
	int port;
	volatile int mode;
	pthread_t thread;
	pthread_mutex_t lock;
	hit_t hits[512];
	int nhits;
	volatile bool stop;
	/* MODE_RECORD: the last request, as sent */
	char last_target[256];
	char last_body[4096];
} srv_t;

static struct {
	pid_t sandbox;
	int sandbox_port;
	char base[64];
	char tmpdir[64];
	char token_file[128];
	srv_t receiver;
	srv_t bad;
	provider_t *p;
	CURL *raw;
} fx;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int listen_any(int *port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	*port = ntohs(sa.sin_port);
	return fd;
}

/* Read one request (head and Content-Length body) into buf; returns its length or -1. */
static ssize_t read_request(int c, char *buf, size_t cap, size_t *head_len)
{
	size_t n = 0;
	long cl = -1;

	for (;;) {
		ssize_t r;
		char *blank;

		if (n == cap)
			return -1;
		r = recv(c, buf + n, cap - n, 0);
		if (r <= 0)
			return -1;
		n += (size_t)r;
		blank = memmem(buf, n, "\r\n\r\n", 4);
		if (blank == NULL)
			continue;
		*head_len = (size_t)(blank - buf) + 4;
		if (cl < 0) {
			char *h = strcasestr(buf, "\r\nContent-Length:");

			cl = (h != NULL && h < blank) ? strtol(h + 17, NULL, 10) : 0;
		}
		if (n >= *head_len + (size_t)cl) {
			buf[n] = '\0';
			return (ssize_t)n;
		}
	}
}

static void send_all(int c, const char *s)
{
	size_t n = strlen(s), off = 0;

	while (off < n) {
		ssize_t w = send(c, s + off, n - off, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

/* Verify and record a callback from the sandbox, then answer it. */
static void receive(srv_t *s, int c, char *buf, size_t len, size_t head_len)
{
	arena_t *a = arena_new(8192);
	char url[512], target[256] = "", sig[64] = "";
	const char **names, **values, *why;
	const char *sp = strchr(buf, ' ');
	const char *h = strcasestr(buf, "\r\nX-Twilio-Signature:");
	form_t f;
	hit_t hit = {0};

	if (sp != NULL)
		sscanf(sp + 1, "%255s", target);
	if (h != NULL)
		sscanf(h + 21, " %63s", sig);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", s->port, target);
	if (form_parse(a, buf + head_len, len - head_len, &f, &why) == 0) {
		form_arrays(a, &f, &names, &values);
		hit.valid = twilio_signature_check(TOKEN, url, names, values, f.n, sig);
		snprintf(hit.status, sizeof(hit.status), "%s",
			 form_get(&f, "CallStatus") ? form_get(&f, "CallStatus") : "");
		hit.seq =
		    form_get(&f, "SequenceNumber") ? atoi(form_get(&f, "SequenceNumber")) : -1;
	}
	snprintf(hit.path, sizeof(hit.path), "%.63s", target);
	pthread_mutex_lock(&s->lock);
	if (s->nhits < (int)(sizeof(s->hits) / sizeof(s->hits[0])))
		s->hits[s->nhits++] = hit;
	pthread_mutex_unlock(&s->lock);
	if (strncmp(target, "/voice", 6) == 0) {
		static const char twiml[] =
		    "<?xml version=\"1.0\" "
		    "encoding=\"UTF-8\"?><Response><Say>hello</Say></Response>";
		char resp[256];

		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s",
			 strlen(twiml), twiml);
		send_all(c, resp);
	} else {
		send_all(c, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
	}
	arena_free(a);
}

static void *srv_main(void *arg)
{
	srv_t *s = arg;
	static char buf[70000];

	while (!s->stop) {
		size_t head_len = 0;
		ssize_t n;
		int c = accept(s->fd, NULL, NULL);

		if (c < 0)
			continue;
		n = read_request(c, buf, sizeof(buf) - 1, &head_len);
		if (n < 0) {
			close(c);
			continue;
		}
		switch (s->mode) {
		case MODE_RECEIVER:
			receive(s, c, buf, (size_t)n, head_len);
			break;
		case MODE_GARBAGE_201:
			send_all(c, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
				    "Content-Length: 5\r\nConnection: close\r\n\r\nhello");
			break;
		case MODE_RECORD: {
			/* a Twilio that accepts anything and keeps the exact request */
			static const char call[] =
			    "{\"sid\":\"CA0123456789abcdef0123456789abcdef\",\"status\":"
			    "\"queued\"}";
			char resp[256];

			pthread_mutex_lock(&s->lock);
			sscanf(buf, "%*s %255s", s->last_target);
			snprintf(s->last_body, sizeof(s->last_body), "%s", buf + head_len);
			pthread_mutex_unlock(&s->lock);
			snprintf(resp, sizeof(resp),
				 "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
				 strlen(call), call);
			send_all(c, resp);
			break;
		}
		case MODE_503:
			send_all(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: "
				    "application/json\r\nContent-Length: 2\r\nConnection: "
				    "close\r\n\r\n{}");
			break;
		case MODE_SILENT:
			usleep(1000 * 1000); /* longer than the client's total time-out */
			break;
		default: /* MODE_CLOSE: read the request, say nothing */
			break;
		}
		close(c);
	}
	return NULL;
}

static void srv_start(srv_t *s, int mode)
{
	memset(s, 0, sizeof(*s));
	s->fd = listen_any(&s->port);
	assert_true(s->fd >= 0);
	s->mode = mode;
	pthread_mutex_init(&s->lock, NULL);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
}

static void srv_stop(srv_t *s)
{
	int c;
	struct sockaddr_in sa = {.sin_family = AF_INET};

	s->stop = true;
	/* wake the accept() */
	sa.sin_port = htons((uint16_t)s->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(c, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		send_all(c, "GET / HTTP/1.1\r\n\r\n");
	close(c);
	pthread_join(s->thread, NULL);
	close(s->fd);
	pthread_mutex_destroy(&s->lock);
}

/* --- the sandbox child ---------------------------------------------------- */

static const char *sandbox_bin(char *buf, size_t bufsz)
{
	const char *env = getenv("DIALFLOW_SANDBOX_BIN");
	char self[PATH_MAX];
	ssize_t n;

	if (env != NULL && env[0] != '\0')
		return env;
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return "./dialflow-sandbox";
	self[n] = '\0';
	/* <build>/tests/integration/test_twilio_client -> <build>/dialflow-sandbox */
	snprintf(buf, bufsz, "%s/../../dialflow-sandbox", dirname(self));
	return buf;
}

static void start_sandbox(void)
{
	char bin[PATH_MAX + 32], line[256] = "";
	const char *path = sandbox_bin(bin, sizeof(bin));
	int out[2];
	FILE *f;
	size_t got;

	assert_int_equal(pipe(out), 0);
	fx.sandbox = fork();
	assert_true(fx.sandbox >= 0);
	if (fx.sandbox == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		setenv("DIALFLOW_TWILIO_ACCOUNT_SID", ACCOUNT, 1);
		setenv("DIALFLOW_TWILIO_AUTH_TOKEN_FILE", fx.token_file, 1);
		setenv("DIALFLOW_SANDBOX_PORT", "0", 1);
		setenv("DIALFLOW_SANDBOX_ANSWER_PCT", "100", 1);
		setenv("DIALFLOW_SANDBOX_BUSY_PCT", "0", 1);
		setenv("DIALFLOW_SANDBOX_NOANSWER_PCT", "0", 1);
		setenv("DIALFLOW_SANDBOX_FAIL_PCT", "0", 1);
		setenv("DIALFLOW_SANDBOX_RING_MS", "100", 1);
		setenv("DIALFLOW_SANDBOX_TALK_MS", "300-400", 1);
		setenv("DIALFLOW_SANDBOX_SEED", "42", 1);
		setenv("DIALFLOW_LOG_LEVEL", "warn", 1);
		unsetenv("DIALFLOW_LOG_FILE");
		execl(path, path, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	assert_non_null(f);
	if (fgets(line, sizeof(line), f) == NULL) {
		print_error("dialflow-sandbox (%s) printed nothing; did it start?\n", path);
		fail();
	}
	fclose(f); /* the child keeps writing nowhere: it prints nothing more */
	got = (size_t)sscanf(line, "dialflow-sandbox listening on 127.0.0.1:%d", &fx.sandbox_port);
	assert_int_equal(got, 1);
	snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%d", fx.sandbox_port);
}

static int group_setup(void **state)
{
	FILE *f;

	(void)state;
	(void)log_set_level(getenv("DIALFLOW_TEST_LOG_LEVEL") ? getenv("DIALFLOW_TEST_LOG_LEVEL")
							      : "error");
	snprintf(fx.tmpdir, sizeof(fx.tmpdir), "/tmp/dialflow-twc.XXXXXX");
	assert_non_null(mkdtemp(fx.tmpdir));
	snprintf(fx.token_file, sizeof(fx.token_file), "%s/token", fx.tmpdir);
	f = fopen(fx.token_file, "w");
	assert_non_null(f);
	fputs(TOKEN "\n", f);
	fclose(f);
	chmod(fx.token_file, 0600);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	srv_start(&fx.receiver, MODE_RECEIVER);
	srv_start(&fx.bad, MODE_CLOSE);
	start_sandbox();
	fx.p = provider_twilio_new(fx.base, ACCOUNT, TOKEN, NULL);
	assert_non_null(fx.p);
	fx.raw = curl_easy_init();
	return 0;
}

static int group_teardown(void **state)
{
	int st;

	(void)state;
	provider_free(fx.p);
	curl_easy_cleanup(fx.raw);
	if (fx.sandbox > 0) {
		kill(fx.sandbox, SIGTERM);
		waitpid(fx.sandbox, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "dialflow-sandbox did not exit 0 on SIGTERM (status %d)\n",
				st);
			return -1;
		}
	}
	srv_stop(&fx.receiver);
	srv_stop(&fx.bad);
	unlink(fx.token_file);
	rmdir(fx.tmpdir);
	curl_global_cleanup();
	return 0;
}

/* --- helpers -------------------------------------------------------------- */

static provider_call_req_t call_req(const char *to)
{
	static char answer[128], status[128];
	provider_call_req_t r = {0};

	snprintf(answer, sizeof(answer), "http://127.0.0.1:%d/voice", fx.receiver.port);
	snprintf(status, sizeof(status), "http://127.0.0.1:%d/status?x=1", fx.receiver.port);
	r.to = to;
	r.from = FROM;
	r.answer_url = answer;
	r.status_url = status;
	r.timeout_s = 3; /* below Twilio's minimum: sent as 5 */
	r.job_id = 7;
	return r;
}

typedef struct raw_resp {
	long status;
	char body[65536];
	size_t len;
} raw_resp_t;

static size_t raw_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
	raw_resp_t *r = arg;
	size_t n = size * nmemb;

	if (n > sizeof(r->body) - 1 - r->len)
		n = sizeof(r->body) - 1 - r->len;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return size * nmemb;
}

/* A hand-made request to the sandbox. userpwd and ctype may be NULL; body NULL is a GET. */
static void raw(raw_resp_t *r, const char *path, const char *userpwd, const char *ctype,
		const char *body)
{
	struct curl_slist *h = NULL;
	char url[512], ct[128];

	memset(r, 0, sizeof(*r));
	curl_easy_reset(fx.raw);
	snprintf(url, sizeof(url), "%s%s", fx.base, path);
	curl_easy_setopt(fx.raw, CURLOPT_URL, url);
	curl_easy_setopt(fx.raw, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(fx.raw, CURLOPT_WRITEFUNCTION, raw_write);
	curl_easy_setopt(fx.raw, CURLOPT_WRITEDATA, r);
	if (userpwd != NULL)
		curl_easy_setopt(fx.raw, CURLOPT_USERPWD, userpwd);
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "");
	h = curl_slist_append(h, ct);
	curl_easy_setopt(fx.raw, CURLOPT_HTTPHEADER, h);
	if (body != NULL)
		curl_easy_setopt(fx.raw, CURLOPT_POSTFIELDS, body);
	assert_int_equal(curl_easy_perform(fx.raw), CURLE_OK);
	curl_easy_getinfo(fx.raw, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
}

/* The sandbox's record of one call (new reference), found by sid or To. */
static json_t *sandbox_call(const char *key, const char *value)
{
	raw_resp_t r;
	char path[160], *enc = curl_easy_escape(NULL, value, 0);
	json_t *root, *calls, *one;

	snprintf(path, sizeof(path), "/__sandbox/calls?%s=%s", key, enc);
	curl_free(enc);
	raw(&r, path, NULL, NULL, NULL);
	assert_int_equal(r.status, 200);
	root = json_loads(r.body, 0, NULL);
	assert_non_null(root);
	calls = json_object_get(root, "calls");
	if (json_array_size(calls) == 0) {
		json_decref(root);
		return NULL;
	}
	one = json_incref(json_array_get(calls, json_array_size(calls) - 1));
	json_decref(root);
	return one;
}

static const char *jstr(json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Wait until fetch_status says `want`. */
static void wait_status(const char *sid, const char *want, provider_call_res_t *res)
{
	int64_t end = now_ms() + WAIT_MS;

	while (now_ms() < end) {
		assert_int_equal(fx.p->ops->fetch_status(fx.p, sid, res), PROVIDER_OK);
		if (strcmp(res->status, want) == 0)
			return;
		usleep(50 * 1000);
	}
	print_error("call %s is '%s', not '%s', after %d ms\n", sid, res->status, want, WAIT_MS);
	fail();
}

/* --- tests ---------------------------------------------------------------- */

/* The request is what Twilio documents, parameter for parameter. */
static void test_place_call_exact_format(void **state)
{
	static const char *const want[][2] = {
	    {"To", "+15550000201"},
	    {"From", FROM},
	    {"Url", NULL},
	    {"Method", "POST"},
	    {"StatusCallback", NULL},
	    {"StatusCallbackMethod", "POST"},
	    {"StatusCallbackEvent", "initiated"},
	    {"StatusCallbackEvent", "ringing"},
	    {"StatusCallbackEvent", "answered"},
	    {"StatusCallbackEvent", "completed"},
	    {"Timeout", "5"},
	};
	provider_call_req_t req = call_req("+15550000201");
	provider_call_res_t res;
	json_t *call, *params;

	(void)state;
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_OK);
	assert_int_equal(res.http_status, 201);
	assert_int_equal(strlen(res.call_sid), 34);
	assert_memory_equal(res.call_sid, "CA", 2);
	assert_int_equal(strspn(res.call_sid + 2, "0123456789abcdef"), 32);
	assert_string_equal(res.status, "queued");
	assert_string_equal(res.error_code, "");

	call = sandbox_call("sid", res.call_sid);
	assert_non_null(call);
	assert_string_equal(jstr(call, "to"), "+15550000201");
	params = json_object_get(call, "params");
	assert_int_equal(json_array_size(params), sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < json_array_size(params); i++) {
		json_t *pair = json_array_get(params, i);
		const char *v = json_string_value(json_array_get(pair, 1));

		assert_string_equal(json_string_value(json_array_get(pair, 0)), want[i][0]);
		if (want[i][1] != NULL)
			assert_string_equal(v, want[i][1]);
	}
	assert_string_equal(json_string_value(json_array_get(json_array_get(params, 2), 1)),
			    req.answer_url);
	assert_string_equal(json_string_value(json_array_get(json_array_get(params, 4), 1)),
			    req.status_url);
	json_decref(call);
}

/* The call runs its course; every callback the sandbox sent carries a valid signature. */
static void test_fetch_and_signed_callbacks(void **state)
{
	provider_call_req_t req = call_req("+15550000202");
	provider_call_res_t res, st;
	char sid[64];
	int64_t end;
	bool done = false;
	int seen = 0, last_seq = -1;
	const char *order[] = {"initiated", "ringing", "in-progress", "completed"};

	(void)state;
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_OK);
	snprintf(sid, sizeof(sid), "%s", res.call_sid);
	wait_status(sid, "completed", &st);
	assert_string_equal(st.call_sid, sid);
	assert_true(st.duration >= 1);
	assert_int_equal(st.http_status, 200);
	/* the final callback is posted after the status flips: wait for it */
	end = now_ms() + WAIT_MS;
	while (!done && now_ms() < end) {
		json_t *call = sandbox_call("sid", sid);

		done = json_is_false(json_object_get(call, "callbacks_pending"));
		json_decref(call);
		if (!done)
			usleep(50 * 1000);
	}
	assert_true(done);
	pthread_mutex_lock(&fx.receiver.lock);
	for (int i = 0; i < fx.receiver.nhits; i++) {
		hit_t *h = &fx.receiver.hits[i];

		if (!h->valid) {
			pthread_mutex_unlock(&fx.receiver.lock);
			print_error("callback %s status=%s has a bad signature\n", h->path,
				    h->status);
			fail();
		}
	}
	/* this call's status callbacks: in order, numbered 0, 1, 2, ... */
	for (int i = 0; i < fx.receiver.nhits; i++) {
		hit_t *h = &fx.receiver.hits[i];

		if (strncmp(h->path, "/status", 7) != 0 || h->seq < 0)
			continue;
		if (seen < 4 && strcmp(h->status, order[seen]) == 0 && h->seq == last_seq + 1) {
			last_seq = h->seq;
			seen++;
		}
	}
	pthread_mutex_unlock(&fx.receiver.lock);
	assert_int_equal(seen, 4);
	{
		json_t *call = sandbox_call("sid", sid);

		assert_int_equal(json_integer_value(json_object_get(call, "twiml_status")), 200);
		assert_non_null(strstr(jstr(call, "twiml"), "<Say>hello</Say>"));
		json_decref(call);
	}
}

static void test_hangup_is_idempotent(void **state)
{
	provider_call_req_t req = call_req("+15550000203");
	provider_call_res_t res, h;
	json_t *call;

	(void)state;
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_OK);
	assert_int_equal(fx.p->ops->hangup(fx.p, res.call_sid, &h), PROVIDER_OK);
	assert_string_equal(h.status, "completed");
	assert_int_equal(h.http_status, 200);
	assert_int_equal(fx.p->ops->hangup(fx.p, res.call_sid, &h), PROVIDER_OK);
	assert_string_equal(h.status, "completed");
	call = sandbox_call("sid", res.call_sid);
	assert_true(json_is_true(json_object_get(call, "hangup_requested")));
	assert_string_equal(jstr(call, "status"), "completed");
	json_decref(call);
}

static void test_unknown_call(void **state)
{
	provider_call_res_t res;

	(void)state;
	assert_int_equal(fx.p->ops->fetch_status(fx.p, "CA00000000000000000000000000000000", &res),
			 PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 404);
	assert_string_equal(res.error_code, "20404");
	assert_int_equal(fx.p->ops->hangup(fx.p, "CA00000000000000000000000000000000", &res),
			 PROVIDER_ERR_REJECTED);
	/* a malformed sid never leaves the process */
	assert_int_equal(fx.p->ops->hangup(fx.p, "CA../../x", &res), PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 0);
	assert_int_equal(fx.p->ops->fetch_status(fx.p, "", &res), PROVIDER_ERR_REJECTED);
}

static void test_bad_credentials(void **state)
{
	provider_t *wrong_token = provider_twilio_new(fx.base, ACCOUNT, "not-the-token", NULL);
	provider_t *wrong_account =
	    provider_twilio_new(fx.base, "AC00000000000000000000000000000043", TOKEN, NULL);
	provider_call_req_t req = call_req("+15550000204");
	provider_call_res_t res;
	json_t *call;

	(void)state;
	assert_int_equal(wrong_token->ops->place_call(wrong_token, &req, &res),
			 PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 401);
	assert_string_equal(res.error_code, "20003");
	assert_string_equal(res.call_sid, "");
	assert_int_equal(wrong_account->ops->place_call(wrong_account, &req, &res),
			 PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 401); /* its own token does not match */
	call = sandbox_call("to", "+15550000204");
	assert_null(call);
	provider_free(wrong_token);
	provider_free(wrong_account);
}

static void test_rejected_and_transient(void **state)
{
	provider_call_req_t req = call_req("+15005550001");
	provider_call_res_t res;

	(void)state;
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 400);
	assert_string_equal(res.error_code, "21211");
	assert_string_equal(res.error_message, "Invalid 'To' Phone Number");
	req = call_req("+15005550429");
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_ERR_TRANSIENT);
	assert_int_equal(res.http_status, 429);
	req = call_req("+15005550500");
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_ERR_TRANSIENT);
	assert_int_equal(res.http_status, 500);
	/* the client refuses an incomplete request itself */
	req = call_req("+15550000205");
	req.status_url = "";
	assert_int_equal(fx.p->ops->place_call(fx.p, &req, &res), PROVIDER_ERR_REJECTED);
	assert_int_equal(res.http_status, 0);
}

/* Sent, answer lost: the call exists at the carrier, so the outcome must be UNKNOWN. */
static void test_lost_answer_is_unknown(void **state)
{
	provider_t *p = provider_twilio_new(fx.base, ACCOUNT, TOKEN, NULL);
	provider_call_req_t req = call_req("+15005550408");
	provider_call_res_t res;
	json_t *call;

	(void)state;
	provider_twilio_set_timeouts(p, 500, 700);
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_UNKNOWN);
	assert_string_equal(res.error_code, "timeout");
	assert_int_equal(res.http_status, 0);
	call = sandbox_call("to", "+15005550408");
	assert_non_null(call); /* never redial: it is ringing */
	json_decref(call);
	provider_free(p);
}

static void test_closed_port_is_transient(void **state)
{
	char base[64];
	provider_t *p;
	provider_call_req_t req = call_req("+15550000206");
	provider_call_res_t res;
	int port, fd = listen_any(&port);

	(void)state;
	close(fd); /* a port nobody listens on */
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
	p = provider_twilio_new(base, ACCOUNT, TOKEN, NULL);
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_TRANSIENT);
	assert_string_equal(res.error_code, "network");
	assert_int_equal(res.http_status, 0);
	provider_free(p);
}

static void test_misbehaving_server(void **state)
{
	char base[64];
	provider_t *p;
	provider_call_req_t req = call_req("+15550000207");
	provider_call_res_t res;

	(void)state;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d/", fx.bad.port);
	p = provider_twilio_new(base, ACCOUNT, TOKEN, NULL);
	provider_twilio_set_timeouts(p, 500, 800);
	fx.bad.mode = MODE_GARBAGE_201; /* "created", but no call resource */
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_UNKNOWN);
	assert_int_equal(res.http_status, 201);
	assert_string_equal(res.error_code, "bad_answer");
	fx.bad.mode = MODE_CLOSE; /* read the request, close without a word */
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_UNKNOWN);
	assert_string_equal(res.error_code, "network");
	fx.bad.mode = MODE_SILENT; /* never answers */
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_UNKNOWN);
	assert_string_equal(res.error_code, "timeout");
	fx.bad.mode = MODE_503;
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_TRANSIENT);
	assert_int_equal(res.http_status, 503);
	assert_string_equal(res.error_code, "http_503");
	assert_int_equal(p->ops->fetch_status(p, "CA1", &res), PROVIDER_ERR_TRANSIENT);
	provider_free(p);
}

/*
 * Answering-machine detection and the redirect, parameter for parameter, as
 * Twilio documents them (the recording server keeps the exact body).
 */
static void test_amd_and_redirect_exact_format(void **state)
{
	char base[64];
	provider_t *p;
	provider_call_req_t req = call_req("+15550000208");
	provider_call_res_t res;

	(void)state;
	snprintf(base, sizeof(base), "http://127.0.0.1:%d", fx.bad.port);
	p = provider_twilio_new(base, ACCOUNT, TOKEN, NULL);
	fx.bad.mode = MODE_RECORD;
	req.answer_url = "https://calls.example.com/webhooks/twilio/voice";
	req.status_url = "https://calls.example.com/webhooks/twilio/call-status";
	req.amd = true;
	req.amd_url = "https://calls.example.com/webhooks/twilio/amd";
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_OK);
	assert_string_equal(fx.bad.last_target, "/2010-04-01/Accounts/" ACCOUNT "/Calls.json");
	assert_string_equal(
	    fx.bad.last_body,
	    "To=%2B15550000208&From=%2B15550000100"
	    "&Url=https%3A%2F%2Fcalls.example.com%2Fwebhooks%2Ftwilio%2Fvoice&Method=POST"
	    "&StatusCallback=https%3A%2F%2Fcalls.example.com%2Fwebhooks%2Ftwilio%2Fcall-status"
	    "&StatusCallbackMethod=POST&StatusCallbackEvent=initiated"
	    "&StatusCallbackEvent=ringing&StatusCallbackEvent=answered"
	    "&StatusCallbackEvent=completed&Timeout=5&MachineDetection=DetectMessageEnd"
	    "&AsyncAmd=true"
	    "&AsyncAmdStatusCallback=https%3A%2F%2Fcalls.example.com%2Fwebhooks%2Ftwilio%2Famd"
	    "&AsyncAmdStatusCallbackMethod=POST");
	/* without AMD, none of it */
	req.amd = false;
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_OK);
	assert_null(strstr(fx.bad.last_body, "MachineDetection"));
	assert_null(strstr(fx.bad.last_body, "AsyncAmd"));
	/* AMD without its callback is refused before anything is sent */
	req.amd = true;
	req.amd_url = NULL;
	fx.bad.last_body[0] = '\0';
	assert_int_equal(p->ops->place_call(p, &req, &res), PROVIDER_ERR_REJECTED);
	assert_string_equal(fx.bad.last_body, "");
	/* the redirect: the call fetches its TwiML from the new URL now */
	assert_int_equal(p->ops->redirect(p, "CA0123456789abcdef0123456789abcdef",
					  "https://calls.example.com/webhooks/twilio/"
					  "voice?mode=voicemail",
					  &res),
			 PROVIDER_OK);
	assert_string_equal(fx.bad.last_target, "/2010-04-01/Accounts/" ACCOUNT
						"/Calls/CA0123456789abcdef0123456789abcdef.json");
	assert_string_equal(fx.bad.last_body, "Url=https%3A%2F%2Fcalls.example.com%2Fwebhooks%2F"
					      "twilio%2Fvoice%3Fmode%3Dvoicemail&Method=POST");
	assert_int_equal(p->ops->redirect(p, "CA../x", "https://x.example/", &res),
			 PROVIDER_ERR_REJECTED);
	assert_int_equal(p->ops->redirect(p, "CA1", "", &res), PROVIDER_ERR_REJECTED);
	fx.bad.mode = MODE_CLOSE;
	provider_free(p);
}

static void test_constructor_arguments(void **state)
{
	(void)state;
	assert_null(provider_twilio_new(NULL, ACCOUNT, TOKEN, NULL));
	assert_null(provider_twilio_new("ftp://127.0.0.1:1", ACCOUNT, TOKEN, NULL));
	assert_null(provider_twilio_new(fx.base, "AC/../x", TOKEN, NULL));
	assert_null(provider_twilio_new(fx.base, ACCOUNT, "", NULL));
	assert_null(provider_twilio_new(fx.base, ACCOUNT, NULL, NULL));
	provider_free(NULL);
}

/* What the fake Twilio refuses: the checks the other tiers rely on. */
static void test_sandbox_checks_the_format(void **state)
{
	static const char *calls = "/2010-04-01/Accounts/" ACCOUNT "/Calls.json";
	const char *auth = ACCOUNT ":" TOKEN;
	const char *form = "application/x-www-form-urlencoded";
	arena_t *a = arena_new(4096);
	char ok_urls[256];
	raw_resp_t r;
	json_t *j;

	(void)state;
	snprintf(
	    ok_urls, sizeof(ok_urls),
	    "Url=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fvoice&StatusCallback=http%%3A%%2F%%2F127.0."
	    "0.1%%3A%d%%2Fstatus",
	    fx.receiver.port, fx.receiver.port);
	/* no credentials: 401 with a challenge */
	raw(&r, calls, NULL, form, "To=%2B15550000301");
	assert_int_equal(r.status, 401);
	j = json_loads(r.body, 0, NULL);
	assert_int_equal(json_integer_value(json_object_get(j, "code")), 20003);
	json_decref(j);
	/* JSON instead of a form */
	raw(&r, calls, auth, "application/json", "{\"To\":\"+15550000301\"}");
	assert_int_equal(r.status, 400);
	/* missing To, a bad event, a repeated To, a non-loopback URL */
	raw(&r, calls, auth, form, arena_sprintf(a, "From=%%2B15550000100&%s", ok_urls));
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "21201"));
	raw(&r, calls, auth, form,
	    arena_sprintf(a,
			  "To=%%2B15550000301&From=%%2B15550000100&%s&"
			  "StatusCallbackEvent=finished",
			  ok_urls));
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "21626"));
	raw(&r, calls, auth, form,
	    arena_sprintf(a, "To=%%2B15550000301&To=%%2B15550000302&From=%%2B15550000100&%s",
			  ok_urls));
	assert_int_equal(r.status, 400);
	raw(&r, calls, auth, form,
	    "To=%2B15550000301&From=%2B15550000100&Url=https%3A%2F%2Fexample.com%2Fv");
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "21205"));
	/* space-separated events are Twilio's other spelling */
	raw(&r, calls, auth, form,
	    arena_sprintf(a,
			  "To=%%2B15550000303&From=%%2B15550000100&%s&"
			  "StatusCallbackEvent=initiated+completed",
			  ok_urls));
	assert_int_equal(r.status, 201);
	/* unknown paths, methods and calls */
	raw(&r, "/2010-04-01/Accounts/" ACCOUNT "/Recordings.json", auth, NULL, NULL);
	assert_int_equal(r.status, 404);
	raw(&r, "/2010-04-01/Accounts/" ACCOUNT "/Calls/CAnope.json", auth, NULL, NULL);
	assert_int_equal(r.status, 404);
	raw(&r, "/__sandbox/stats", NULL, NULL, NULL);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body, 0, NULL);
	assert_true(json_integer_value(json_object_get(j, "calls_created")) >= 4);
	assert_true(json_integer_value(json_object_get(j, "auth_failures")) >= 1);
	json_decref(j);
	arena_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_place_call_exact_format),
	    cmocka_unit_test(test_fetch_and_signed_callbacks),
	    cmocka_unit_test(test_hangup_is_idempotent),
	    cmocka_unit_test(test_unknown_call),
	    cmocka_unit_test(test_bad_credentials),
	    cmocka_unit_test(test_rejected_and_transient),
	    cmocka_unit_test(test_lost_answer_is_unknown),
	    cmocka_unit_test(test_closed_port_is_transient),
	    cmocka_unit_test(test_misbehaving_server),
	    cmocka_unit_test(test_amd_and_redirect_exact_format),
	    cmocka_unit_test(test_constructor_arguments),
	    cmocka_unit_test(test_sandbox_checks_the_format),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
