/*
 * twilio.c - the `twilio` provider: the Calls resource of the Twilio REST API
 * over libcurl (one easy handle per provider, so the connection is kept), and
 * the request signature Twilio puts on its webhooks.
 *
 * Outcomes: a 2xx answer is PROVIDER_OK; 429 and 5xx are TRANSIENT, as is a
 * failure before the request left (resolve, connect, TLS); any other 4xx is
 * REJECTED; a request that was sent but whose answer was lost (time-out,
 * reset, garbage) is UNKNOWN, because the call may exist. The auth token goes
 * only into the Authorization header and is never logged.
 */
#include "config.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/log.h"
#include "dialflow/provider.h"

#define TWILIO_API_VERSION "2010-04-01"
#define ANSWER_MAX	   (64 * 1024)
#define SIG_B64_LEN	   28 /* base64 of a 20-byte HMAC-SHA1 */
#define DEFAULT_CONNECT_MS 3000L
#define DEFAULT_TOTAL_MS   10000L
#define MAX_URL_LEN	   2048
#define MAX_NUMBER_LEN	   32
#define RING_TIMEOUT_MIN_S 5
#define RING_TIMEOUT_MAX_S 600
#define FORM_INITIAL_BUFSZ 1024

typedef struct twilio {
	CURL *curl;
	char *base_url; /* without a trailing slash */
	char *account_sid;
	char *auth_token;
	char *ca_file; /* NULL: the system's CA store */
	long connect_ms;
	long total_ms;
	char errbuf[CURL_ERROR_SIZE];
	char *answer; /* ANSWER_MAX + 1 bytes, reused by every request */
	size_t answer_len;
	bool overflow;
} twilio_t;

/* A growable form body, malloc'd. */
typedef struct form_buf {
	char *data;
	size_t len;
	size_t cap;
} form_buf_t;

/* --- signatures ----------------------------------------------------------- */

typedef struct sig_pair {
	const char *name;
	const char *value;
} sig_pair_t;

static int sig_pair_cmp(const void *a, const void *b)
{
	const sig_pair_t *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : strcmp(x->value, y->value);
}

int twilio_signature(const char *auth_token, const char *url, const char *const *names,
		     const char *const *values, size_t nparams, char *out, size_t outsz)
{
	static char digest[] = "SHA1";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	sig_pair_t *pairs = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	int rc = -1;

	if (auth_token == NULL || auth_token[0] == '\0' || url == NULL || out == NULL ||
	    outsz < SIG_B64_LEN + 1 || (nparams > 0 && (names == NULL || values == NULL)))
		goto out;
	if (nparams > 0) {
		pairs = calloc(nparams, sizeof(*pairs));
		if (pairs == NULL)
			goto out;
		for (size_t i = 0; i < nparams; i++) {
			if (names[i] == NULL || values[i] == NULL)
				goto out;
			pairs[i].name = names[i];
			pairs[i].value = values[i];
		}
		qsort(pairs, nparams, sizeof(*pairs), sig_pair_cmp);
	}
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	if (ctx == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)auth_token, strlen(auth_token), params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)url, strlen(url)))
		goto out;
	for (size_t i = 0; i < nparams; i++)
		if (!EVP_MAC_update(ctx, (const unsigned char *)pairs[i].name,
				    strlen(pairs[i].name)) ||
		    !EVP_MAC_update(ctx, (const unsigned char *)pairs[i].value,
				    strlen(pairs[i].value)))
			goto out;
	if (!EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) || mdlen != 20)
		goto out;
	if (EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen) != SIG_B64_LEN)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	free(pairs);
	return rc;
}

