/*
 * fake_graph.c - a fake WhatsApp Cloud API (Graph) for the tests and the e2e
 * stack: plain HTTP/1.1 on 127.0.0.1 (the sandbox's bounded server,
 * src/sandbox/httpd.c), strict about what the real service documents:
 *
 *   POST /vNN.N/{phone_number_id}/messages
 *     Authorization: Bearer <token>        (--token: that one; else any)
 *     Content-Type: application/json
 *     {"messaging_product":"whatsapp","recipient_type":"individual",
 *      "to":"<digits>","type":T, T:{...}}   (exactly one message object,
 *                                           WhatsApp's size limits)
 *   -> 200 {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
 *           "messages":[{"id":"wamid...."}]}
 *   -> 400/401 {"error":{"message","type","code","error_data":{...},"fbtrace_id"}}
 *
 * Test controls (no auth, loopback only):
 *   POST /__fake/script {"status":500|429|400|..., "count":N, "to"?:wa_id,
 *                        "code"?:n, "message"?:s, "stall"?:bool}
 *        the next N message requests (to that recipient, when given) get
 *        that answer instead (stall: never answered, a client time-out);
 *   GET  /__fake/messages[?to=wa_id]   every request received, in order:
 *        {"items":[{seq, version, phone_number_id, to, type, token, status,
 *                   wamid, body}]}
 *   POST /__fake/reset                 forget requests and scripts.
 *
 * Usage: fake_graph [--port N] [--token T] [--record FILE]
 * (port 0: any free port). The first stdout line is
 * "fake_graph listening on 127.0.0.1:PORT". --record appends each request
 * as a JSON line. SIGTERM/SIGINT stop it.
 */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dialflow/arena.h"
#include "dialflow/log.h"
#include "dialflow/sandbox.h"
#include "dialflow/strnum.h"

#define MAX_SCRIPTS 32
#define MAX_LOG	    100000
#define MAX_POLLFDS (SANDBOX_MAX_CONNS + 1)

typedef struct script {
	int status;
	int count;
	long long code;
	bool stall;
	char to[32];
	char message[160];
} script_t;

typedef struct fake {
	const char *token; /* NULL: any non-empty bearer token */
	FILE *record;
	json_t *log; /* array of request records */
	script_t scripts[MAX_SCRIPTS];
	int nscripts;
	unsigned long seq;
} fake_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static bool digits(const char *s, size_t min, size_t max)
{
	size_t n = s ? strspn(s, "0123456789") : 0;

	return n >= min && n <= max && s[n] == '\0';
}

static void reply_json(arena_t *a, sandbox_resp_t *resp, int status, json_t *body)
{
	char *s = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	resp->status = status;
	resp->content_type = "application/json";
	resp->body = s ? arena_strdup(a, s) : "{}";
	resp->body_len = strlen(resp->body);
	free(s);
}

