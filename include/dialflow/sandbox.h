/*
 * sandbox.h - dialflow-sandbox, a carrier simulator that speaks the subset of
 * the Twilio REST API the `twilio` provider uses (DESIGN §7).
 *
 * It listens on 127.0.0.1 (plain HTTP/1.1, keep-alive, poll()-based, bounded
 * requests) and checks each request as strictly as Twilio would: the path,
 * HTTP basic auth (account sid : auth token), the media type, the required
 * parameters and the StatusCallbackEvent values, answering with Twilio's JSON
 * call resource or its error shape. Every call then progresses on timers
 * (queued -> ringing -> in-progress -> completed | busy | no-answer | failed,
 * with configurable odds and durations), fetches its TwiML from Url when
 * answered, and posts SIGNED status callbacks (X-Twilio-Signature with the
 * same auth token) with Twilio's parameter names. Status=completed hangs a
 * live call up. Calls live in this process, so they outlive a worker crash,
 * as real calls do. Callbacks go only to loopback hosts.
 *
 * Test numbers (in the spirit of Twilio's magic numbers):
 *   To +15005550001  400 21211 invalid 'To'    From +15005550001  400 21212
 *   To +15005550429  429 20429                 To +15005550500    500 20500
 *   To +15005550408  the call is created but the answer never comes (the
 *                    client times out: "sent, answer lost")
 *
 * Introspection (no auth, loopback only): GET /__sandbox/calls[?to=&sid=]
 * lists every call with its raw create parameters; GET /__sandbox/stats.
 */
#ifndef DIALFLOW_SANDBOX_H
#define DIALFLOW_SANDBOX_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialflow/arena.h"

typedef struct sandbox_config {
	int port;	  /* DIALFLOW_SANDBOX_PORT (0: any free port, printed on stdout) */
	int answer_pct;	  /* DIALFLOW_SANDBOX_ANSWER_PCT (70): relative weights of... */
	int busy_pct;	  /* DIALFLOW_SANDBOX_BUSY_PCT (10)      ...the outcomes      */
	int noanswer_pct; /* DIALFLOW_SANDBOX_NOANSWER_PCT (15)                       */
	int fail_pct;	  /* DIALFLOW_SANDBOX_FAIL_PCT (5)                            */
	int ring_ms;	  /* DIALFLOW_SANDBOX_RING_MS (2000): ringing before the outcome */
	int talk_min_ms;  /* DIALFLOW_SANDBOX_TALK_MS "MIN-MAX" or "N" (3000-8000)     */
	int talk_max_ms;
	uint64_t seed;	      /* DIALFLOW_SANDBOX_SEED (random): odds and durations  */
	int max_calls;	      /* DIALFLOW_SANDBOX_MAX_CALLS (10000) kept for listing  */
	int callback_retries; /* DIALFLOW_SANDBOX_CALLBACK_RETRIES (5) on 5xx/network */
	char *account_sid;    /* DIALFLOW_TWILIO_ACCOUNT_SID (required)               */
	char *auth_token;     /* DIALFLOW_TWILIO_AUTH_TOKEN_FILE contents (required)  */
	char *ca_file;	      /* DIALFLOW_SANDBOX_CA_FILE: CA for https callbacks ("") */
} sandbox_config_t;

/* Fill *cfg from the environment. Returns 0, or -1 with *err (static text). */
int sandbox_config_load(sandbox_config_t *cfg, const char **err);
void sandbox_config_free(sandbox_config_t *cfg);

/* Serve until SIGTERM/SIGINT. Returns 0 on a clean stop, -1 when it cannot start. */
int sandbox_run(const sandbox_config_t *cfg);

typedef enum {
	SANDBOX_ANSWER,
	SANDBOX_BUSY,
	SANDBOX_NOANSWER,
	SANDBOX_FAIL,
} sandbox_outcome_t;

/* The outcome a random `roll` picks under cfg's weights (all zero: answer). Pure. */
sandbox_outcome_t sandbox_pick_outcome(const sandbox_config_t *cfg, uint64_t roll);

/* --- the HTTP/1.1 server (src/sandbox/httpd.c) ---------------------------- */

#define SANDBOX_MAX_HEAD  16384
#define SANDBOX_MAX_BODY  65536
#define SANDBOX_MAX_CONNS 128

typedef struct sandbox_req {
	const char *method;
	const char *path;  /* the target before '?', not decoded */
	const char *query; /* after '?', "" when none            */
	const char *authorization;
	const char *content_type;
	const char *body; /* body_len bytes, NUL-terminated      */
	size_t body_len;
} sandbox_req_t;

typedef struct sandbox_resp {
	int status;
	const char *content_type;
	const char *body; /* arena or static                      */
	size_t body_len;
	const char *extra_header; /* one "Name: value" line or NULL     */
	bool stall;		  /* never answer (fault injection)       */
} sandbox_resp_t;

/* Answer one request; the arena is reset after the response is queued. */
typedef void (*sandbox_handler_fn)(void *app, arena_t *a, const sandbox_req_t *req,
				   sandbox_resp_t *resp);

typedef struct sandbox_httpd sandbox_httpd_t;

/*
 * Listen on 127.0.0.1:port (0: any) and serve with fn(app, ...). *bound
 * receives the port. Returns NULL (logged) when it cannot listen.
 */
sandbox_httpd_t *sandbox_httpd_new(int port, sandbox_handler_fn fn, void *app, int *bound);
void sandbox_httpd_free(sandbox_httpd_t *h);
/* The descriptors to wait on (at most max); returns how many were written. */
size_t sandbox_httpd_pollfds(sandbox_httpd_t *h, struct pollfd *fds, size_t max);
/* Handle what poll() reported for the descriptors of the last sandbox_httpd_pollfds(). */
void sandbox_httpd_events(sandbox_httpd_t *h, const struct pollfd *fds, size_t n);

#endif