bool twilio_signature_check(const char *auth_token, const char *url, const char *const *names,
			    const char *const *values, size_t nparams, const char *signature)
{
	char want[SIG_B64_LEN + 1];
	bool ok;

	if (signature == NULL || strlen(signature) != SIG_B64_LEN)
		return false;
	if (twilio_signature(auth_token, url, names, values, nparams, want, sizeof(want)) < 0)
		return false;
	ok = CRYPTO_memcmp(want, signature, SIG_B64_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}

int twilio_webhook_url(const char *public_url, const char *path, char *out, size_t outsz)
{
	size_t len;
	int n;

	if (public_url == NULL || path == NULL || out == NULL || outsz == 0)
		return -1;
	len = strlen(public_url);
	while (len > 0 && public_url[len - 1] == '/')
		len--;
	n = snprintf(out, outsz, "%.*s%s", (int)len, public_url, path);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

/* --- helpers -------------------------------------------------------------- */

/* Twilio sids and our path segments: [A-Za-z0-9], 1..63 characters. */
static bool sid_ok(const char *s)
{
	size_t n = 0;

	if (s == NULL)
		return false;
	for (; s[n] != '\0'; n++) {
		char c = s[n];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return false;
	}
	return n > 0 && n < 64;
}

static bool str_ok(const char *s, size_t max)
{
	return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src ? src : "");
}

static int form_buf_add(form_buf_t *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : FORM_INITIAL_BUFSZ;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL)
			return -1;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

/* Append `name=value` (both percent-encoded), with '&' before all but the first. */
static int form_buf_param(CURL *c, form_buf_t *b, const char *name, const char *value)
{
	char *ev = curl_easy_escape(c, value, 0);
	int rc = -1;

	if (ev == NULL)
		goto out;
	if ((b->len > 0 && form_buf_add(b, "&", 1) < 0) ||
	    form_buf_add(b, name, strlen(name)) < 0 || form_buf_add(b, "=", 1) < 0 ||
	    form_buf_add(b, ev, strlen(ev)) < 0)
		goto out;
	rc = 0;
out:
	curl_free(ev);
	return rc;
}

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *arg)
{
	twilio_t *t = arg;
	size_t n = size * nmemb;

	if (n > ANSWER_MAX - t->answer_len) {
		t->overflow = true;
		return 0; /* aborts the transfer */
	}
	memcpy(t->answer + t->answer_len, ptr, n);
	t->answer_len += n;
	return n;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Fill res from a Call resource; false when it is not one (no usable sid). */
static bool read_call(const json_t *call, provider_call_res_t *res)
{
	const json_t *sid = json_object_get(call, "sid");
	const json_t *status = json_object_get(call, "status");
	const json_t *dur = json_object_get(call, "duration");

	if (!json_is_string(sid) || !sid_ok(json_string_value(sid)))
		return false;
	copy_str(res->call_sid, sizeof(res->call_sid), json_string_value(sid));
	if (json_is_string(status) && json_string_length(status) < sizeof(res->status))
		copy_str(res->status, sizeof(res->status), json_string_value(status));
	res->duration = -1;
	if (json_is_integer(dur) && json_integer_value(dur) >= 0 &&
	    json_integer_value(dur) <= 86400 * 7) {
		res->duration = (int)json_integer_value(dur);
	} else if (json_is_string(dur)) {
		const char *d = json_string_value(dur);
		size_t n = strlen(d);
		long v = 0;

		if (n > 0 && n <= 7 && strspn(d, "0123456789") == n) {
			v = strtol(d, NULL, 10);
			res->duration = (int)v;
		}
	}
	return true;
}

/* Fill the error fields of res from a Twilio error answer, or from the HTTP status alone. */
static void read_error(const json_t *err, provider_call_res_t *res)
{
	const json_t *code = json_object_get(err, "code");
	const json_t *msg = json_object_get(err, "message");

	if (json_is_integer(code))
		snprintf(res->error_code, sizeof(res->error_code), "%lld",
			 (long long)json_integer_value(code));
	else
		snprintf(res->error_code, sizeof(res->error_code), "http_%d", res->http_status);
	if (json_is_string(msg))
		copy_str(res->error_message, sizeof(res->error_message), json_string_value(msg));
	else
		snprintf(res->error_message, sizeof(res->error_message),
			 "the provider answered HTTP %d", res->http_status);
}

/*
 * One request to base_url + path: a GET when form is NULL, else a
 * form-encoded POST. Fills res (http_status, call fields or error fields) and
 * returns a PROVIDER_* outcome.
 */
static int tw_request(twilio_t *t, const char *path, const char *form, provider_call_res_t *res)
{
	struct curl_slist *headers = NULL;
	char url[MAX_URL_LEN + 128];
	json_t *answer = NULL;
	json_error_t jerr;
	long http = 0, sent = 0;
	CURLcode cc;
	int rc = PROVIDER_ERR_TRANSIENT;

	if (snprintf(url, sizeof(url), "%s%s", t->base_url, path) >= (int)sizeof(url)) {
		copy_str(res->error_code, sizeof(res->error_code), "bad_request");
		copy_str(res->error_message, sizeof(res->error_message), "request URL too long");
		rc = PROVIDER_ERR_REJECTED;
		goto out;
	}
	curl_easy_reset(t->curl);
	t->answer_len = 0;
	t->overflow = false;
	t->errbuf[0] = '\0';
	headers = curl_slist_append(NULL, "Accept: application/json");
	if (headers == NULL) {
		copy_str(res->error_code, sizeof(res->error_code), "internal");
		copy_str(res->error_message, sizeof(res->error_message), "out of memory");
		goto out;
	}
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(t->curl, CURLOPT_USERNAME, t->account_sid);
	curl_easy_setopt(t->curl, CURLOPT_PASSWORD, t->auth_token);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS, t->connect_ms);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, t->total_ms);
	curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "dialflow/" PACKAGE_VERSION);
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
	if (t->ca_file != NULL)
		curl_easy_setopt(t->curl, CURLOPT_CAINFO, t->ca_file);
	if (form != NULL) {
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, form);
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
	} else {
		curl_easy_setopt(t->curl, CURLOPT_HTTPGET, 1L);
	}
	cc = curl_easy_perform(t->curl);
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &http);
	curl_easy_getinfo(t->curl, CURLINFO_REQUEST_SIZE, &sent);
	res->http_status = (int)http;
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && t->overflow && http > 0)) {
		/* Nothing sent: nothing can exist at the provider, a retry is safe. */
		rc = sent > 0 ? PROVIDER_ERR_UNKNOWN : PROVIDER_ERR_TRANSIENT;
		res->http_status = 0;
		copy_str(res->error_code, sizeof(res->error_code),
			 cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network");
		copy_str(res->error_message, sizeof(res->error_message),
			 t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	t->answer[t->answer_len] = '\0';
	if (!t->overflow)
		answer = json_loadb(t->answer, t->answer_len, JSON_REJECT_DUPLICATES, &jerr);
	if (http >= 200 && http < 300) {
		if (json_is_object(answer) && read_call(answer, res)) {
			rc = PROVIDER_OK;
		} else {
			/* The provider did something, but we cannot tell what. */
			rc = PROVIDER_ERR_UNKNOWN;
			copy_str(res->error_code, sizeof(res->error_code), "bad_answer");
			copy_str(res->error_message, sizeof(res->error_message),
				 "the provider's answer is not a call resource");
		}
		goto out;
	}
	rc = (http == 429 || http >= 500) ? PROVIDER_ERR_TRANSIENT : PROVIDER_ERR_REJECTED;
	read_error(json_is_object(answer) ? answer : NULL, res);
out:
	json_decref(answer);
	curl_slist_free_all(headers);
	return rc;
}

static const char *outcome_name(int rc)
{
	switch (rc) {
	case PROVIDER_OK:
		return "ok";
	case PROVIDER_ERR_REJECTED:
		return "rejected";
	case PROVIDER_ERR_TRANSIENT:
		return "transient";
	default:
		return "unknown";
	}
}

static void log_outcome(const char *op, int64_t job, const char *to, const char *sid, int rc,
			const provider_call_res_t *res, const struct timespec *t0)
{
	char masked[40], msg[128], code[40];

	log_msg(rc == PROVIDER_OK ? LOG_INFO : LOG_WARN, "twilio",
		"op=%s job=%lld to=%s sid=%s outcome=%s http=%d code=%s dur_ms=%.1f%s%s", op,
		(long long)job, log_mask_phone(to, masked, sizeof(masked)),
		sid && sid[0] ? sid : "-", outcome_name(rc), res->http_status,
		log_sanitize(res->error_code[0] ? res->error_code : "-", code, sizeof(code)),
		ms_since(t0), rc == PROVIDER_OK ? "" : " msg=",
		rc == PROVIDER_OK ? "" : log_sanitize(res->error_message, msg, sizeof(msg)));
}

static void res_init(provider_call_res_t *res)
{
	memset(res, 0, sizeof(*res));
	res->duration = -1;
}

/* --- the vtable ----------------------------------------------------------- */

static int tw_place_call(provider_t *p, const provider_call_req_t *req, provider_call_res_t *res)
{
	static const char *const events[] = {"initiated", "ringing", "answered", "completed"};
	twilio_t *t = p->impl;
	form_buf_t form = {0};
	struct timespec t0;
	char path[160], timeout[16];
	int rc = PROVIDER_ERR_REJECTED;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	res_init(res);
	if (!str_ok(req->to, MAX_NUMBER_LEN) || !str_ok(req->from, MAX_NUMBER_LEN) ||
	    !str_ok(req->answer_url, MAX_URL_LEN) || !str_ok(req->status_url, MAX_URL_LEN)) {
		copy_str(res->error_code, sizeof(res->error_code), "bad_request");
		copy_str(res->error_message, sizeof(res->error_message),
			 "to, from, answer_url and status_url are required");
		goto out;
	}
	snprintf(path, sizeof(path), "/" TWILIO_API_VERSION "/Accounts/%s/Calls.json",
		 t->account_sid);
	if (form_buf_param(t->curl, &form, "To", req->to) < 0 ||
	    form_buf_param(t->curl, &form, "From", req->from) < 0 ||
	    form_buf_param(t->curl, &form, "Url", req->answer_url) < 0 ||
	    form_buf_param(t->curl, &form, "Method", "POST") < 0 ||
	    form_buf_param(t->curl, &form, "StatusCallback", req->status_url) < 0 ||
	    form_buf_param(t->curl, &form, "StatusCallbackMethod", "POST") < 0)
		goto oom;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
		if (form_buf_param(t->curl, &form, "StatusCallbackEvent", events[i]) < 0)
			goto oom;
	if (req->timeout_s > 0) {
		int s = req->timeout_s;

		s = s < RING_TIMEOUT_MIN_S ? RING_TIMEOUT_MIN_S : s;
		s = s > RING_TIMEOUT_MAX_S ? RING_TIMEOUT_MAX_S : s;
		snprintf(timeout, sizeof(timeout), "%d", s);
		if (form_buf_param(t->curl, &form, "Timeout", timeout) < 0)
			goto oom;
	}
	if (req->amd) {
		/* async: the call goes on at once, the verdict comes to amd_url */
		if (!str_ok(req->amd_url, MAX_URL_LEN)) {
			copy_str(res->error_code, sizeof(res->error_code), "bad_request");
			copy_str(res->error_message, sizeof(res->error_message),
				 "answering-machine detection needs its callback URL");
			goto out;
		}
		if (form_buf_param(t->curl, &form, "MachineDetection", "DetectMessageEnd") < 0 ||
		    form_buf_param(t->curl, &form, "AsyncAmd", "true") < 0 ||
		    form_buf_param(t->curl, &form, "AsyncAmdStatusCallback", req->amd_url) < 0 ||
		    form_buf_param(t->curl, &form, "AsyncAmdStatusCallbackMethod", "POST") < 0)
			goto oom;
	}
	rc = tw_request(t, path, form.data, res);
	goto out;
oom:
	rc = PROVIDER_ERR_TRANSIENT;
	copy_str(res->error_code, sizeof(res->error_code), "internal");
	copy_str(res->error_message, sizeof(res->error_message), "out of memory");
out:
	log_outcome("place_call", req->job_id, req->to, res->call_sid, rc, res, &t0);
	free(form.data);
	return rc;
}

/* POST (form non-NULL) or GET the Call resource of call_sid. */
static int tw_call_op(provider_t *p, const char *op, const char *call_sid, const char *form,
		      provider_call_res_t *res)
{
	twilio_t *t = p->impl;
	struct timespec t0;
	char path[192];
	int rc = PROVIDER_ERR_REJECTED;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	res_init(res);
	if (!sid_ok(call_sid)) {
		copy_str(res->error_code, sizeof(res->error_code), "bad_request");
		copy_str(res->error_message, sizeof(res->error_message), "malformed call sid");
		goto out;
	}
	snprintf(path, sizeof(path), "/" TWILIO_API_VERSION "/Accounts/%s/Calls/%s.json",
		 t->account_sid, call_sid);
	rc = tw_request(t, path, form, res);
out:
	log_outcome(op, 0, NULL, sid_ok(call_sid) ? call_sid : "-", rc, res, &t0);
	return rc;
}

static int tw_hangup(provider_t *p, const char *call_sid, provider_call_res_t *res)
{
	return tw_call_op(p, "hangup", call_sid, "Status=completed", res);
}

static int tw_fetch_status(provider_t *p, const char *call_sid, provider_call_res_t *res)
{
	return tw_call_op(p, "fetch_status", call_sid, NULL, res);
}

static int tw_redirect(provider_t *p, const char *call_sid, const char *url,
		       provider_call_res_t *res)
{
	twilio_t *t = p->impl;
	form_buf_t form = {0};
	int rc;

	if (!str_ok(url, MAX_URL_LEN)) {
		res_init(res);
		copy_str(res->error_code, sizeof(res->error_code), "bad_request");
		copy_str(res->error_message, sizeof(res->error_message), "a redirect needs a URL");
		return PROVIDER_ERR_REJECTED;
	}
	if (form_buf_param(t->curl, &form, "Url", url) < 0 ||
	    form_buf_param(t->curl, &form, "Method", "POST") < 0) {
		free(form.data);
		res_init(res);
		copy_str(res->error_code, sizeof(res->error_code), "internal");
		copy_str(res->error_message, sizeof(res->error_message), "out of memory");
		return PROVIDER_ERR_TRANSIENT;
	}
	rc = tw_call_op(p, "redirect", call_sid, form.data, res);
	free(form.data);
	return rc;
}

static void tw_free(provider_t *p)
{
	twilio_t *t = p->impl;

	if (t != NULL) {
		if (t->curl != NULL)
			curl_easy_cleanup(t->curl);
		if (t->auth_token != NULL) {
			OPENSSL_cleanse(t->auth_token, strlen(t->auth_token));
			free(t->auth_token);
		}
		free(t->base_url);
		free(t->account_sid);
		free(t->ca_file);
		free(t->answer);
		free(t);
	}
	free(p);
	curl_global_cleanup(); /* pairs with provider_twilio_new() */
}

static const provider_ops_t twilio_ops = {
    .name = "twilio",
    .place_call = tw_place_call,
    .hangup = tw_hangup,
    .fetch_status = tw_fetch_status,
    .redirect = tw_redirect,
    .free = tw_free,
};

provider_t *provider_twilio_new(const char *base_url, const char *account_sid,
				const char *auth_token, const char *ca_file)
{
	provider_t *p;
	twilio_t *t;
	size_t len;

	if (!str_ok(base_url, 512) || !sid_ok(account_sid) || !str_ok(auth_token, 256) ||
	    (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)) {
		log_error("twilio", "provider_twilio_new: missing or malformed base URL, account "
				    "sid or auth token");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("twilio", "curl_global_init failed");
		return NULL;
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		curl_global_cleanup();
		goto oom;
	}
	p->ops = &twilio_ops;
	p->impl = t = calloc(1, sizeof(*t));
	if (t == NULL)
		goto fail;
	len = strlen(base_url);
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	t->base_url = strndup(base_url, len);
	t->account_sid = strdup(account_sid);
	t->auth_token = strdup(auth_token);
	t->ca_file = ca_file != NULL && ca_file[0] != '\0' ? strdup(ca_file) : NULL;
	t->answer = malloc(ANSWER_MAX + 1);
	t->curl = curl_easy_init();
	t->connect_ms = DEFAULT_CONNECT_MS;
	t->total_ms = DEFAULT_TOTAL_MS;
	if (t->base_url == NULL || t->account_sid == NULL || t->auth_token == NULL ||
	    (ca_file != NULL && ca_file[0] != '\0' && t->ca_file == NULL) || t->answer == NULL ||
	    t->curl == NULL)
		goto fail;
	return p;
fail:
	tw_free(p);
oom:
	log_error("twilio", "provider_twilio_new: out of memory");
	return NULL;
}

void provider_twilio_set_timeouts(provider_t *p, long connect_ms, long total_ms)
{
	twilio_t *t;

	if (p == NULL || p->ops != &twilio_ops)
		return;
	t = p->impl;
	if (connect_ms > 0)
		t->connect_ms = connect_ms;
	if (total_ms > 0)
		t->total_ms = total_ms;
}