/* Meta's error shape. */
static void reply_error(fake_t *f, arena_t *a, sandbox_resp_t *resp, int status, long long code,
			const char *type, const char *message, const char *details)
{
	char trace[32];

	snprintf(trace, sizeof(trace), "Afake%lu", f->seq);
	reply_json(a, resp, status,
		   json_pack("{s:{s:s,s:s,s:I,s:{s:s,s:s},s:s}}", "error", "message", message,
			     "type", type, "code", (json_int_t)code, "error_data",
			     "messaging_product", "whatsapp", "details",
			     details ? details : message, "fbtrace_id", trace));
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static bool str_len_ok(const json_t *o, const char *k, size_t min, size_t max)
{
	const char *s = jstr(o, k);
	size_t n = s ? strlen(s) : 0;

	return s != NULL && n >= min && n <= max;
}

/* Check the message object of `type`; NULL when acceptable, else why. */
static const char *check_message(const json_t *m, const char *type)
{
	static const char *const types[] = {"text",	"image",       "audio",	   "video",
					    "document", "sticker",     "location", "contacts",
					    "template", "interactive", "reaction"};
	const json_t *obj = json_object_get(m, type);
	const char *key;
	json_t *v;
	bool known = false;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		known = known || strcmp(types[i], type) == 0;
	if (!known)
		return "unknown message type";
	if (!json_is_object(obj))
		return "the object named by type is missing";
	json_object_foreach((json_t *)m, key, v)
	{
		bool envelope = strcmp(key, "messaging_product") == 0 ||
				strcmp(key, "recipient_type") == 0 || strcmp(key, "to") == 0 ||
				strcmp(key, "type") == 0 || strcmp(key, "context") == 0 ||
				strcmp(key, "biz_opaque_callback_data") == 0;

		if (!envelope && strcmp(key, type) != 0)
			return "unexpected key next to the message object";
	}
	if (strcmp(type, "text") == 0) {
		const json_t *pu = json_object_get(obj, "preview_url");

		if (!str_len_ok(obj, "body", 1, 4096))
			return "text.body must be 1 to 4096 characters";
		if (pu != NULL && !json_is_boolean(pu))
			return "text.preview_url must be a boolean";
	} else if (strcmp(type, "image") == 0 || strcmp(type, "audio") == 0 ||
		   strcmp(type, "video") == 0 || strcmp(type, "document") == 0 ||
		   strcmp(type, "sticker") == 0) {
		bool id = json_is_string(json_object_get(obj, "id"));
		bool link = json_is_string(json_object_get(obj, "link"));

		if (id == link)
			return "a media object needs exactly one of id and link";
		if (json_object_get(obj, "caption") != NULL && !str_len_ok(obj, "caption", 0, 1024))
			return "caption must be at most 1024 characters";
	} else if (strcmp(type, "interactive") == 0) {
		const char *it = jstr(obj, "type");
		const json_t *action = json_object_get(obj, "action");

		if (it == NULL || !json_is_object(action))
			return "interactive needs type and action";
		if (!str_len_ok(json_object_get(obj, "body"), "text", 1, 1024))
			return "interactive.body.text must be 1 to 1024 characters";
		if (strcmp(it, "button") == 0) {
			const json_t *b = json_object_get(action, "buttons"), *x;
			size_t i;

			if (!json_is_array(b) || json_array_size(b) < 1 || json_array_size(b) > 3)
				return "1 to 3 reply buttons";
			json_array_foreach(b, i, x)
			{
				const json_t *r = json_object_get(x, "reply");

				if (!str_len_ok(x, "type", 5, 5) ||
				    strcmp(jstr(x, "type"), "reply") ||
				    !str_len_ok(r, "id", 1, 256) || !str_len_ok(r, "title", 1, 20))
					return "a button is {type:reply, reply:{id, title<=20}}";
			}
		} else if (strcmp(it, "list") == 0) {
			const json_t *s = json_object_get(action, "sections"), *x;
			size_t i;

			if (!str_len_ok(action, "button", 1, 20) || !json_is_array(s) ||
			    json_array_size(s) < 1 || json_array_size(s) > 10)
				return "a list needs action.button and 1 to 10 sections";
			json_array_foreach(s, i, x)
			{
				const json_t *rows = json_object_get(x, "rows"), *row;
				size_t j;

				if (!json_is_array(rows) || json_array_size(rows) < 1 ||
				    json_array_size(rows) > 10)
					return "a section has 1 to 10 rows";
				json_array_foreach(rows, j, row)
				{
					if (!str_len_ok(row, "id", 1, 200) ||
					    !str_len_ok(row, "title", 1, 24) ||
					    (json_object_get(row, "description") &&
					     !str_len_ok(row, "description", 0, 72)))
						return "a row is {id, title<=24, description<=72}";
				}
			}
		} else if (strcmp(it, "flow") == 0) {
			if (!str_len_ok(action, "name", 4, 4) ||
			    strcmp(jstr(action, "name"), "flow") ||
			    !json_is_object(json_object_get(action, "parameters")))
				return "a flow message needs action {name:flow, parameters}";
		}
	} else if (strcmp(type, "location") == 0) {
		if (!json_is_number(json_object_get(obj, "latitude")) ||
		    !json_is_number(json_object_get(obj, "longitude")))
			return "location needs latitude and longitude";
	}
	return NULL;
}

/* "/v21.0/123/messages" -> version, phone number id; false when it is not that. */
static bool parse_path(arena_t *a, const char *path, char **version, char **pnid)
{
	const char *p = path, *v, *id;
	size_t n;

	if (strncmp(p, "/v", 2) != 0)
		return false;
	v = p + 1;
	p += 2;
	n = strspn(p, "0123456789");
	if (n == 0 || n > 3 || p[n] != '.')
		return false;
	p += n + 1;
	n = strspn(p, "0123456789");
	if (n == 0 || n > 3 || p[n] != '/')
		return false;
	*version = arena_strndup(a, v, (size_t)(p + n - v));
	id = p + n + 1;
	n = strspn(id, "0123456789");
	if (n == 0 || n > 32 || strcmp(id + n, "/messages") != 0)
		return false;
	*pnid = arena_strndup(a, id, n);
	return true;
}

static void record(fake_t *f, json_t *rec)
{
	if (json_array_size(f->log) < MAX_LOG)
		json_array_append(f->log, rec);
	if (f->record != NULL) {
		char *s = json_dumps(rec, JSON_COMPACT);

		if (s != NULL) {
			fprintf(f->record, "%s\n", s);
			fflush(f->record);
		}
		free(s);
	}
	json_decref(rec);
}

static script_t *script_for(fake_t *f, const char *to)
{
	for (int i = 0; i < f->nscripts; i++) {
		script_t *s = &f->scripts[i];

		if (s->count > 0 && (s->to[0] == '\0' || (to != NULL && strcmp(s->to, to) == 0)))
			return s;
	}
	return NULL;
}

static void handle_send(fake_t *f, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	char *version = NULL, *pnid = NULL, wamid[96];
	const char *auth = req->authorization, *token = NULL, *why = NULL, *to = NULL, *type = NULL;
	json_t *body = NULL, *rec;
	script_t *s;
	int status = 200;

	f->seq++;
	if (!parse_path(a, req->path, &version, &pnid)) {
		reply_error(f, a, resp, 400, 100, "GraphMethodException",
			    "Unsupported post request",
			    "path is not /vNN.N/{phone-number-id}/messages");
		return;
	}
	if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0 && auth[7] != '\0')
		token = auth + 7;
	if (token == NULL || (f->token != NULL && strcmp(token, f->token) != 0)) {
		reply_error(f, a, resp, 401, 190, "OAuthException",
			    "Invalid OAuth access token - Cannot parse access token", NULL);
		status = 401;
	} else if (req->content_type == NULL ||
		   strncmp(req->content_type, "application/json", 16) != 0) {
		reply_error(f, a, resp, 400, 100, "OAuthException", "(#100) Invalid parameter",
			    "Content-Type must be application/json");
		status = 400;
	} else {
		body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, NULL);
		to = jstr(body, "to");
		type = jstr(body, "type");
		if (!json_is_object(body))
			why = "the body is not a JSON object";
		else if (jstr(body, "messaging_product") == NULL ||
			 strcmp(jstr(body, "messaging_product"), "whatsapp") != 0)
			why = "messaging_product must be whatsapp";
		else if (jstr(body, "recipient_type") == NULL ||
			 strcmp(jstr(body, "recipient_type"), "individual") != 0)
			why = "recipient_type must be individual";
		else if (!digits(to, 5, 20))
			why = "to must be a wa_id (digits, no +)";
		else if (type == NULL)
			why = "type is required";
		else
			why = check_message(body, type);
		if (why != NULL) {
			reply_error(f, a, resp, 400, 100, "OAuthException",
				    "(#100) Invalid parameter", why);
			status = 400;
		}
	}
	wamid[0] = '\0';
	if (status == 200 && (s = script_for(f, to)) != NULL) {
		s->count--;
		status = s->status;
		if (s->stall) {
			resp->stall = true;
		} else if (status >= 200 && status < 300) {
			status = 200; /* a scripted success: still answer like Meta */
		} else {
			long long code = s->code	 ? s->code
					 : status == 429 ? 130429
					 : status >= 500 ? 131000
							 : 131009;

			reply_error(f, a, resp, status, code, "OAuthException",
				    s->message[0]   ? s->message
				    : status == 429 ? "(#130429) Rate limit hit"
				    : status >= 500 ? "(#131000) Something went wrong"
						    : "(#131009) Parameter value is not valid",
				    NULL);
		}
	}
	if (status == 200 && !resp->stall) {
		snprintf(wamid, sizeof(wamid), "wamid.FAKE%ldx%lu", (long)getpid(), f->seq);
		reply_json(a, resp, 200,
			   json_pack("{s:s,s:[{s:s,s:s}],s:[{s:s}]}", "messaging_product",
				     "whatsapp", "contacts", "input", to, "wa_id", to, "messages",
				     "id", wamid));
	}
	rec = json_pack("{s:I,s:s?,s:s?,s:s?,s:s?,s:s?,s:i,s:s?,s:b,s:O?}", "seq",
			(json_int_t)f->seq, "version", version, "phone_number_id", pnid, "to", to,
			"type", type, "token", token, "status", status, "wamid",
			wamid[0] ? wamid : NULL, "stalled", resp->stall ? 1 : 0, "body", body);
	if (rec != NULL)
		record(f, rec);
	json_decref(body);
}

