/*
 * carrier.c - the simulated carrier behind dialflow-sandbox (see sandbox.h):
 * the Calls resource of Twilio's REST API, the calls' progress on timers,
 * and their signed callbacks, all in one poll() loop (curl_multi_wait with
 * the HTTP server's descriptors as extra descriptors).
 *
 * A call's callbacks leave one at a time and in order (its queue), retried
 * with backoff on a network error, a 5xx or a 429, never on another 4xx.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "dialflow/form.h"
#include "dialflow/http.h"
#include "dialflow/log.h"
#include "dialflow/provider.h"
#include "dialflow/sandbox.h"
#include "dialflow/strnum.h"

#define API_VERSION	"2010-04-01"
#define API_PREFIX	"/" API_VERSION "/Accounts/"
#define JSON_CTYPE	"application/json; charset=utf-8"
#define QUEUED_MS	50    /* queued -> initiated (dialling)             */
#define CB_CONNECT_MS	3000L /* callbacks: connect and total time-outs      */
#define CB_TOTAL_MS	10000L
#define CB_MAX_INFLIGHT 32
#define CB_BACKOFF_MS	500
#define TWIML_MAX	8192
#define URL_MAX		2048
#define LOOP_MAX_MS	1000
#define MAX_WAITFDS	(SANDBOX_MAX_CONNS + 1)

enum call_status {
	CS_QUEUED,
	CS_RINGING,
	CS_IN_PROGRESS,
	CS_COMPLETED,
	CS_BUSY,
	CS_NOANSWER,
	CS_FAILED,
	CS_CANCELED,
};
static const char *const status_names[] = {"queued", "ringing",	  "in-progress", "completed",
					   "busy",   "no-answer", "failed",	 "canceled"};
static const char *const outcome_names[] = {"answer", "busy", "no-answer", "fail"};

/* StatusCallbackEvent values Twilio knows. */
enum { EV_INITIATED = 1, EV_RINGING = 2, EV_ANSWERED = 4, EV_COMPLETED = 8 };
static const struct {
	const char *name;
	unsigned bit;
} event_names[] = {
    {"initiated", EV_INITIATED},
    {"ringing", EV_RINGING},
    {"answered", EV_ANSWERED},
    {"completed", EV_COMPLETED},
};

struct call;

/* One request to the application: a status callback, or the fetch of the TwiML Url. */
typedef struct cb {
	struct cb *next;
	struct call *call;
	bool twiml;
	char *body; /* form-encoded, malloc'd */
	char sig[32];
	int attempts;
	unsigned serial; /* for the idempotency token */
	int64_t due_ms;
	CURL *easy; /* while in flight */
	struct curl_slist *headers;
	char *answer; /* TwiML fetch only */
	size_t answer_len;
} cb_t;

typedef struct call {
	char sid[35];
	char to[24];
	char from[24];
	char *url;
	char *status_cb; /* NULL: no callbacks */
	unsigned events;
	int timeout_s;
	sandbox_outcome_t outcome;
	enum call_status status;
	int talk_ms;
	int duration; /* -1 until it ended */
	int64_t created_wall, answered_wall, ended_wall;
	int64_t answered_ms; /* monotonic */
	int64_t next_ms;     /* monotonic time of the next step, 0: none */
	bool hangup_requested;
	bool dialed; /* left the queue ("initiated") */
	int seq;     /* SequenceNumber of the next status callback */
	cb_t *queue, *queue_tail;
	cb_t *inflight;
	json_t *params; /* the create request's parameters, [[name, value], ...] */
	int twiml_status;
	char *twiml;
	int callbacks_ok, callbacks_failed;
	bool live; /* in the live list: not finished, or callbacks pending */
} call_t;

typedef struct stats {
	long requests, created, rejected, auth_failures, not_found, hangups;
	long finished[8];
	long callbacks_sent, callbacks_ok, callbacks_failed, callback_retries, twiml_fetches;
	long active, max_active;
} stats_t;

typedef struct carrier {
	const sandbox_config_t *cfg;
	uint64_t rng;
	call_t **calls; /* every kept call, oldest first */
	size_t ncalls;
	call_t **live; /* calls with work left */
	size_t nlive;
	CURLM *multi;
	CURL *escaper; /* only for curl_easy_escape() */
	int inflight;
	unsigned serial;
	char auth[512]; /* the expected Authorization credentials (base64) */
	stats_t st;
} carrier_t;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* splitmix64: the odds and durations, reproducible from DIALFLOW_SANDBOX_SEED. */
static uint64_t rng_next(carrier_t *cr)
{
	uint64_t z = (cr->rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* RFC 2822, as Twilio writes dates ("Tue, 31 Aug 2010 20:36:28 +0000"). */
static const char *rfc2822(char *buf, size_t bufsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, bufsz, "%a, %d %b %Y %H:%M:%S +0000", &tm);
	return buf;
}

static const char *rfc3339(char *buf, size_t bufsz, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, bufsz, "%s.%03dZ", s, (int)(ms % 1000));
	return buf;
}

static bool e164_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n >= 8 && n <= 16 && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
	       strspn(s + 1, "0123456789") == n - 1;
}

/* An absolute http(s) URL on a loopback host: the sandbox never calls out. */
static bool loopback_url(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	struct in_addr ip;
	bool ok = false;

	if (u == NULL || strlen(url) > URL_MAX || curl_url_set(u, CURLUPART_URL, url, 0) != 0 ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != 0 ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != 0)
		goto out;
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		goto out;
	ok = strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	     (inet_pton(AF_INET, host, &ip) == 1 && (ntohl(ip.s_addr) >> 24) == 127);
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return ok;
}

