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
#define TWIML_MAX	SANDBOX_XML_MAX_BYTES
#define URL_MAX		2048
#define MAX_DOCS	32 /* TwiML documents one call may fetch (a redirect loop ends) */
#define MAX_VERBS	32 /* executed verbs kept per call for the listing */
#define MAX_RULES	64
#define THINK_REAL_MS	1000 /* a callee takes a second to press a key           */
#define AGENT_RING_MS	2000 /* the agent's phone rings this long (real time)     */
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
static const char *const verb_names[] = {"Say",	 "Pause",  "Play",   "Gather",
					 "Dial", "Hangup", "Reject", "Redirect"};

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

/* What a request to the application is. */
enum cb_kind {
	CB_STATUS,  /* a status callback (StatusCallback)                       */
	CB_TWIML,   /* a TwiML fetch: Url, a Gather or Dial action, a Redirect   */
	CB_WHISPER, /* the agent leg's <Number url>: only its timing matters     */
	CB_AMD,	    /* the AMD result (AsyncAmdStatusCallback)                    */
};
static const char *const cb_kind_names[] = {"status callback", "TwiML fetch", "whisper fetch",
					    "AMD callback"};

/* One request to the application, posted with its signature. */
typedef struct cb {
	struct cb *next;
	struct call *call;
	enum cb_kind kind;
	char *url;	/* malloc'd */
	unsigned gen;	/* TWIML WHISPER: the call's document generation when queued */
	bool truncated; /* the answer was longer than TWIML_MAX */
	char *body;	/* form-encoded, malloc'd */
	char sig[32];
	int attempts;
	unsigned serial; /* for the idempotency token */
	int64_t due_ms;
	CURL *easy; /* while in flight */
	struct curl_slist *headers;
	char *answer; /* TWIML and WHISPER only */
	size_t answer_len;
} cb_t;

/* Where a call is in its TwiML (the timer of a phase is the call's next_ms). */
enum exec_phase {
	EX_NONE,	 /* not answered yet, or over                        */
	EX_AMD,		 /* synchronous AMD: the Url is fetched after it     */
	EX_FETCHING,	 /* waiting for a document                           */
	EX_WAIT,	 /* a Say, Pause or Play is playing                  */
	EX_GATHER_PRESS, /* the callee is about to press c->digits           */
	EX_GATHER_NONE,	 /* the callee presses nothing until the timeout     */
	EX_DIAL_RING,	 /* the agent's phone rings                          */
	EX_DIAL_WHISPER, /* waiting for the agent leg's whisper document     */
	EX_DIAL_TALK,	 /* bridged: callee and agent talk                   */
};

/* The TwiML a live call executes. */
typedef struct exec {
	arena_t *arena; /* the current document and its plan; NULL until answered */
	sandbox_plan_t plan;
	size_t pc;		    /* the next step */
	const sandbox_step_t *step; /* the Gather or Dial in progress */
	char *doc_url;		    /* the current document's URL (malloc'd) */
	enum exec_phase phase;
	int docs;	   /* documents fetched */
	char dial_sid[35]; /* the agent leg */
	int64_t talk_start_ms;
} exec_t;

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
	/* TwiML execution */
	exec_t ex;
	unsigned gen; /* bumped by a REST redirect: older documents' answers are ignored */
	sandbox_digit_choice_t odds[SANDBOX_MAX_DIGIT_CHOICES]; /* what it presses */
	size_t nodds;
	char digits[SANDBOX_MAX_KEYS + 1]; /* pressed at the last <Gather> */
	bool gathered;			   /* reached a <Gather> */
	unsigned char verbs[MAX_VERBS];	   /* indexes into verb_names */
	int nverbs;
	bool bridged, redirected;
	char twiml_error[160]; /* why the application "had an error" ("": none) */
	/* answering-machine detection */
	enum { AMD_NONE, AMD_SYNC, AMD_ASYNC } amd;
	char *amd_cb;		 /* AsyncAmdStatusCallback (malloc'd) or NULL */
	const char *amd_result;	 /* what detection will find (static) */
	const char *answered_by; /* amd_result once detection is over, else NULL */
	int64_t amd_due_ms;	 /* async: monotonic time of the result, 0: none */
} call_t;

/* POST /__sandbox/rules: odds of their own for the calls to numbers starting with prefix. */
typedef struct rule {
	char prefix[17];
	int answer_pct, busy_pct, noanswer_pct, fail_pct, machine_pct;
	sandbox_digit_choice_t digits[SANDBOX_MAX_DIGIT_CHOICES];
	size_t ndigits;
} rule_t;

