/*
 * provider.h - telephony providers behind a small vtable (DESIGN §7).
 *
 * The worker places, redirects and hangs up calls and asks for a call's
 * status only through these calls. `twilio` speaks the Twilio REST API over libcurl
 * (src/providers/twilio.c); the sandbox is a carrier simulator that speaks the
 * same REST API (src/sandbox/), so the demo and the e2e tests drive the
 * production client. Providers never touch the database.
 */
#ifndef DIALFLOW_PROVIDER_H
#define DIALFLOW_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Outcome of a provider call. */
enum {
	PROVIDER_OK = 0,
	PROVIDER_ERR_REJECTED = -1,  /* the provider refused (4xx): do not retry the same request */
	PROVIDER_ERR_TRANSIENT = -2, /* network error, 5xx, 429: safe to retry later            */
	PROVIDER_ERR_UNKNOWN = -3,   /* sent, answer lost: the call may exist (never redial)   */
};

typedef struct provider_call_req {
	const char *to;		/* E.164                                               */
	const char *from;	/* E.164 caller id                                     */
	const char *answer_url; /* absolute URL the provider fetches TwiML from        */
	const char *status_url; /* absolute URL of POST /webhooks/twilio/call-status   */
	int timeout_s;		/* ring timeout                                        */
	int64_t job_id;		/* for logs only                                       */
	/*
	 * Answering-machine detection (the business's amd_enabled): Twilio's
	 * MachineDetection=DetectMessageEnd in its async mode, whose verdict is
	 * posted to amd_url (POST /webhooks/twilio/amd). Ignored when amd is false.
	 */
	bool amd;
	const char *amd_url;
} provider_call_req_t;

typedef struct provider_call_res {
	char call_sid[64];   /* the provider's call id, on PROVIDER_OK              */
	char status[32];     /* provider status (queued, ringing, completed, busy...) */
	int duration;	     /* seconds, fetch_status only, -1 when unknown          */
	int http_status;     /* the provider's HTTP status, 0 when none              */
	char error_code[32]; /* provider error code, "" when none                    */
	char error_message[256];
} provider_call_res_t;

typedef struct provider provider_t;

typedef struct provider_ops {
	const char *name;
	/* Place an outbound call. Fills res->call_sid on PROVIDER_OK. */
	int (*place_call)(provider_t *p, const provider_call_req_t *req, provider_call_res_t *res);
	/* End a live call (Twilio: Status=completed). Idempotent. */
	int (*hangup)(provider_t *p, const char *call_sid, provider_call_res_t *res);
	/* Current status of a call (reconciliation of lost callbacks). */
	int (*fetch_status)(provider_t *p, const char *call_sid, provider_call_res_t *res);
	/*
	 * Make a live call fetch its TwiML from `url` now (Twilio: Url=url,
	 * Method=POST on the call), e.g. to leave a voicemail once AMD found a
	 * machine. REJECTED when the call is over or unknown.
	 */
	int (*redirect)(provider_t *p, const char *call_sid, const char *url,
			provider_call_res_t *res);
	void (*free)(provider_t *p);
} provider_ops_t;

struct provider {
	const provider_ops_t *ops;
	void *impl;
};

/*
 * The Twilio REST client. base_url e.g. "https://api.twilio.com" (tests and the
 * sandbox point it elsewhere); the auth token is used for HTTP basic auth and
 * never logged. Returns NULL on bad arguments. Caller frees with provider_free().
 */
provider_t *provider_twilio_new(const char *base_url, const char *account_sid,
				const char *auth_token, const char *ca_file);
void provider_free(provider_t *p);

/*
 * Twilio's request signature (X-Twilio-Signature): base64(HMAC-SHA1(token,
 * url + each POST parameter name followed by its value, sorted by name;
 * byte-wise, and a repeated name by value)).
 * params are nparams name/value pairs (names[i], values[i]). Writes a
 * NUL-terminated base64 string into out (outsz >= 29). Returns 0 or -1.
 */
int twilio_signature(const char *auth_token, const char *url, const char *const *names,
		     const char *const *values, size_t nparams, char *out, size_t outsz);

/*
 * Whether `signature` (an X-Twilio-Signature value) is twilio_signature() of
 * the request, compared in constant time. A NULL or empty token, URL or
 * signature is never valid. Repeated names are ordered by value, byte-wise.
 */
bool twilio_signature_check(const char *auth_token, const char *url, const char *const *names,
			    const char *const *values, size_t nparams, const char *signature);

/* The paths of our Twilio webhooks (their full URLs are signed, see API.md). */
#define TWILIO_STATUS_PATH "/webhooks/twilio/call-status"
#define TWILIO_VOICE_PATH  "/webhooks/twilio/voice" /* also <Gather>'s action */
#define TWILIO_AMD_PATH	   "/webhooks/twilio/amd"   /* the async AMD verdict */
/* Where the worker redirects a call to leave the script's voicemail (AMD). */
#define TWILIO_VOICEMAIL_PATH TWILIO_VOICE_PATH "?mode=voicemail"

/*
 * The absolute URL of one of our webhooks: public_url (DIALFLOW_PUBLIC_URL,
 * trailing slashes ignored) followed by `path`. The worker passes these as
 * answer_url / status_url and the webhooks verify signatures against the same
 * string. Returns 0, or -1 when it does not fit in out.
 */
int twilio_webhook_url(const char *public_url, const char *path, char *out, size_t outsz);

/*
 * Connect and total timeouts of a `twilio` provider's requests in ms
 * (defaults 3000 and 10000). A call placed whose answer does not arrive
 * within the total timeout is PROVIDER_ERR_UNKNOWN.
 */
void provider_twilio_set_timeouts(provider_t *p, long connect_ms, long total_ms);

#endif