/* --- answers -------------------------------------------------------------- */

/* Answer with a JSON body (stolen). Returns 0, for `return reply_json(...)`. */
static int reply_json(arena_t *a, sandbox_resp_t *resp, int status, json_t *body)
{
	char *text = json_dumps(body, JSON_COMPACT);

	json_decref(body);
	resp->status = status;
	resp->content_type = JSON_CTYPE;
	if (text == NULL) {
		resp->status = 500;
		resp->body = "{}";
		resp->body_len = 2;
		return 0;
	}
	resp->body = arena_strdup(a, text);
	resp->body_len = strlen(text);
	free(text);
	return 0;
}

/* Twilio's error shape. Returns 0. */
static int reply_error(carrier_t *cr, arena_t *a, sandbox_resp_t *resp, int status, int code,
		       const char *message)
{
	char info[80];

	if (status == 401)
		cr->st.auth_failures++;
	else if (status == 404)
		cr->st.not_found++;
	else if (status < 500)
		cr->st.rejected++;
	snprintf(info, sizeof(info), "https://www.twilio.com/docs/errors/%d", code);
	reply_json(a, resp, status,
		   json_pack("{s:i,s:s,s:s,s:i}", "code", code, "message", message, "more_info",
			     info, "status", status));
	if (status == 401)
		resp->extra_header = "WWW-Authenticate: Basic realm=\"Twilio API\"";
	return 0;
}

static json_t *jstr_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* The Call resource, as Twilio answers it. */
static json_t *call_resource(const carrier_t *cr, const call_t *c)
{
	char created[40], updated[40], start[40], end[40], dur[16], uri[160];
	json_t *o = json_object();
	int64_t upd =
	    c->ended_wall ? c->ended_wall : (c->answered_wall ? c->answered_wall : c->created_wall);

	snprintf(uri, sizeof(uri), API_PREFIX "%s/Calls/%s.json", cr->cfg->account_sid, c->sid);
	snprintf(dur, sizeof(dur), "%d", c->duration);
	json_object_set_new(o, "sid", json_string(c->sid));
	json_object_set_new(o, "account_sid", json_string(cr->cfg->account_sid));
	json_object_set_new(o, "api_version", json_string(API_VERSION));
	json_object_set_new(o, "annotation", json_null());
	json_object_set_new(o, "answered_by", json_null());
	json_object_set_new(o, "caller_name", json_null());
	json_object_set_new(o, "date_created",
			    json_string(rfc2822(created, sizeof(created), c->created_wall)));
	json_object_set_new(o, "date_updated", json_string(rfc2822(updated, sizeof(updated), upd)));
	json_object_set_new(o, "direction", json_string("outbound-api"));
	json_object_set_new(o, "duration", c->duration >= 0 ? json_string(dur) : json_null());
	json_object_set_new(o, "start_time",
			    jstr_or_null(c->answered_wall
					     ? rfc2822(start, sizeof(start), c->answered_wall)
					     : NULL));
	json_object_set_new(
	    o, "end_time",
	    jstr_or_null(c->ended_wall ? rfc2822(end, sizeof(end), c->ended_wall) : NULL));
	json_object_set_new(o, "forwarded_from", json_null());
	json_object_set_new(o, "from", json_string(c->from));
	json_object_set_new(o, "from_formatted", json_string(c->from));
	json_object_set_new(o, "to", json_string(c->to));
	json_object_set_new(o, "to_formatted", json_string(c->to));
	json_object_set_new(o, "group_sid", json_null());
	json_object_set_new(o, "parent_call_sid", json_null());
	json_object_set_new(o, "phone_number_sid", json_null());
	json_object_set_new(o, "price", json_null());
	json_object_set_new(o, "price_unit", json_string("USD"));
	json_object_set_new(o, "queue_time", json_string("0"));
	json_object_set_new(o, "status", json_string(status_names[c->status]));
	json_object_set_new(o, "trunk_sid", json_null());
	json_object_set_new(o, "uri", json_string(uri));
	return o;
}

/* --- calls ---------------------------------------------------------------- */

static bool call_is_live(const call_t *c)
{
	return c->status <= CS_IN_PROGRESS;
}

static void live_add(carrier_t *cr, call_t *c)
{
	if (c->live)
		return;
	cr->live = realloc(cr->live, (cr->nlive + 1) * sizeof(*cr->live));
	if (cr->live == NULL) {
		log_error("sandbox", "out of memory");
		abort();
	}
	cr->live[cr->nlive++] = c;
	c->live = true;
}

/* Drop c from the live list once it has nothing left to do. */
static void live_settle(carrier_t *cr, call_t *c)
{
	if (!c->live || call_is_live(c) || c->queue != NULL || c->inflight != NULL)
		return;
	for (size_t i = 0; i < cr->nlive; i++) {
		if (cr->live[i] == c) {
			cr->live[i] = cr->live[--cr->nlive];
			break;
		}
	}
	c->live = false;
}

static void cb_free(cb_t *b)
{
	if (b == NULL)
		return;
	free(b->body);
	free(b->answer);
	curl_slist_free_all(b->headers);
	free(b);
}

static void call_free(call_t *c)
{
	cb_t *b = c->queue;

	while (b != NULL) {
		cb_t *n = b->next;

		cb_free(b);
		b = n;
	}
	free(c->url);
	free(c->status_cb);
	free(c->twiml);
	json_decref(c->params);
	free(c);
}