typedef struct stats {
	long requests, created, rejected, auth_failures, not_found, hangups;
	long finished[8];
	long callbacks_sent, callbacks_ok, callbacks_failed, callback_retries, twiml_fetches;
	long active, max_active;
	long twiml_docs, twiml_errors, gathers, keys_pressed, gather_timeouts, dials, bridged;
	long whisper_fetches, redirects, amd_humans, amd_machines, amd_callbacks;
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
	rule_t rules[MAX_RULES];
	size_t nrules;
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
	json_object_set_new(o, "answered_by", jstr_or_null(c->answered_by));
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
	free(b->url);
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
	free(c->amd_cb);
	free(c->twiml);
	free(c->ex.doc_url);
	arena_free(c->ex.arena);
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
 * Queue a request to the application for c, of `kind`, to `url`:
 *   CB_STATUS   CallStatus `status` (the call's own when NULL), plus
 *               CallDuration / SipResponseCode once it ended;
 *   CB_TWIML    the call's parameters, plus the nx extra ones (Digits, ...);
 *   CB_WHISPER  the agent leg's parameters (the extra ones name its sid,
 *               number and caller id: DialSid, DialTo, DialFrom);
 *   CB_AMD      CallSid AccountSid AnsweredBy MachineDetectionDuration.
 * The parameters, their SequenceNumber and the signature are fixed now, so
 * a retry sends the same request. AnsweredBy goes with every request once
 * the detection is over, as Twilio sends it.
 */
static void enqueue(carrier_t *cr, call_t *c, enum cb_kind kind, const char *url,
		    const char *status, int sip, const char *const *xn, const char *const *xv,
		    size_t nx)
{
	const char *names[24], *values[24];
	char seq[16], ts[40], dur[16], sipbuf[16], amd_ms[16];
	size_t n = 0, len = 0;
	cb_t *b;

	if (url == NULL)
		return;
	b = calloc(1, sizeof(*b));
	if (b == NULL || (b->url = strdup(url)) == NULL)
		goto oom;
#define P(k, v)                                                                                    \
	do {                                                                                       \
		names[n] = (k);                                                                    \
		values[n] = (v);                                                                   \
		n++;                                                                               \
	} while (0)
	if (kind == CB_AMD) {
		snprintf(amd_ms, sizeof(amd_ms), "%d", cr->cfg->amd_ms);
		P("AccountSid", cr->cfg->account_sid);
		P("AnsweredBy", c->answered_by != NULL ? c->answered_by : "unknown");
		P("CallSid", c->sid);
		P("MachineDetectionDuration", amd_ms);
	} else if (kind == CB_WHISPER) {
		/* xv: the agent leg's sid, number, caller id */
		P("AccountSid", cr->cfg->account_sid);
		P("ApiVersion", API_VERSION);
		P("CallSid", xv[0]);
		P("CallStatus", "in-progress");
		P("Called", xv[1]);
		P("Caller", xv[2]);
		P("Direction", "outbound-dial");
		P("From", xv[2]);
		P("ParentCallSid", c->sid);
		P("To", xv[1]);
		nx = 0;
	} else {
		P("AccountSid", cr->cfg->account_sid);
		if (c->answered_by != NULL)
			P("AnsweredBy", c->answered_by);
		P("ApiVersion", API_VERSION);
		P("CallSid", c->sid);
		P("CallStatus", status != NULL ? status : status_names[c->status]);
		P("Called", c->to);
		P("Caller", c->from);
		P("Direction", "outbound-api");
		P("From", c->from);
		P("To", c->to);
	}
	if (kind == CB_STATUS) {
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
	for (size_t i = 0; kind == CB_TWIML && i < nx && n < sizeof(names) / sizeof(names[0]); i++)
		P(xn[i], xv[i]);
#undef P
	for (size_t i = 0; i < n; i++)
		if (body_add(cr, &b->body, &len, names[i], values[i]) < 0)
			goto oom;
	if (b->body == NULL && (b->body = strdup("")) == NULL)
		goto oom;
	if (twilio_signature(cr->cfg->auth_token, url, names, values, n, b->sig, sizeof(b->sig)) <
	    0)
		goto oom;
	b->call = c;
	b->kind = kind;
	b->gen = c->gen;
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

static void enqueue_status(carrier_t *cr, call_t *c, const char *status, int sip)
{
	enqueue(cr, c, CB_STATUS, c->status_cb, status, sip, NULL, NULL, 0);
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
	c->amd_due_ms = 0;
	c->ex.phase = EX_NONE;
	c->ex.step = NULL;
	c->ex.plan.n = 0;
	arena_free(c->ex.arena); /* the plan is over */
	c->ex.arena = NULL;
	c->ended_wall = wall_ms();
	cr->st.active--;
	cr->st.finished[st]++;
	log_info("sandbox",
		 "call sid=%s to=%s ended status=%s duration=%d verbs=%d keys=%s%s%s%s%s", c->sid,
		 log_mask_phone(c->to, masked, sizeof(masked)), status_names[st], c->duration,
		 c->nverbs, c->gathered ? (c->digits[0] ? c->digits : "none") : "-",
		 c->bridged ? " bridged" : "", c->answered_by ? " answered_by=" : "",
		 c->answered_by ? c->answered_by : "",
		 c->hangup_requested ? " (hung up by the client)" : "");
	/* Twilio always posts the final status to a StatusCallback. */
	enqueue_status(cr, c, NULL, sip);
}

/* --- TwiML execution ------------------------------------------------------ */

static void new_sid(carrier_t *cr, char *out);

static void verb_note(call_t *c, const char *verb)
{
	for (unsigned char i = 0; i < sizeof(verb_names) / sizeof(verb_names[0]); i++) {
		if (strcmp(verb_names[i], verb) == 0) {
			if (c->nverbs < MAX_VERBS)
				c->verbs[c->nverbs] = i;
			c->nverbs++; /* counts on past MAX_VERBS: the listing says so */
			return;
		}
	}
}

/* The application failed the call (Twilio: "an application error has occurred"): end it. */
static void app_error(carrier_t *cr, call_t *c, const char *what, const char *detail)
{
	char clean[128];

	snprintf(c->twiml_error, sizeof(c->twiml_error), "%s%s%s", what, detail ? ": " : "",
		 detail ? detail : "");
	cr->st.twiml_errors++;
	log_warn("sandbox", "call sid=%s: application error: %s", c->sid,
		 log_sanitize(c->twiml_error, clean, sizeof(clean)));
	finish(cr, c, CS_COMPLETED, 0);
}

/*
 * `url` resolved against the current document's URL into out (absolute and
 * loopback, as every URL the sandbox requests). Returns 0 or -1.
 */
static int resolve_url(const call_t *c, const char *url, char *out, size_t outsz)
{
	CURLU *u = curl_url();
	char *full = NULL;
	int rc = -1;

	if (u == NULL || strlen(url) > URL_MAX)
		goto out;
	if (c->ex.doc_url != NULL && curl_url_set(u, CURLUPART_URL, c->ex.doc_url, 0) != 0)
		goto out;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != 0 ||
	    curl_url_get(u, CURLUPART_URL, &full, 0) != 0)
		goto out;
	if (strlen(full) >= outsz || !loopback_url(full))
		goto out;
	strcpy(out, full);
	rc = 0;
out:
	curl_free(full);
	curl_url_cleanup(u);
	return rc;
}

/* Fetch the next document from url (relative to the current one), with extra parameters. */
static void exec_fetch(carrier_t *cr, call_t *c, const char *url, const char *const *xn,
		       const char *const *xv, size_t nx)
{
	char full[URL_MAX + 1];

	if (resolve_url(c, url, full, sizeof(full)) < 0) {
		app_error(cr, c, "a TwiML URL that is not an absolute loopback URL", NULL);
		return;
	}
	if (++c->ex.docs > MAX_DOCS) {
		app_error(cr, c, "too many TwiML documents for one call (a redirect loop?)", NULL);
		return;
	}
	c->ex.phase = EX_FETCHING;
	c->ex.step = NULL;
	c->next_ms = 0;
	enqueue(cr, c, CB_TWIML, full, NULL, 0, xn, xv, nx);
}

/* The callee picked up: run the call's Url (after a synchronous AMD). */
static void exec_answer(carrier_t *cr, call_t *c, int64_t now)
{
	c->ex.arena = arena_new(8192);
	c->ex.docs = 0;
	if (c->amd == AMD_SYNC) {
		c->ex.phase = EX_AMD;
		c->next_ms = now + cr->cfg->amd_ms;
		return;
	}
	if (c->amd == AMD_ASYNC)
		c->amd_due_ms = now + cr->cfg->amd_ms;
	exec_fetch(cr, c, c->url, NULL, NULL, 0);
}

/* Detection is over: what answered is known from now on. */
static void amd_detected(carrier_t *cr, call_t *c)
{
	c->answered_by = c->amd_result;
	if (strcmp(c->answered_by, "human") == 0)
		cr->st.amd_humans++;
	else
		cr->st.amd_machines++;
}

/* The asynchronous AMD result is due. */
static void amd_fire(carrier_t *cr, call_t *c)
{
	c->amd_due_ms = 0;
	if (c->status != CS_IN_PROGRESS)
		return;
	amd_detected(cr, c);
	if (c->amd_cb != NULL) {
		cr->st.amd_callbacks++;
		enqueue(cr, c, CB_AMD, c->amd_cb, NULL, 0, NULL, NULL, 0);
	}
}

/* A machine answered (whether or not detection is over). */
static bool is_machine(const call_t *c)
{
	return c->amd_result != NULL && strcmp(c->amd_result, "human") != 0;
}

static void gather_start(carrier_t *cr, call_t *c, const sandbox_step_t *s, int64_t now)
{
	/* an answering machine presses nothing */
	const char *keys =
	    is_machine(c) ? "" : sandbox_pick_digits(c->odds, c->nodds, rng_next(cr));
	int64_t think = sandbox_scale_ms(cr->cfg->say_ms, THINK_REAL_MS);
	int64_t timeout = sandbox_scale_ms(cr->cfg->say_ms, (int64_t)s->timeout_s * 1000);

	cr->st.gathers++;
	c->gathered = true;
	c->ex.step = s;
	snprintf(c->digits, sizeof(c->digits), "%s", keys);
	if (s->num_digits > 0 && strlen(c->digits) > (size_t)s->num_digits)
		c->digits[s->num_digits] = '\0';
	if (c->digits[0] != '\0') {
		cr->st.keys_pressed++;
		c->ex.phase = EX_GATHER_PRESS;
		c->next_ms = now + (think < timeout ? think : timeout);
	} else {
		cr->st.gather_timeouts++;
		c->ex.phase = EX_GATHER_NONE;
		c->next_ms = now + timeout;
	}
}

/* Post the Gather's action (its own document when it has none) with what was pressed. */
static void gather_post(carrier_t *cr, call_t *c)
{
	static const char *const xn[] = {"Digits", "FinishedOnKey"};
	const char *xv[] = {c->digits, ""};
	const char *action = c->ex.step->url;

	exec_fetch(cr, c, action != NULL ? action : c->ex.doc_url, xn, xv, 2);
}

static void exec_next(carrier_t *cr, call_t *c, int64_t now);

/* The agent leg is over (`status`: completed, failed, ...): post the Dial action or go on. */
static void dial_end(carrier_t *cr, call_t *c, const char *status, int64_t now)
{
	static const char *const xn[] = {"DialBridged", "DialCallDuration", "DialCallSid",
					 "DialCallStatus"};
	const sandbox_step_t *s = c->ex.step;
	char dur[16];
	const char *xv[4];

	snprintf(dur, sizeof(dur), "%d",
		 c->ex.talk_start_ms ? (int)((now - c->ex.talk_start_ms + 999) / 1000) : 0);
	xv[0] = c->ex.talk_start_ms ? "true" : "false";
	xv[1] = dur;
	xv[2] = c->ex.dial_sid;
	xv[3] = status;
	if (s->url != NULL) {
		exec_fetch(cr, c, s->url, xn, xv, 4);
		return;
	}
	exec_next(cr, c, now); /* no action: Twilio goes on after the <Dial> */
}

/* Bridge the callee to the agent for the call's talk time, after a whisper of whisper_ms. */
static void dial_talk(carrier_t *cr, call_t *c, int64_t now, int whisper_ms)
{
	c->bridged = true;
	cr->st.bridged++;
	c->ex.phase = EX_DIAL_TALK;
	c->ex.talk_start_ms = now + whisper_ms;
	c->next_ms = now + whisper_ms + c->talk_ms;
}

/* The agent's phone rang: fetch its whisper, or bridge at once. */
static void dial_answered(carrier_t *cr, call_t *c, int64_t now)
{
	const sandbox_step_t *s = c->ex.step;
	char full[URL_MAX + 1];
	const char *xv[3];

	if (!e164_ok(s->number)) {
		dial_end(cr, c, "failed", now);
		return;
	}
	if (s->number_url == NULL) {
		dial_talk(cr, c, now, 0);
		return;
	}
	if (resolve_url(c, s->number_url, full, sizeof(full)) < 0) {
		snprintf(c->twiml_error, sizeof(c->twiml_error),
			 "whisper: <Number url> is not an absolute loopback URL");
		dial_end(cr, c, "failed", now);
		return;
	}
	xv[0] = c->ex.dial_sid;
	xv[1] = s->number;
	xv[2] = s->caller_id != NULL ? s->caller_id : c->from;
	cr->st.whisper_fetches++;
	c->ex.phase = EX_DIAL_WHISPER;
	c->next_ms = 0;
	enqueue(cr, c, CB_WHISPER, full, NULL, 0, NULL, xv, 3);
}

/* The whisper document came back: the agent hears it, then the legs are bridged. */
static void whisper_done(carrier_t *cr, call_t *c, cb_t *b, long http)
{
	sandbox_xml_node_t *root = NULL;
	sandbox_plan_t plan;
	char err[128];
	int64_t ms = 0;

	if (http < 200 || http >= 300 || b->answer == NULL || b->truncated ||
	    sandbox_xml_parse(c->ex.arena, b->answer, b->answer_len, &root, err, sizeof(err)) < 0 ||
	    sandbox_twiml_plan(c->ex.arena, root, cr->cfg->say_ms, &plan, err, sizeof(err)) < 0) {
		/* the agent leg hears Twilio's application error and hangs up */
		snprintf(c->twiml_error, sizeof(c->twiml_error), "whisper: %s",
			 http < 200 || http >= 300 ? "HTTP error"
			 : b->answer == NULL	   ? "empty answer"
			 : b->truncated		   ? "document too large"
						   : err);
		dial_end(cr, c, "failed", mono_ms());
		return;
	}
	for (size_t i = 0; i < plan.n; i++)
		ms +=
		    plan.steps[i].wait_ms; /* what the agent hears; its other verbs do not matter */
	dial_talk(cr, c, mono_ms(), (int)(ms < 3600000 ? ms : 3600000));
}

static void dial_start(carrier_t *cr, call_t *c, const sandbox_step_t *s, int64_t now)
{
	cr->st.dials++;
	c->ex.step = s;
	c->ex.talk_start_ms = 0;
	new_sid(cr, c->ex.dial_sid);
	c->ex.phase = EX_DIAL_RING;
	c->next_ms = now + sandbox_scale_ms(cr->cfg->say_ms, AGENT_RING_MS);
}

/* Run the current document on from its next step until something takes time. */
static void exec_next(carrier_t *cr, call_t *c, int64_t now)
{
	for (;;) {
		const sandbox_step_t *s;

		if (c->ex.pc >= c->ex.plan.n) {
			finish(cr, c, CS_COMPLETED, 0); /* the end of the document hangs up */
			return;
		}
		s = &c->ex.plan.steps[c->ex.pc++];
		verb_note(c, s->verb);
		switch (s->kind) {
		case SANDBOX_STEP_SAY:
		case SANDBOX_STEP_PAUSE:
		case SANDBOX_STEP_PLAY:
			if (s->wait_ms > 0) {
				c->ex.phase = EX_WAIT;
				c->next_ms = now + s->wait_ms;
				return;
			}
			continue;
		case SANDBOX_STEP_GATHER:
			gather_start(cr, c, s, now);
			return;
		case SANDBOX_STEP_DIAL:
			dial_start(cr, c, s, now);
			return;
		case SANDBOX_STEP_HANGUP:
			finish(cr, c, CS_COMPLETED, 0);
			return;
		case SANDBOX_STEP_REDIRECT:
			exec_fetch(cr, c, s->url, NULL, NULL, 0);
			return;
		}
	}
}

/* A document came back for c: read it and run it. */
static void exec_load(carrier_t *cr, call_t *c, cb_t *b, long http)
{
	sandbox_xml_node_t *root = NULL;
	char err[128], status[32];

	if (http < 200 || http >= 300) {
		snprintf(status, sizeof(status), "HTTP %ld", http);
		app_error(cr, c, "the TwiML request failed", http ? status : "no answer");
		return;
	}
	if (b->truncated) {
		app_error(cr, c, "the TwiML document is too large", NULL);
		return;
	}
	free(c->ex.doc_url);
	c->ex.doc_url = b->url;
	b->url = NULL;
	arena_reset(c->ex.arena);
	c->ex.pc = 0;
	c->ex.step = NULL;
	if (sandbox_xml_parse(c->ex.arena, b->answer != NULL ? b->answer : "", b->answer_len, &root,
			      err, sizeof(err)) < 0) {
		app_error(cr, c, "malformed TwiML", err);
		return;
	}
	if (sandbox_twiml_plan(c->ex.arena, root, cr->cfg->say_ms, &c->ex.plan, err, sizeof(err)) <
	    0) {
		app_error(cr, c, "invalid TwiML", err);
		return;
	}
	cr->st.twiml_docs++;
	exec_next(cr, c, mono_ms());
}

/* The timer of an answered call's phase. */
static void exec_timer(carrier_t *cr, call_t *c, int64_t now)
{
	c->next_ms = 0;
	switch (c->ex.phase) {
	case EX_AMD:
		amd_detected(cr, c);
		exec_fetch(cr, c, c->url, NULL, NULL, 0);
		return;
	case EX_WAIT:
		exec_next(cr, c, now);
		return;
	case EX_GATHER_PRESS:
		gather_post(cr, c);
		return;
	case EX_GATHER_NONE:
		if (c->ex.step->action_on_empty)
			gather_post(cr, c);
		else
			exec_next(cr, c, now); /* Twilio falls through to the next verb */
		return;
	case EX_DIAL_RING:
		dial_answered(cr, c, now);
		return;
	case EX_DIAL_TALK:
		dial_end(cr, c, "completed", now);
		return;
	case EX_NONE:
	case EX_FETCHING:
	case EX_DIAL_WHISPER:
		return; /* waiting for an answer, not for time */
	}
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
				enqueue_status(cr, c, "initiated", 0);
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
			enqueue_status(cr, c, NULL, 0);
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
			enqueue_status(cr, c, NULL, 0);
		exec_answer(cr, c, now);
		return;
	case CS_IN_PROGRESS:
		exec_timer(cr, c, now);
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
static const char *const single_params[] = {"To",
					    "From",
					    "Url",
					    "Method",
					    "StatusCallback",
					    "StatusCallbackMethod",
					    "Timeout",
					    "Status",
					    "FallbackUrl",
					    "Twiml",
					    "MachineDetection",
					    "AsyncAmd",
					    "AsyncAmdStatusCallback",
					    "AsyncAmdStatusCallbackMethod"};

/* The rule whose prefix is the longest one `to` starts with, or NULL. */
static const rule_t *rule_for(const carrier_t *cr, const char *to)
{
	const rule_t *best = NULL;

	for (size_t i = 0; i < cr->nrules; i++) {
		const rule_t *r = &cr->rules[i];

		if (strncmp(to, r->prefix, strlen(r->prefix)) == 0 &&
		    (best == NULL || strlen(r->prefix) > strlen(best->prefix)))
			best = r;
	}
	return best;
}

/* What AMD will find for c: a human, or (machine_pct) a machine. */
static const char *amd_pick(carrier_t *cr, int machine_pct, bool detect_end)
{
	uint64_t r = rng_next(cr);

	if ((int)(r % 100) >= machine_pct)
		return "human";
	if (!detect_end)
		return "machine_start"; /* MachineDetection=Enable answers at once */
	r = (r / 100) % 10;		/* DetectMessageEnd waits for the greeting's end */
	return r < 8 ? "machine_end_beep" : r == 8 ? "machine_end_silence" : "machine_end_other";
}

static int api_create(carrier_t *cr, arena_t *a, const form_t *f, sandbox_resp_t *resp)
{
	const char *to = form_get(f, "To"), *from = form_get(f, "From");
	const char *url = form_get(f, "Url"), *method = form_get(f, "Method");
	const char *scb = form_get(f, "StatusCallback");
	const char *scm = form_get(f, "StatusCallbackMethod");
	const char *timeout = form_get(f, "Timeout");
	const char *md = form_get(f, "MachineDetection"), *async = form_get(f, "AsyncAmd");
	const char *amd_cb = form_get(f, "AsyncAmdStatusCallback");
	const char *amd_cbm = form_get(f, "AsyncAmdStatusCallbackMethod");
	sandbox_config_t odds = *cr->cfg;
	const rule_t *rule;
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
	if (md != NULL && strcmp(md, "Enable") != 0 && strcmp(md, "DetectMessageEnd") != 0)
		return reply_error(cr, a, resp, 400, 20001,
				   "Invalid MachineDetection (Enable or DetectMessageEnd)");
	if (async != NULL && strcmp(async, "true") != 0 && strcmp(async, "false") != 0)
		return reply_error(cr, a, resp, 400, 20001, "Invalid AsyncAmd (true or false)");
	if (amd_cb != NULL && !loopback_url(amd_cb))
		return reply_error(
		    cr, a, resp, 400, 20001,
		    "Invalid AsyncAmdStatusCallback (the sandbox calls loopback URLs only)");
	if (amd_cbm != NULL && strcasecmp(amd_cbm, "POST") != 0)
		return reply_error(
		    cr, a, resp, 400, 20001,
		    "Invalid AsyncAmdStatusCallbackMethod (the sandbox posts callbacks only)");
	if (strcmp(to, "+15005550429") == 0)
		return reply_error(cr, a, resp, 429, 20429, "Too Many Requests");
	if (strcmp(to, "+15005550500") == 0)
		return reply_error(cr, a, resp, 500, 20500, "Internal Server Error");
	if (!make_room(cr))
		return reply_error(cr, a, resp, 429, 20429,
				   "Too Many Requests (the sandbox is full of live calls)");
	rule = rule_for(cr, to);
	if (rule != NULL) {
		odds.answer_pct = rule->answer_pct;
		odds.busy_pct = rule->busy_pct;
		odds.noanswer_pct = rule->noanswer_pct;
		odds.fail_pct = rule->fail_pct;
		odds.machine_pct = rule->machine_pct;
		memcpy(odds.digits, rule->digits, sizeof(odds.digits));
		odds.ndigits = rule->ndigits;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->url = strdup(url)) == NULL ||
	    (scb != NULL && (c->status_cb = strdup(scb)) == NULL) ||
	    (md != NULL && amd_cb != NULL && (c->amd_cb = strdup(amd_cb)) == NULL)) {
		log_error("sandbox", "out of memory creating a call");
		abort();
	}
	new_sid(cr, c->sid);
	snprintf(c->to, sizeof(c->to), "%s", to);
	snprintf(c->from, sizeof(c->from), "%s", from);
	c->events = events;
	c->timeout_s = (int)tmo;
	c->outcome = sandbox_pick_outcome(&odds, rng_next(cr));
	memcpy(c->odds, odds.digits, sizeof(c->odds));
	c->nodds = odds.ndigits;
	if (md != NULL) {
		c->amd = async != NULL && strcmp(async, "true") == 0 ? AMD_ASYNC : AMD_SYNC;
		c->amd_result = amd_pick(cr, odds.machine_pct, strcmp(md, "DetectMessageEnd") == 0);
	}
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
	log_info("sandbox", "call sid=%s to=%s created outcome=%s talk_ms=%d%s%s%s", c->sid,
		 log_mask_phone(to, masked, sizeof(masked)), outcome_names[c->outcome], c->talk_ms,
		 c->amd != AMD_NONE ? " amd=" : "", c->amd != AMD_NONE ? c->amd_result : "",
		 rule != NULL ? " (rule)" : "");
	if (strcmp(to, "+15005550408") == 0) {
		resp->stall = true; /* the call exists, its answer is lost */
		return 0;
	}
	return reply_json(a, resp, 201, call_resource(cr, c));
}

/*
 * Move a call to the document at url (a REST update with Url=...): a live
 * call stops its current document and fetches the new one; a call not
 * answered yet will fetch it when answered. Returns 0, or -1 with *why.
 */
static int redirect(carrier_t *cr, call_t *c, const char *url, const char **why)
{
	char *copy;

	if (!loopback_url(url)) {
		*why = "Invalid Url (the sandbox calls loopback URLs only)";
		return -1;
	}
	if (!call_is_live(c)) {
		*why = "Call is not in-progress. Cannot redirect.";
		return -1;
	}
	c->redirected = true;
	cr->st.redirects++;
	if (c->status != CS_IN_PROGRESS || c->ex.phase == EX_AMD) {
		if ((copy = strdup(url)) == NULL) {
			log_error("sandbox", "out of memory");
			abort();
		}
		free(c->url);
		c->url = copy;
		return 0;
	}
	c->gen++; /* answers for the current document are moot now */
	free(c->ex.doc_url);
	c->ex.doc_url = NULL;
	exec_fetch(cr, c, url, NULL, NULL, 0);
	return 0;
}

static int api_update(carrier_t *cr, arena_t *a, call_t *c, const form_t *f, sandbox_resp_t *resp)
{
	const char *status = form_get(f, "Status"), *url = form_get(f, "Url");
	const char *method = form_get(f, "Method"), *why = NULL;

	if (status == NULL && url == NULL)
		return reply_error(cr, a, resp, 400, 20001,
				   form_get(f, "Twiml") != NULL
				       ? "The sandbox updates calls with Url or Status, not Twiml"
				       : "Missing required parameter Status or Url");
	if (status != NULL && strcmp(status, "completed") == 0) {
		c->hangup_requested = true;
		cr->st.hangups++;
		finish(cr, c, CS_COMPLETED, 0);
	} else if (status != NULL && strcmp(status, "canceled") == 0) {
		c->hangup_requested = true;
		if (c->status == CS_QUEUED || c->status == CS_RINGING)
			finish(cr, c, CS_CANCELED, 487);
	} else if (status != NULL) {
		return reply_error(cr, a, resp, 400, 21218, "Invalid Status");
	} else if (method != NULL && strcasecmp(method, "POST") != 0) {
		return reply_error(cr, a, resp, 400, 21204,
				   "Invalid Method (the sandbox fetches TwiML with POST only)");
	} else if (redirect(cr, c, url, &why) < 0) {
		return reply_error(cr, a, resp, 400, call_is_live(c) ? 21205 : 21220, why);
	}
	return reply_json(a, resp, 200, call_resource(cr, c));
}

static json_t *call_listing(const carrier_t *cr, const call_t *c)
{
	char created[40], answered[40], ended[40];
	json_t *o = json_object(), *verbs;

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
	json_object_set_new(o, "twiml_error",
			    jstr_or_null(c->twiml_error[0] ? c->twiml_error : NULL));
	json_object_set_new(o, "digits",
			    jstr_or_null(c->gathered && c->digits[0] ? c->digits : NULL));
	json_object_set_new(o, "gathered", json_boolean(c->gathered));
	json_object_set_new(o, "answered_by", jstr_or_null(c->answered_by));
	json_object_set_new(o, "amd",
			    json_string(c->amd == AMD_NONE   ? "none"
					: c->amd == AMD_SYNC ? "sync"
							     : "async"));
	verbs = json_array();
	for (int i = 0; i < c->nverbs && i < MAX_VERBS; i++)
		json_array_append_new(verbs, json_string(verb_names[c->verbs[i]]));
	if (c->nverbs > MAX_VERBS)
		json_array_append_new(verbs, json_string("..."));
	json_object_set_new(o, "verbs", verbs);
	json_object_set_new(o, "bridged", json_boolean(c->bridged));
	json_object_set_new(o, "redirected", json_boolean(c->redirected));
	json_object_set_new(o, "talk_ms", json_integer(c->talk_ms));
	json_object_set_new(o, "params", json_incref(c->params));
	(void)cr;
	return o;
}

static json_t *rule_json(const rule_t *r)
{
	json_t *d = json_object();

	for (size_t i = 0; i < r->ndigits; i++)
		json_object_set_new(d, r->digits[i].keys[0] ? r->digits[i].keys : "none",
				    json_integer(r->digits[i].weight));
	return json_pack("{s:s,s:i,s:i,s:i,s:i,s:i,s:o}", "prefix", r->prefix, "answer_pct",
			 r->answer_pct, "busy_pct", r->busy_pct, "noanswer_pct", r->noanswer_pct,
			 "fail_pct", r->fail_pct, "machine_pct", r->machine_pct, "digits", d);
}

/*
 * POST /__sandbox/rules (form): prefix (+ and 1-15 digits) and any of
 * answer_pct busy_pct noanswer_pct fail_pct machine_pct (0-100) and digits
 * (as DIALFLOW_SANDBOX_DIGITS); the others are the configuration's. A rule
 * for the same prefix is replaced. Calls created afterwards follow the rule
 * of the longest prefix their To starts with. Returns 0.
 */
static int api_rule_set(carrier_t *cr, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	static const char *const pct_names[] = {"answer_pct", "busy_pct", "noanswer_pct",
						"fail_pct", "machine_pct"};
	const char *prefix, *digits, *why = NULL;
	rule_t r = {.answer_pct = 0};
	int *pcts[] = {&r.answer_pct, &r.busy_pct, &r.noanswer_pct, &r.fail_pct, &r.machine_pct};
	size_t i;
	form_t f = {0};

	if (http_body_type(req->content_type) != HTTP_BODY_FORM)
		return reply_error(cr, a, resp, 400, 20001,
				   "Content-Type must be application/x-www-form-urlencoded");
	if (form_parse(a, req->body, req->body_len, &f, &why) < 0)
		return reply_error(cr, a, resp, 400, 20001, why);
	prefix = form_get(&f, "prefix");
	if (prefix == NULL || prefix[0] != '+' || strlen(prefix) < 2 ||
	    strlen(prefix) >= sizeof(r.prefix) ||
	    strspn(prefix + 1, "0123456789") != strlen(prefix) - 1)
		return reply_error(cr, a, resp, 400, 20001, "prefix must be + and 1-15 digits");
	snprintf(r.prefix, sizeof(r.prefix), "%s", prefix);
	r.answer_pct = cr->cfg->answer_pct;
	r.busy_pct = cr->cfg->busy_pct;
	r.noanswer_pct = cr->cfg->noanswer_pct;
	r.fail_pct = cr->cfg->fail_pct;
	r.machine_pct = cr->cfg->machine_pct;
	memcpy(r.digits, cr->cfg->digits, sizeof(r.digits));
	r.ndigits = cr->cfg->ndigits;
	for (i = 0; i < sizeof(pct_names) / sizeof(pct_names[0]); i++) {
		const char *v = form_get(&f, pct_names[i]);
		int64_t x;

		if (v == NULL)
			continue;
		if (strnum_i64(v, 0, 100, &x) < 0)
			return reply_error(cr, a, resp, 400, 20001,
					   arena_sprintf(a, "%s must be 0-100", pct_names[i]));
		*pcts[i] = (int)x;
	}
	digits = form_get(&f, "digits");
	if (digits != NULL &&
	    sandbox_digits_parse(digits, r.digits, SANDBOX_MAX_DIGIT_CHOICES, &r.ndigits) < 0)
		return reply_error(cr, a, resp, 400, 20001,
				   "digits must be KEYS:WEIGHT,... (KEYS: 0-9 * # or none)");
	for (i = 0; i < cr->nrules; i++)
		if (strcmp(cr->rules[i].prefix, r.prefix) == 0)
			break;
	if (i == cr->nrules) {
		if (cr->nrules == MAX_RULES)
			return reply_error(cr, a, resp, 429, 20429, "Too many rules");
		cr->nrules++;
	}
	cr->rules[i] = r;
	log_info("sandbox", "rule for numbers starting %.5s...: answer=%d%% machine=%d%%", r.prefix,
		 r.answer_pct, r.machine_pct);
	return reply_json(a, resp, 200, rule_json(&r));
}

static int api_introspect(carrier_t *cr, arena_t *a, const sandbox_req_t *req, sandbox_resp_t *resp)
{
	sandbox_req_t q = *req;
	form_t f = {0};
	const char *why = NULL;

	if (strcmp(req->path, "/__sandbox/rules") == 0 && strcmp(req->method, "POST") == 0)
		return api_rule_set(cr, a, req, resp);
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
	if (strcmp(req->path, "/__sandbox/rules") == 0) {
		json_t *list = json_array();

		for (size_t i = 0; i < cr->nrules; i++)
			json_array_append_new(list, rule_json(&cr->rules[i]));
		return reply_json(a, resp, 200, json_pack("{s:o}", "rules", list));
	}
	if (strcmp(req->path, "/__sandbox/stats") == 0) {
		json_t *fin = json_object(), *st;
		const struct {
			const char *name;
			long v;
		} more[] = {
		    {"twiml_docs", cr->st.twiml_docs},
		    {"twiml_errors", cr->st.twiml_errors},
		    {"gathers", cr->st.gathers},
		    {"keys_pressed", cr->st.keys_pressed},
		    {"gather_timeouts", cr->st.gather_timeouts},
		    {"dials", cr->st.dials},
		    {"bridged", cr->st.bridged},
		    {"whisper_fetches", cr->st.whisper_fetches},
		    {"redirects", cr->st.redirects},
		    {"amd_humans", cr->st.amd_humans},
		    {"amd_machines", cr->st.amd_machines},
		    {"amd_callbacks", cr->st.amd_callbacks},
		};

		for (int s = CS_COMPLETED; s <= CS_CANCELED; s++)
			json_object_set_new(fin, status_names[s], json_integer(cr->st.finished[s]));
		st = json_pack(
		    "{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "requests",
		    (json_int_t)cr->st.requests, "calls_created", (json_int_t)cr->st.created,
		    "calls_kept", (json_int_t)cr->ncalls, "active", (json_int_t)cr->st.active,
		    "max_active", (json_int_t)cr->st.max_active, "rejected",
		    (json_int_t)cr->st.rejected, "auth_failures", (json_int_t)cr->st.auth_failures,
		    "hangups", (json_int_t)cr->st.hangups, "finished", fin, "callbacks_sent",
		    (json_int_t)cr->st.callbacks_sent, "callbacks_ok",
		    (json_int_t)cr->st.callbacks_ok, "callbacks_failed",
		    (json_int_t)cr->st.callbacks_failed, "callback_retries",
		    (json_int_t)cr->st.callback_retries, "twiml_fetches",
		    (json_int_t)cr->st.twiml_fetches, "callbacks_in_flight",
		    (json_int_t)cr->inflight);
		for (size_t i = 0; st != NULL && i < sizeof(more) / sizeof(more[0]); i++)
			json_object_set_new(st, more[i].name, json_integer(more[i].v));
		return reply_json(a, resp, 200, st);
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

	if (b->kind != CB_TWIML && b->kind != CB_WHISPER)
		return n;
	if (n > TWIML_MAX - b->answer_len) {
		n = TWIML_MAX - b->answer_len; /* keep the start, drop the rest */
		b->truncated = true;
	}
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
	const char *url = b->url;
	char sig[64], idem[96];
	CURLU *u = curl_url();
	char *host = NULL;

	c->queue = b->next;
	if (c->queue == NULL)
		c->queue_tail = NULL;
	b->next = NULL;
	b->attempts++;
	b->answer_len = 0;
	b->truncated = false;
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
	if (b->kind == CB_TWIML)
		cr->st.twiml_fetches++;
}

/* What the answer to a TwiML or whisper fetch means for the call. */
static void twiml_done(carrier_t *cr, call_t *c, cb_t *b, long http)
{
	if (b->kind == CB_TWIML) {
		/* the last document, as it came, for the listing */
		free(c->twiml);
		c->twiml = NULL;
		c->twiml_status = (int)http;
		if (b->answer != NULL) {
			b->answer[b->answer_len] = '\0';
			c->twiml = strndup(b->answer, b->answer_len);
		}
	}
	/* an answer for a call that ended, or was redirected meanwhile, is moot */
	if (c->status != CS_IN_PROGRESS || b->gen != c->gen)
		return;
	if (b->answer != NULL)
		b->answer[b->answer_len] = '\0';
	if (b->kind == CB_WHISPER && c->ex.phase == EX_DIAL_WHISPER)
		whisper_done(cr, c, b, http);
	else if (b->kind == CB_TWIML && c->ex.phase == EX_FETCHING)
		exec_load(cr, c, b, http);
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
		if (b->kind == CB_TWIML || b->kind == CB_WHISPER)
			twiml_done(cr, c, b, http);
		cb_free(b);
		live_settle(cr, c);
		return;
	}
	retry = (cc != CURLE_OK || http == 429 || http >= 500) &&
		b->attempts <= cr->cfg->callback_retries;
	log_warn("sandbox", "%s for sid=%s failed (attempt %d): %s http=%ld%s",
		 cb_kind_names[b->kind], c->sid, b->attempts,
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
	if (b->kind == CB_TWIML || b->kind == CB_WHISPER)
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
		if (c->amd_due_ms != 0 && c->amd_due_ms <= now)
			amd_fire(cr, c);
		if (c->next_ms != 0 && c->next_ms < next)
			next = c->next_ms;
		if (c->amd_due_ms != 0 && c->amd_due_ms < next)
			next = c->amd_due_ms;
		/* A fetch for a call that ended, or for a document it left, is pointless. */
		while (c->queue != NULL &&
		       (c->queue->kind == CB_TWIML || c->queue->kind == CB_WHISPER) &&
		       (c->status != CS_IN_PROGRESS || c->queue->gen != c->gen)) {
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
		 "ring_ms=%d talk_ms=%d-%d say_ms=%d machine=%d%% amd_ms=%d",
		 port, cfg->answer_pct, cfg->busy_pct, cfg->noanswer_pct, cfg->fail_pct,
		 cfg->ring_ms, cfg->talk_min_ms, cfg->talk_max_ms, cfg->say_ms, cfg->machine_pct,
		 cfg->amd_ms);
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