static void handle_script(fake_t *f, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	json_t *b = json_loadb(req->body, req->body_len, 0, NULL);
	const json_t *st = json_object_get(b, "status"), *cnt = json_object_get(b, "count");
	script_t *s;

	if (!json_is_integer(st) || (cnt != NULL && !json_is_integer(cnt)) ||
	    f->nscripts == MAX_SCRIPTS) {
		json_decref(b);
		reply_json(a, resp, 400,
			   json_pack("{s:s}", "error", "{status, count?, to?, code?}"));
		return;
	}
	s = &f->scripts[f->nscripts++];
	memset(s, 0, sizeof(*s));
	s->status = (int)json_integer_value(st);
	s->count = cnt ? (int)json_integer_value(cnt) : 1;
	s->stall = json_is_true(json_object_get(b, "stall"));
	if (json_is_integer(json_object_get(b, "code")))
		s->code = json_integer_value(json_object_get(b, "code"));
	snprintf(s->to, sizeof(s->to), "%s", jstr(b, "to") ? jstr(b, "to") : "");
	snprintf(s->message, sizeof(s->message), "%s",
		 jstr(b, "message") ? jstr(b, "message") : "");
	json_decref(b);
	reply_json(a, resp, 200, json_pack("{s:i}", "scripts", f->nscripts));
}