/* Append one form parameter to a malloc'd body. Returns 0 or -1. */
static int body_add(carrier_t *cr, char **body, size_t *len, const char *name, const char *value)
{
	char *ev = curl_easy_escape(cr->escaper, value, 0);
	size_t need;
	char *p;

	if (ev == NULL)
		return -1;
	need = *len + strlen(name) + strlen(ev) + 3;
	p = realloc(*body, need);
	if (p == NULL) {
		curl_free(ev);
		return -1;
	}
	*len += (size_t)sprintf(p + *len, "%s%s=%s", *len ? "&" : "", name, ev);
	*body = p;
	curl_free(ev);
	return 0;
}

/*
 * Queue a request to the application for c: a status callback (CallStatus
 * `status`, the call's own when NULL, plus CallDuration / SipResponseCode
 * once it ended), or the TwiML fetch. The parameters, their SequenceNumber
 * and the signature are fixed now, so a retry sends the same request.
 */
static void enqueue(carrier_t *cr, call_t *c, bool twiml, const char *status, int sip)
{
	const char *url = twiml ? c->url : c->status_cb;
	const char *names[16], *values[16];
	char seq[16], ts[40], dur[16], sipbuf[16];
	size_t n = 0, len = 0;
	cb_t *b;

	if (url == NULL)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		goto oom;
#define P(k, v)                                                                                    \
	do {                                                                                       \
		names[n] = (k);                                                                    \
		values[n] = (v);                                                                   \
		n++;                                                                               \
	} while (0)
	P("AccountSid", cr->cfg->account_sid);
	P("ApiVersion", API_VERSION);
	P("CallSid", c->sid);
	P("CallStatus", status != NULL ? status : status_names[c->status]);
	P("Called", c->to);
	P("Caller", c->from);
	P("Direction", "outbound-api");
	P("From", c->from);
	P("To", c->to);
	if (!twiml) {
		snprintf(seq, sizeof(seq), "%d", c->seq++);
		P("CallbackSource", "call-progress-events");
		P("SequenceNumber", seq);
		P("Timestamp", rfc2822(ts, sizeof(ts), wall_ms()));
		if (!call_is_live(c)) {
			snprintf(dur, sizeof(dur), "%d", c->duration < 0 ? 0 : c->duration);
			P("CallDuration", dur);
			if (sip > 0) {
				snprintf(sipbuf, sizeof(sipbuf), "%d", sip);
				P("SipResponseCode", sipbuf);
			}
		}
	}
#undef P
	for (size_t i = 0; i < n; i++)
		if (body_add(cr, &b->body, &len, names[i], values[i]) < 0)
			goto oom;
	if (twilio_signature(cr->cfg->auth_token, url, names, values, n, b->sig, sizeof(b->sig)) <
	    0)
		goto oom;
	b->call = c;
	b->twiml = twiml;
	b->serial = ++cr->serial;
	b->due_ms = mono_ms();
	if (c->queue_tail != NULL)
		c->queue_tail->next = b;
	else
		c->queue = b;
	c->queue_tail = b;
	live_add(cr, c);
	return;
oom:
	log_error("sandbox", "out of memory queueing a callback");
	abort();
}

/* End a live call with final status st. */
static void finish(carrier_t *cr, call_t *c, enum call_status st, int sip)
{
	int64_t now = mono_ms();
	char masked[40];

	if (!call_is_live(c))
		return;
	c->duration = 0;
	if (c->status == CS_IN_PROGRESS)
		c->duration = (int)((now - c->answered_ms + 999) / 1000);
	c->status = st;
	c->next_ms = 0;
	c->ended_wall = wall_ms();
	cr->st.active--;
	cr->st.finished[st]++;
	log_info("sandbox", "call sid=%s to=%s ended status=%s duration=%d%s", c->sid,
		 log_mask_phone(c->to, masked, sizeof(masked)), status_names[st], c->duration,
		 c->hangup_requested ? " (hung up by the client)" : "");
	/* Twilio always posts the final status to a StatusCallback. */
	enqueue(cr, c, false, NULL, sip);
}

/* One timed step of a call's progress. */
static void advance(carrier_t *cr, call_t *c, int64_t now)
{
	const sandbox_config_t *cfg = cr->cfg;

	switch (c->status) {
	case CS_QUEUED:
		if (!c->dialed) {
			/* out of the queue: "initiated", as Twilio reports it */
			c->dialed = true;
			if (c->events & EV_INITIATED)
				enqueue(cr, c, false, "initiated", 0);
			if (c->outcome == SANDBOX_FAIL) {
				/* it never rings, but the network takes a moment to say so */
				c->next_ms = now + cfg->ring_ms / 2;
				return;
			}
		} else if (c->outcome == SANDBOX_FAIL) {
			finish(cr, c, CS_FAILED, 503);
			return;
		}
		c->status = CS_RINGING;
		if (c->events & EV_RINGING)
			enqueue(cr, c, false, NULL, 0);
		if (c->outcome == SANDBOX_NOANSWER) {
			int64_t ring = (int64_t)cfg->ring_ms * 2;

			if (c->timeout_s > 0 && (int64_t)c->timeout_s * 1000 < ring)
				ring = (int64_t)c->timeout_s * 1000;
			c->next_ms = now + ring;
		} else {
			c->next_ms = now + cfg->ring_ms;
		}
		return;
	case CS_RINGING:
		if (c->outcome == SANDBOX_BUSY) {
			finish(cr, c, CS_BUSY, 486);
			return;
		}
		if (c->outcome == SANDBOX_NOANSWER) {
			finish(cr, c, CS_NOANSWER, 487);
			return;
		}
		c->status = CS_IN_PROGRESS;
		c->answered_ms = now;
		c->answered_wall = wall_ms();
		if (c->events & EV_ANSWERED)
			enqueue(cr, c, false, NULL, 0);
		enqueue(cr, c, true, NULL, 0);
		c->next_ms = now + c->talk_ms;
		return;
	case CS_IN_PROGRESS:
		finish(cr, c, CS_COMPLETED, 0);
		return;
	default:
		c->next_ms = 0;
		return;
	}
}

static call_t *find_call(const carrier_t *cr, const char *sid)
{
	for (size_t i = cr->ncalls; i-- > 0;)
		if (strcmp(cr->calls[i]->sid, sid) == 0)
			return cr->calls[i];
	return NULL;
}

/* Room for one more call: forget the oldest settled one when full. */
static bool make_room(carrier_t *cr)
{
	if (cr->ncalls < (size_t)cr->cfg->max_calls)
		return true;
	for (size_t i = 0; i < cr->ncalls; i++) {
		if (!cr->calls[i]->live) {
			call_free(cr->calls[i]);
			memmove(cr->calls + i, cr->calls + i + 1,
				(cr->ncalls - i - 1) * sizeof(*cr->calls));
			cr->ncalls--;
			return true;
		}
	}
	return false;
}

static void new_sid(carrier_t *cr, char *out)
{
	unsigned char raw[16];
	static const char hex[] = "0123456789abcdef";

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		for (size_t i = 0; i < sizeof(raw); i++)
			raw[i] = (unsigned char)rng_next(cr);
	out[0] = 'C';
	out[1] = 'A';
	for (size_t i = 0; i < sizeof(raw); i++) {
		out[2 + 2 * i] = hex[raw[i] >> 4];
		out[3 + 2 * i] = hex[raw[i] & 15];
	}
	out[34] = '\0';
}

/* --- the REST API --------------------------------------------------------- */

static bool auth_ok(const carrier_t *cr, const char *hdr)
{
	size_t want = strlen(cr->auth);

	if (hdr == NULL || strncasecmp(hdr, "Basic ", 6) != 0)
		return false;
	hdr += 6;
	while (*hdr == ' ')
		hdr++;
	return strlen(hdr) == want && CRYPTO_memcmp(hdr, cr->auth, want) == 0;
}

/* Parameters that may appear at most once. */
static const char *const single_params[] = {
    "To",      "From",	 "Url",		"Method", "StatusCallback", "StatusCallbackMethod",
    "Timeout", "Status", "FallbackUrl", "Twiml"};

static int api_create(carrier_t *cr, arena_t *a, const form_t *f, sandbox_resp_t *resp)
{
	const char *to = form_get(f, "To"), *from = form_get(f, "From");
	const char *url = form_get(f, "Url"), *method = form_get(f, "Method");
	const char *scb = form_get(f, "StatusCallback");
	const char *scm = form_get(f, "StatusCallbackMethod");
	const char *timeout = form_get(f, "Timeout");
	unsigned events = 0;
	int64_t tmo = 0;
	char masked[40];
	call_t *c;

	if (to == NULL || to[0] == '\0')
		return reply_error(cr, a, resp, 400, 21201, "No 'To' number is specified");
	if (!e164_ok(to) || strcmp(to, "+15005550001") == 0)
		return reply_error(cr, a, resp, 400, 21211, "Invalid 'To' Phone Number");
	if (from == NULL || from[0] == '\0')
		return reply_error(cr, a, resp, 400, 21213, "No 'From' number is specified");
	if (!e164_ok(from) || strcmp(from, "+15005550001") == 0)
		return reply_error(cr, a, resp, 400, 21212, "Invalid 'From' Phone Number");
	if (url == NULL || url[0] == '\0')
		return reply_error(cr, a, resp, 400, 21205, "Url parameter is required");
	if (!loopback_url(url))
		return reply_error(cr, a, resp, 400, 21205,
				   "Invalid Url (the sandbox calls loopback URLs only)");
	if (method != NULL && strcasecmp(method, "POST") != 0)
		return reply_error(cr, a, resp, 400, 21204,
				   "Invalid Method (the sandbox fetches TwiML with POST only)");
	if (scb != NULL && !loopback_url(scb))
		return reply_error(cr, a, resp, 400, 21609,
				   "Invalid StatusCallback (the sandbox calls loopback URLs only)");
	if (scm != NULL && strcasecmp(scm, "POST") != 0)
		return reply_error(
		    cr, a, resp, 400, 21609,
		    "Invalid StatusCallbackMethod (the sandbox posts callbacks only)");
	for (size_t i = 0; i < f->n; i++) {
		char *copy, *tok, *save = NULL;

		if (strcmp(f->params[i].name, "StatusCallbackEvent") != 0)
			continue;
		/* Twilio takes repeated values, or several in one separated by spaces. */
		copy = arena_strdup(a, f->params[i].value);
		tok = strtok_r(copy, " ", &save);
		if (tok == NULL)
			return reply_error(cr, a, resp, 400, 21626, "Invalid StatusCallbackEvent");
		for (; tok != NULL; tok = strtok_r(NULL, " ", &save)) {
			size_t k;

			for (k = 0; k < sizeof(event_names) / sizeof(event_names[0]); k++)
				if (strcmp(tok, event_names[k].name) == 0)
					break;
			if (k == sizeof(event_names) / sizeof(event_names[0]))
				return reply_error(cr, a, resp, 400, 21626,
						   "Invalid StatusCallbackEvent");
			events |= event_names[k].bit;
		}
	}
	if (timeout != NULL && strnum_i64(timeout, 1, 600, &tmo) < 0)
		return reply_error(cr, a, resp, 400, 21216, "Invalid Timeout");
	if (strcmp(to, "+15005550429") == 0)
		return reply_error(cr, a, resp, 429, 20429, "Too Many Requests");
	if (strcmp(to, "+15005550500") == 0)
		return reply_error(cr, a, resp, 500, 20500, "Internal Server Error");
	if (!make_room(cr))
		return reply_error(cr, a, resp, 429, 20429,
				   "Too Many Requests (the sandbox is full of live calls)");
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->url = strdup(url)) == NULL ||
	    (scb != NULL && (c->status_cb = strdup(scb)) == NULL)) {
		log_error("sandbox", "out of memory creating a call");
		abort();
	}
	new_sid(cr, c->sid);
	snprintf(c->to, sizeof(c->to), "%s", to);
	snprintf(c->from, sizeof(c->from), "%s", from);
	c->events = events;
	c->timeout_s = (int)tmo;
	c->outcome = sandbox_pick_outcome(cr->cfg, rng_next(cr));
	c->talk_ms = cr->cfg->talk_min_ms;
	if (cr->cfg->talk_max_ms > cr->cfg->talk_min_ms)
		c->talk_ms += (int)(rng_next(cr) %
				    (uint64_t)(cr->cfg->talk_max_ms - cr->cfg->talk_min_ms + 1));
	c->status = CS_QUEUED;
	c->duration = -1;
	c->created_wall = wall_ms();
	c->next_ms = mono_ms() + QUEUED_MS;
	c->params = json_array();
	for (size_t i = 0; i < f->n; i++)
		json_array_append_new(c->params,
				      json_pack("[ss]", f->params[i].name, f->params[i].value));
	cr->calls = realloc(cr->calls, (cr->ncalls + 1) * sizeof(*cr->calls));
	if (cr->calls == NULL) {
		log_error("sandbox", "out of memory");
		abort();
	}
	cr->calls[cr->ncalls++] = c;
	live_add(cr, c);
	cr->st.created++;
	if (++cr->st.active > cr->st.max_active)
		cr->st.max_active = cr->st.active;
	log_info("sandbox", "call sid=%s to=%s created outcome=%s talk_ms=%d", c->sid,
		 log_mask_phone(to, masked, sizeof(masked)), outcome_names[c->outcome], c->talk_ms);
	if (strcmp(to, "+15005550408") == 0) {
		resp->stall = true; /* the call exists, its answer is lost */
		return 0;
	}
	return reply_json(a, resp, 201, call_resource(cr, c));
}