static void handle_list(fake_t *f, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	const char *q = req->query, *to = NULL;
	json_t *items = json_array(), *r;
	size_t i;

	if (q != NULL && strncmp(q, "to=", 3) == 0)
		to = arena_strndup(a, q + 3, strcspn(q + 3, "&"));
	json_array_foreach(f->log, i, r)
	{
		const char *rt = jstr(r, "to");

		if (to == NULL || (rt != NULL && strcmp(rt, to) == 0))
			json_array_append(items, r);
	}
	reply_json(a, resp, 200, json_pack("{s:o}", "items", items));
}

static void handle(void *app, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	fake_t *f = app;

	if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/__fake/script") == 0) {
		handle_script(f, a, req, resp);
	} else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/__fake/messages") == 0) {
		handle_list(f, a, req, resp);
	} else if (strcmp(req->method, "POST") == 0 && strcmp(req->path, "/__fake/reset") == 0) {
		json_array_clear(f->log);
		f->nscripts = 0;
		reply_json(a, resp, 200, json_pack("{s:b}", "reset", 1));
	} else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/__fake/health") == 0) {
		reply_json(a, resp, 200, json_pack("{s:s}", "status", "ok"));
	} else if (strcmp(req->method, "POST") == 0) {
		handle_send(f, a, req, resp);
	} else {
		reply_error(f, a, resp, 400, 100, "GraphMethodException", "Unsupported get request",
			    NULL);
	}
}

int main(int argc, char **argv)
{
	struct pollfd pfds[MAX_POLLFDS];
	sandbox_httpd_t *h;
	struct sigaction sa;
	fake_t f;
	int64_t port = 0;
	int bound = 0;

	memset(&f, 0, sizeof(f));
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--port") == 0 && strnum_i64(argv[i + 1], 0, 65535, &port) == 0)
			continue;
		if (strcmp(argv[i], "--token") == 0) {
			f.token = argv[i + 1];
			continue;
		}
		if (strcmp(argv[i], "--record") == 0) {
			f.record = fopen(argv[i + 1], "a");
			if (f.record != NULL)
				continue;
		}
		fprintf(stderr, "usage: %s [--port N] [--token T] [--record FILE]\n", argv[0]);
		return 2;
	}
	if (getenv("DIALFLOW_LOG_LEVEL") != NULL)
		(void)log_set_level(getenv("DIALFLOW_LOG_LEVEL"));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	f.log = json_array();
	h = sandbox_httpd_new((int)port, handle, &f, &bound);
	if (h == NULL || f.log == NULL)
		return 1;
	printf("fake_graph listening on 127.0.0.1:%d\n", bound);
	fflush(stdout);
	while (!stopping) {
		size_t n = sandbox_httpd_pollfds(h, pfds, MAX_POLLFDS);

		if (poll(pfds, n, 500) < 0)
			continue;
		sandbox_httpd_events(h, pfds, n);
	}
	sandbox_httpd_free(h);
	json_decref(f.log);
	if (f.record != NULL)
		fclose(f.record);
	return 0;
}