static int api_update(carrier_t *cr, arena_t *a, call_t *c, const form_t *f, sandbox_resp_t *resp)
{
	const char *status = form_get(f, "Status");

	if (status == NULL)
		return reply_error(cr, a, resp, 400, 20001,
				   "Missing required parameter Status (the sandbox simulates "
				   "hang-ups only)");
	if (strcmp(status, "completed") == 0) {
		c->hangup_requested = true;
		cr->st.hangups++;
		finish(cr, c, CS_COMPLETED, 0);
	} else if (strcmp(status, "canceled") == 0) {
		c->hangup_requested = true;
		if (c->status == CS_QUEUED || c->status == CS_RINGING)
			finish(cr, c, CS_CANCELED, 487);
	} else {
		return reply_error(cr, a, resp, 400, 21218, "Invalid Status");
	}
	return reply_json(a, resp, 200, call_resource(cr, c));
}

static json_t *call_listing(const carrier_t *cr, const call_t *c)
{
	char created[40], answered[40], ended[40];
	json_t *o = json_object();

	json_object_set_new(o, "sid", json_string(c->sid));
	json_object_set_new(o, "to", json_string(c->to));
	json_object_set_new(o, "from", json_string(c->from));
	json_object_set_new(o, "status", json_string(status_names[c->status]));
	json_object_set_new(o, "outcome", json_string(outcome_names[c->outcome]));
	json_object_set_new(o, "created_at",
			    json_string(rfc3339(created, sizeof(created), c->created_wall)));
	json_object_set_new(o, "created_ms", json_integer(c->created_wall));
	json_object_set_new(o, "answered_at",
			    jstr_or_null(c->answered_wall
					     ? rfc3339(answered, sizeof(answered), c->answered_wall)
					     : NULL));
	json_object_set_new(
	    o, "ended_at",
	    jstr_or_null(c->ended_wall ? rfc3339(ended, sizeof(ended), c->ended_wall) : NULL));
	json_object_set_new(o, "ended_ms",
			    c->ended_wall ? json_integer(c->ended_wall) : json_null());
	json_object_set_new(o, "duration",
			    c->duration >= 0 ? json_integer(c->duration) : json_null());
	json_object_set_new(o, "hangup_requested", json_boolean(c->hangup_requested));
	json_object_set_new(o, "url", json_string(c->url));
	json_object_set_new(o, "status_callback", jstr_or_null(c->status_cb));
	json_object_set_new(o, "callbacks_ok", json_integer(c->callbacks_ok));
	json_object_set_new(o, "callbacks_failed", json_integer(c->callbacks_failed));
	json_object_set_new(o, "callbacks_pending",
			    json_boolean(c->queue != NULL || c->inflight != NULL));
	json_object_set_new(o, "twiml_status", json_integer(c->twiml_status));
	json_object_set_new(o, "twiml", jstr_or_null(c->twiml));
	json_object_set_new(o, "params", json_incref(c->params));
	(void)cr;
	return o;
}

static int api_introspect(carrier_t *cr, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	sandbox_req_t q = *req;
	form_t f = {0};
	const char *why = NULL;

	if (strcmp(req->method, "GET") != 0)
		return reply_error(cr, a, resp, 405, 20004, "Method not allowed");
	if (form_parse(a, q.query, strlen(q.query), &f, &why) < 0)
		return reply_error(cr, a, resp, 400, 20001, why);
	if (strcmp(req->path, "/__sandbox/calls") == 0) {
		const char *to = form_get(&f, "to"), *sid = form_get(&f, "sid");
		json_t *list = json_array();

		for (size_t i = 0; i < cr->ncalls; i++) {
			const call_t *c = cr->calls[i];

			if ((to == NULL || strcmp(c->to, to) == 0) &&
			    (sid == NULL || strcmp(c->sid, sid) == 0))
				json_array_append_new(list, call_listing(cr, c));
		}
		return reply_json(a, resp, 200,
				  json_pack("{s:o,s:I}", "calls", list, "total",
					    (json_int_t)json_array_size(list)));
	}
	if (strcmp(req->path, "/__sandbox/stats") == 0) {
		json_t *fin = json_object();

		for (int s = CS_COMPLETED; s <= CS_CANCELED; s++)
			json_object_set_new(fin, status_names[s], json_integer(cr->st.finished[s]));
		return reply_json(
		    a, resp, 200,
		    json_pack(
			"{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "requests",
			(json_int_t)cr->st.requests, "calls_created", (json_int_t)cr->st.created,
			"calls_kept", (json_int_t)cr->ncalls, "active", (json_int_t)cr->st.active,
			"max_active", (json_int_t)cr->st.max_active, "rejected",
			(json_int_t)cr->st.rejected, "auth_failures",
			(json_int_t)cr->st.auth_failures, "hangups", (json_int_t)cr->st.hangups,
			"finished", fin, "callbacks_sent", (json_int_t)cr->st.callbacks_sent,
			"callbacks_ok", (json_int_t)cr->st.callbacks_ok, "callbacks_failed",
			(json_int_t)cr->st.callbacks_failed, "callback_retries",
			(json_int_t)cr->st.callback_retries, "twiml_fetches",
			(json_int_t)cr->st.twiml_fetches, "callbacks_in_flight",
			(json_int_t)cr->inflight));
	}
	return reply_error(cr, a, resp, 404, 20404, "The requested resource was not found");
}

/* Route one request. Returns 0. */
static int route(carrier_t *cr, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	const char *rest, *slash, *sid = NULL;
	char *acct;
	bool post = strcmp(req->method, "POST") == 0, get = strcmp(req->method, "GET") == 0;
	const char *why = NULL;
	call_t *c = NULL;
	form_t f = {0};

	cr->st.requests++;
	if (strncmp(req->path, "/__sandbox/", 11) == 0)
		return api_introspect(cr, a, req, resp);
	if (strncmp(req->path, API_PREFIX, strlen(API_PREFIX)) != 0)
		return reply_error(cr, a, resp, 404, 20404, "The requested resource was not found");
	/* Authentication comes first, as at Twilio: even a bad path is 401 without it. */
	if (!auth_ok(cr, req->authorization))
		return reply_error(cr, a, resp, 401, 20003, "Authenticate");
	rest = req->path + strlen(API_PREFIX);
	slash = strchr(rest, '/');
	if (slash == NULL)
		return reply_error(cr, a, resp, 404, 20404, "The requested resource was not found");
	acct = arena_strndup(a, rest, (size_t)(slash - rest));
	if (strcmp(acct, cr->cfg->account_sid) != 0)
		return reply_error(cr, a, resp, 404, 20404, "The requested resource was not found");
	rest = slash;
	if (strcmp(rest, "/Calls.json") != 0) {
		size_t n = strlen(rest);

		if (strncmp(rest, "/Calls/", 7) != 0 || n < 7 + 5 + 1 ||
		    strcmp(rest + n - 5, ".json") != 0)
			return reply_error(cr, a, resp, 404, 20404,
					   "The requested resource was not found");
		sid = arena_strndup(a, rest + 7, n - 7 - 5);
		c = find_call(cr, sid);
		if (c == NULL)
			return reply_error(cr, a, resp, 404, 20404,
					   "The requested resource was not found");
	}
	if (sid != NULL && get)
		return reply_json(a, resp, 200, call_resource(cr, c));
	if (!post)
		return reply_error(cr, a, resp, 405, 20004, "Method not allowed");
	if (http_body_type(req->content_type) != HTTP_BODY_FORM)
		return reply_error(cr, a, resp, 400, 20001,
				   "Content-Type must be application/x-www-form-urlencoded");
	if (form_parse(a, req->body, req->body_len, &f, &why) < 0)
		return reply_error(cr, a, resp, 400, 20001, why);
	for (size_t i = 0; i < sizeof(single_params) / sizeof(single_params[0]); i++)
		if (form_count(&f, single_params[i]) > 1)
			return reply_error(cr, a, resp, 400, 20001,
					   arena_sprintf(a, "Parameter %s is given more than once",
							 single_params[i]));
	if (sid == NULL)
		return api_create(cr, a, &f, resp);
	return api_update(cr, a, c, &f, resp);
}

/* The sandbox_handler_fn. */
static void handle(void *app, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	(void)route(app, a, req, resp);
}

/* --- callbacks ------------------------------------------------------------ */

static size_t on_cb_answer(char *ptr, size_t size, size_t nmemb, void *arg)
{
	cb_t *b = arg;
	size_t n = size * nmemb;

	if (!b->twiml)
		return n;
	if (n > TWIML_MAX - b->answer_len)
		n = TWIML_MAX - b->answer_len; /* keep the start, drop the rest */
	if (b->answer == NULL && (b->answer = malloc(TWIML_MAX + 1)) == NULL)
		return 0;
	memcpy(b->answer + b->answer_len, ptr, n);
	b->answer_len += n;
	return size * nmemb;
}

/* Start the request at the head of c's queue. */
static void cb_start(carrier_t *cr, call_t *c)
{
	cb_t *b = c->queue;
	const char *url = b->twiml ? c->url : c->status_cb;
	char sig[64], idem[96];
	CURLU *u = curl_url();
	char *host = NULL;

	c->queue = b->next;
	if (c->queue == NULL)
		c->queue_tail = NULL;
	b->next = NULL;
	b->attempts++;
	b->answer_len = 0;
	b->easy = curl_easy_init();
	snprintf(sig, sizeof(sig), "X-Twilio-Signature: %s", b->sig);
	snprintf(idem, sizeof(idem), "I-Twilio-Idempotency-Token: %s-%u", c->sid, b->serial);
	curl_slist_free_all(b->headers);
	b->headers = curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
	b->headers = curl_slist_append(b->headers, sig);
	b->headers = curl_slist_append(b->headers, idem);
	if (b->easy == NULL || b->headers == NULL) {
		log_error("sandbox", "out of memory starting a callback");
		abort();
	}
	curl_easy_setopt(b->easy, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(b->easy, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(b->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(b->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(b->easy, CURLOPT_CONNECTTIMEOUT_MS, CB_CONNECT_MS);
	curl_easy_setopt(b->easy, CURLOPT_TIMEOUT_MS, CB_TOTAL_MS);
	curl_easy_setopt(b->easy, CURLOPT_USERAGENT, "TwilioProxy/1.1 (dialflow-sandbox)");
	curl_easy_setopt(b->easy, CURLOPT_HTTPHEADER, b->headers);
	curl_easy_setopt(b->easy, CURLOPT_POSTFIELDS, b->body);
	curl_easy_setopt(b->easy, CURLOPT_WRITEFUNCTION, on_cb_answer);
	curl_easy_setopt(b->easy, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(b->easy, CURLOPT_PRIVATE, b);
	if (cr->cfg->ca_file[0] != '\0')
		curl_easy_setopt(b->easy, CURLOPT_CAINFO, cr->cfg->ca_file);
	/* nginx listens on 127.0.0.1 only: do not try ::1 for "localhost" first. */
	if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == 0 &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == 0 && strcasecmp(host, "localhost") == 0)
		curl_easy_setopt(b->easy, CURLOPT_IPRESOLVE, (long)CURL_IPRESOLVE_V4);
	curl_free(host);
	curl_url_cleanup(u);
	curl_multi_add_handle(cr->multi, b->easy);
	c->inflight = b;
	cr->inflight++;
	cr->st.callbacks_sent++;
	if (b->twiml)
		cr->st.twiml_fetches++;
}

/* What the answer to a TwiML fetch means for the call. */
static void twiml_done(carrier_t *cr, call_t *c, cb_t *b, long http)
{
	free(c->twiml);
	c->twiml = NULL;
	c->twiml_status = (int)http;
	if (b->answer != NULL) {
		b->answer[b->answer_len] = '\0';
		c->twiml = strndup(b->answer, b->answer_len);
	}
	if (c->status != CS_IN_PROGRESS)
		return;
	if (http < 200 || http >= 300) {
		/* Twilio would say "an application error has occurred" and hang up. */
		finish(cr, c, CS_COMPLETED, 0);
		return;
	}
	if (c->twiml != NULL && strstr(c->twiml, "<Hangup") != NULL &&
	    strstr(c->twiml, "<Say") == NULL && strstr(c->twiml, "<Dial") == NULL &&
	    strstr(c->twiml, "<Gather") == NULL && strstr(c->twiml, "<Play") == NULL)
		finish(cr, c, CS_COMPLETED, 0);
}

/* A finished transfer: count it, retry it, or act on a TwiML answer. */
static void cb_done(carrier_t *cr, CURL *easy, CURLcode cc)
{
	cb_t *b = NULL;
	call_t *c;
	long http = 0;
	bool retry;

	curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&b);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &http);
	curl_multi_remove_handle(cr->multi, easy);
	curl_easy_cleanup(easy);
	if (b == NULL)
		return;
	c = b->call;
	b->easy = NULL;
	c->inflight = NULL;
	cr->inflight--;
	if (cc == CURLE_OK && http >= 200 && http < 300) {
		c->callbacks_ok++;
		cr->st.callbacks_ok++;
		if (b->twiml)
			twiml_done(cr, c, b, http);
		cb_free(b);
		live_settle(cr, c);
		return;
	}
	retry = (cc != CURLE_OK || http == 429 || http >= 500) &&
		b->attempts <= cr->cfg->callback_retries;
	log_warn("sandbox", "%s for sid=%s failed (attempt %d): %s http=%ld%s",
		 b->twiml ? "TwiML fetch" : "status callback", c->sid, b->attempts,
		 cc != CURLE_OK ? curl_easy_strerror(cc) : "answered", http,
		 retry ? ", retrying" : "");
	if (retry) {
		cr->st.callback_retries++;
		b->due_ms = mono_ms() + ((int64_t)CB_BACKOFF_MS << (b->attempts - 1));
		b->next = c->queue;
		c->queue = b;
		if (c->queue_tail == NULL)
			c->queue_tail = b;
		return;
	}
	c->callbacks_failed++;
	cr->st.callbacks_failed++;
	if (b->twiml)
		twiml_done(cr, c, b, cc == CURLE_OK ? http : 0);
	cb_free(b);
	live_settle(cr, c);
}

/*
 * Move every live call on (timers, then queued requests). Returns the
 * milliseconds until the next thing is due (capped at LOOP_MAX_MS).
 */
static int pump(carrier_t *cr)
{
	int64_t now = mono_ms(), next = now + LOOP_MAX_MS;

	for (size_t i = 0; i < cr->nlive; i++) {
		call_t *c = cr->live[i];

		while (c->next_ms != 0 && c->next_ms <= now)
			advance(cr, c, now);
		if (c->next_ms != 0 && c->next_ms < next)
			next = c->next_ms;
		/* A TwiML fetch of a call that already ended is pointless. */
		while (c->queue != NULL && c->queue->twiml && c->status != CS_IN_PROGRESS) {
			cb_t *b = c->queue;

			c->queue = b->next;
			if (c->queue == NULL)
				c->queue_tail = NULL;
			cb_free(b);
		}
		if (c->inflight == NULL && c->queue != NULL) {
			if (c->queue->due_ms <= now && cr->inflight < CB_MAX_INFLIGHT)
				cb_start(cr, c);
			else if (c->queue->due_ms < next)
				next = c->queue->due_ms > now ? c->queue->due_ms : now + 10;
		}
	}
	for (size_t i = cr->nlive; i-- > 0;)
		live_settle(cr, cr->live[i]);
	return (int)(next > now ? next - now : 0);
}

/* --- the loop ------------------------------------------------------------- */

static int carrier_init(carrier_t *cr, const sandbox_config_t *cfg)
{
	char plain[400];
	int n;

	memset(cr, 0, sizeof(*cr));
	cr->cfg = cfg;
	cr->rng = cfg->seed;
	n = snprintf(plain, sizeof(plain), "%s:%s", cfg->account_sid, cfg->auth_token);
	if (n < 0 || (size_t)n >= sizeof(plain) || (size_t)n / 3 * 4 + 4 >= sizeof(cr->auth))
		return -1;
	EVP_EncodeBlock((unsigned char *)cr->auth, (const unsigned char *)plain, n);
	OPENSSL_cleanse(plain, sizeof(plain));
	cr->multi = curl_multi_init();
	cr->escaper = curl_easy_init();
	return cr->multi != NULL && cr->escaper != NULL ? 0 : -1;
}

static void carrier_free(carrier_t *cr)
{
	for (size_t i = 0; i < cr->ncalls; i++) {
		cb_t *b = cr->calls[i]->inflight;

		if (b != NULL) {
			curl_multi_remove_handle(cr->multi, b->easy);
			curl_easy_cleanup(b->easy);
			cb_free(b);
		}
		call_free(cr->calls[i]);
	}
	free(cr->calls);
	free(cr->live);
	if (cr->multi != NULL)
		curl_multi_cleanup(cr->multi);
	if (cr->escaper != NULL)
		curl_easy_cleanup(cr->escaper);
	OPENSSL_cleanse(cr->auth, sizeof(cr->auth));
}

int sandbox_run(const sandbox_config_t *cfg)
{
	struct pollfd pfds[MAX_WAITFDS];
	struct curl_waitfd wfds[MAX_WAITFDS];
	sandbox_httpd_t *h = NULL;
	struct sigaction sa;
	carrier_t cr;
	int port = 0, rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("sandbox", "curl_global_init failed");
		return -1;
	}
	if (carrier_init(&cr, cfg) < 0) {
		log_error("sandbox", "cannot set up (account sid and token too long?)");
		goto out;
	}
	h = sandbox_httpd_new(cfg->port, handle, &cr, &port);
	if (h == NULL)
		goto out;
	/* The one line a parent (./dev, a test) waits for. */
	printf("dialflow-sandbox listening on 127.0.0.1:%d\n", port);
	fflush(stdout);
	log_info("sandbox",
		 "listening on 127.0.0.1:%d answer=%d%% busy=%d%% no-answer=%d%% fail=%d%% "
		 "ring_ms=%d talk_ms=%d-%d",
		 port, cfg->answer_pct, cfg->busy_pct, cfg->noanswer_pct, cfg->fail_pct,
		 cfg->ring_ms, cfg->talk_min_ms, cfg->talk_max_ms);
	while (!stopping) {
		int timeout = pump(&cr), numfds = 0, running = 0;
		size_t n = sandbox_httpd_pollfds(h, pfds, MAX_WAITFDS);
		CURLMsg *msg;
		int left;

		for (size_t i = 0; i < n; i++) {
			wfds[i].fd = pfds[i].fd;
			wfds[i].events =
			    (short)((pfds[i].events & POLLIN ? CURL_WAIT_POLLIN : 0) |
				    (pfds[i].events & POLLOUT ? CURL_WAIT_POLLOUT : 0));
			wfds[i].revents = 0;
		}
		if (curl_multi_wait(cr.multi, wfds, (unsigned)n, timeout, &numfds) != CURLM_OK) {
			if (stopping)
				break;
			log_warn("sandbox", "curl_multi_wait failed; continuing");
		}
		for (size_t i = 0; i < n; i++) {
			short re = wfds[i].revents;

			/* curl reports only IN/OUT/PRI; a hang-up reads as IN (EOF). */
			pfds[i].revents = (short)((re & CURL_WAIT_POLLIN ? POLLIN : 0) |
						  (re & CURL_WAIT_POLLOUT ? POLLOUT : 0));
		}
		sandbox_httpd_events(h, pfds, n);
		curl_multi_perform(cr.multi, &running);
		while ((msg = curl_multi_info_read(cr.multi, &left)) != NULL)
			if (msg->msg == CURLMSG_DONE)
				cb_done(&cr, msg->easy_handle, msg->data.result);
	}
	log_info("sandbox", "stopping: %ld calls created, %ld callbacks sent (%ld failed)",
		 cr.st.created, cr.st.callbacks_sent, cr.st.callbacks_failed);
	rc = 0;
out:
	sandbox_httpd_free(h);
	carrier_free(&cr);
	curl_global_cleanup();
	return rc;
}
