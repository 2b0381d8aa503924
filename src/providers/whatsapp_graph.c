/*
 * whatsapp_graph.c - the WhatsApp Cloud API sender over libcurl:
 *
 *   POST {base}/{version}/{phone_number_id}/messages
 *   Authorization: Bearer <access token>      (libcurl's CURLAUTH_BEARER)
 *   Content-Type: application/json
 *   {"messaging_product":"whatsapp","recipient_type":"individual","to":WA_ID,
 *    "type":T, T:{...}}
 *
 * and Meta's answer {"messaging_product":"whatsapp","contacts":[...],
 * "messages":[{"id":"wamid...."}]} or {"error":{"message","type","code",
 * "error_subcode","error_data":{"details"},"fbtrace_id","is_transient"}}.
 *
 * Outcomes: 2xx with messages[0].id is OK. 5xx, 429, a network failure, a
 * time-out, and Meta errors that are transient by nature (rate limits,
 * "service unavailable", or is_transient) are TRANSIENT. Any other 4xx is
 * PERMANENT. A 2xx without a message id is TRANSIENT (the message may have
 * gone out: at-least-once, like a time-out after the request was sent).
 * The token and the bodies are never logged.
 */
#include "config.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/log.h"
#include "dialflow/whatsapp.h"

#define ANSWER_MAX	   (64 * 1024)
#define DEFAULT_CONNECT_MS 3000L
#define DEFAULT_TOTAL_MS   10000L
#define MAX_BASE_LEN	   512
#define MAX_TOKEN_LEN	   4096
#define MAX_PNID_LEN	   32
#define MAX_WA_ID_LEN	   20

struct wa_graph {
	CURL *curl;
	char *base_url; /* without a trailing slash */
	char *version;
	char *ca_file; /* NULL: the system's CA store */
	long connect_ms;
	long total_ms;
	char errbuf[CURL_ERROR_SIZE];
	char *answer; /* ANSWER_MAX + 1 bytes, reused */
	size_t answer_len;
	bool overflow;
};

static bool digits(const char *s, size_t max)
{
	size_t n = s ? strspn(s, "0123456789") : 0;

	return n > 0 && n <= max && s[n] == '\0';
}

/* "v21.0": 'v', 1-3 digits, '.', 1-3 digits. */
static bool version_ok(const char *v)
{
	size_t a, b;

	if (v == NULL || v[0] != 'v')
		return false;
	a = strspn(v + 1, "0123456789");
	if (a == 0 || a > 3 || v[1 + a] != '.')
		return false;
	b = strspn(v + 2 + a, "0123456789");
	return b > 0 && b <= 3 && v[2 + a + b] == '\0';
}

/* A bearer token: visible ASCII, no spaces (it goes into a header). */
static bool token_ok(const char *t)
{
	size_t n = t ? strlen(t) : 0;

	if (n == 0 || n > MAX_TOKEN_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return false;
	return true;
}

static void copy_str(char *dst, size_t dstsz, const char *src)
{
	snprintf(dst, dstsz, "%s", src ? src : "");
}

static size_t on_answer(char *ptr, size_t size, size_t nmemb, void *arg)
{
	wa_graph_t *g = arg;
	size_t n = size * nmemb;

	if (n > ANSWER_MAX - g->answer_len) {
		g->overflow = true;
		return 0;
	}
	memcpy(g->answer + g->answer_len, ptr, n);
	g->answer_len += n;
	return n;
}

/* Meta error codes that say "try again later", whatever the HTTP status. */
static bool meta_transient(long long code)
{
	static const long long codes[] = {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == code)
			return true;
	return false;
}

/* Fill res's error fields from Meta's {"error":{...}}. Returns whether Meta called it transient. */
static bool read_error(const json_t *answer, wa_send_result_t *res)
{
	const json_t *e = json_object_get(answer, "error");
	const json_t *code = json_object_get(e, "code");
	const json_t *sub = json_object_get(e, "error_subcode");

	if (!json_is_object(e))
		return false;
	if (json_is_integer(code))
		res->err_code = json_integer_value(code);
	if (json_is_integer(sub))
		res->err_subcode = json_integer_value(sub);
	copy_str(res->err_type, sizeof(res->err_type),
		 json_string_value(json_object_get(e, "type")));
	copy_str(res->err_message, sizeof(res->err_message),
		 json_string_value(json_object_get(e, "message")));
	copy_str(res->err_details, sizeof(res->err_details),
		 json_string_value(json_object_get(json_object_get(e, "error_data"), "details")));
	copy_str(res->fbtrace_id, sizeof(res->fbtrace_id),
		 json_string_value(json_object_get(e, "fbtrace_id")));
	return json_is_true(json_object_get(e, "is_transient")) || meta_transient(res->err_code);
}

static const char *outcome_name(int rc)
{
	return rc == WA_SEND_OK ? "ok" : rc == WA_SEND_TRANSIENT ? "transient" : "permanent";
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

json_t *wa_send_error_json(const wa_send_result_t *res)
{
	json_t *e = json_pack("{s:i,s:s}", "http_status", res->http_status, "class",
			      res->why[0] ? res->why : "error");

	if (e == NULL)
		return NULL;
	if (res->err_code != 0)
		json_object_set_new(e, "code", json_integer(res->err_code));
	if (res->err_subcode != 0)
		json_object_set_new(e, "error_subcode", json_integer(res->err_subcode));
	if (res->err_type[0])
		json_object_set_new(e, "type", json_string(res->err_type));
	if (res->err_message[0])
		json_object_set_new(e, "message", json_string(res->err_message));
	if (res->err_details[0])
		json_object_set_new(e, "details", json_string(res->err_details));
	if (res->fbtrace_id[0])
		json_object_set_new(e, "fbtrace_id", json_string(res->fbtrace_id));
	return e;
}

/* The request body: the payload plus the envelope fields (which win). Caller frees. */
static char *build_body(const char *to, const json_t *message)
{
	json_t *m = json_copy((json_t *)message);
	char *body = NULL;

	if (m == NULL)
		return NULL;
	if (json_object_set_new(m, "messaging_product", json_string("whatsapp")) == 0 &&
	    json_object_set_new(m, "recipient_type", json_string("individual")) == 0 &&
	    json_object_set_new(m, "to", json_string(to)) == 0)
		body = json_dumps(m, JSON_COMPACT);
	json_decref(m);
	return body;
}

int wa_graph_send(wa_graph_t *g, const char *phone_number_id, const char *access_token,
		  const char *to, const json_t *message, wa_send_result_t *res)
{
	struct curl_slist *headers = NULL;
	struct timespec t0;
	char url[MAX_BASE_LEN + 96], masked[40], msg[128];
	const char *type = json_string_value(json_object_get(message, "type"));
	json_t *answer = NULL;
	char *body = NULL;
	long http = 0;
	CURLcode cc;
	int rc = WA_SEND_PERMANENT;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	if (g == NULL || !digits(phone_number_id, MAX_PNID_LEN) || !digits(to, MAX_WA_ID_LEN) ||
	    !token_ok(access_token) || type == NULL ||
	    !json_is_object(json_object_get(message, type))) {
		copy_str(res->why, sizeof(res->why), "bad_request");
		copy_str(res->err_message, sizeof(res->err_message),
			 "a phone number id, an access token, a wa_id and a {type, <type>:{}} "
			 "message are required");
		goto out;
	}
	snprintf(url, sizeof(url), "%s/%s/%s/messages", g->base_url, g->version, phone_number_id);
	body = build_body(to, message);
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (headers != NULL)
		headers = curl_slist_append(headers, "Accept: application/json");
	if (body == NULL || headers == NULL) {
		rc = WA_SEND_TRANSIENT;
		copy_str(res->why, sizeof(res->why), "out_of_memory");
		goto out;
	}
	curl_easy_reset(g->curl);
	g->answer_len = 0;
	g->overflow = false;
	g->errbuf[0] = '\0';
	curl_easy_setopt(g->curl, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(g->curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(g->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(g->curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
	curl_easy_setopt(g->curl, CURLOPT_XOAUTH2_BEARER, access_token);
	curl_easy_setopt(g->curl, CURLOPT_CONNECTTIMEOUT_MS, g->connect_ms);
	curl_easy_setopt(g->curl, CURLOPT_TIMEOUT_MS, g->total_ms);
	curl_easy_setopt(g->curl, CURLOPT_ERRORBUFFER, g->errbuf);
	curl_easy_setopt(g->curl, CURLOPT_USERAGENT, "dialflow/" PACKAGE_VERSION);
	curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, on_answer);
	curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, g);
	curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	if (g->ca_file != NULL)
		curl_easy_setopt(g->curl, CURLOPT_CAINFO, g->ca_file);
	cc = curl_easy_perform(g->curl);
	curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &http);
	res->http_status = (int)http;
	if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && g->overflow && http > 0)) {
		rc = WA_SEND_TRANSIENT;
		res->http_status = 0;
		copy_str(res->why, sizeof(res->why),
			 cc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "network");
		copy_str(res->err_message, sizeof(res->err_message),
			 g->errbuf[0] ? g->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	g->answer[g->answer_len] = '\0';
	if (!g->overflow)
		answer = json_loadb(g->answer, g->answer_len, JSON_REJECT_DUPLICATES, NULL);
	if (http >= 200 && http < 300) {
		const char *id = json_string_value(
		    json_object_get(json_array_get(json_object_get(answer, "messages"), 0), "id"));

		if (id != NULL && id[0] != '\0' && strlen(id) < sizeof(res->wamid)) {
			copy_str(res->wamid, sizeof(res->wamid), id);
			rc = WA_SEND_OK;
		} else {
			rc = WA_SEND_TRANSIENT;
			copy_str(res->why, sizeof(res->why), "bad_answer");
			copy_str(res->err_message, sizeof(res->err_message),
				 "the answer carries no messages[0].id");
		}
		goto out;
	}
	snprintf(res->why, sizeof(res->why), "http_%ld", http);
	if (read_error(json_is_object(answer) ? answer : NULL, res) || http == 429 || http >= 500)
		rc = WA_SEND_TRANSIENT;
	else
		rc = WA_SEND_PERMANENT;
out:
	log_msg(rc == WA_SEND_OK ? LOG_INFO : LOG_WARN, "whatsapp",
		"op=send type=%s to=%s outcome=%s http=%d class=%s code=%lld dur_ms=%.1f%s%s",
		type ? type : "-", log_mask_phone(to, masked, sizeof(masked)), outcome_name(rc),
		res->http_status, res->why[0] ? res->why : "-", res->err_code, ms_since(&t0),
		rc == WA_SEND_OK ? "" : " msg=",
		rc == WA_SEND_OK ? "" : log_sanitize(res->err_message, msg, sizeof(msg)));
	json_decref(answer);
	curl_slist_free_all(headers);
	free(body);
	return rc;
}

void wa_graph_free(wa_graph_t *g)
{
	if (g == NULL)
		return;
	if (g->curl != NULL)
		curl_easy_cleanup(g->curl);
	free(g->base_url);
	free(g->version);
	free(g->ca_file);
	free(g->answer);
	free(g);
	curl_global_cleanup(); /* pairs with wa_graph_new() */
}

wa_graph_t *wa_graph_new(const char *base_url, const char *version, const char *ca_file)
{
	wa_graph_t *g;
	size_t len;

	if (base_url == NULL || strlen(base_url) == 0 || strlen(base_url) > MAX_BASE_LEN ||
	    (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0) ||
	    !version_ok(version)) {
		log_error("whatsapp", "wa_graph_new: the Graph URL must be http(s)://... and the "
				      "version like v21.0");
		return NULL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("whatsapp", "curl_global_init failed");
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		curl_global_cleanup();
		log_error("whatsapp", "wa_graph_new: out of memory");
		return NULL;
	}
	len = strlen(base_url);
	while (len > 0 && base_url[len - 1] == '/')
		len--;
	g->base_url = strndup(base_url, len);
	g->version = strdup(version);
	g->ca_file = ca_file != NULL && ca_file[0] != '\0' ? strdup(ca_file) : NULL;
	g->answer = malloc(ANSWER_MAX + 1);
	g->curl = curl_easy_init();
	g->connect_ms = DEFAULT_CONNECT_MS;
	g->total_ms = DEFAULT_TOTAL_MS;
	if (g->base_url == NULL || g->version == NULL || g->answer == NULL || g->curl == NULL ||
	    (ca_file != NULL && ca_file[0] != '\0' && g->ca_file == NULL)) {
		wa_graph_free(g);
		log_error("whatsapp", "wa_graph_new: out of memory");
		return NULL;
	}
	return g;
}

void wa_graph_set_timeouts(wa_graph_t *g, long connect_ms, long total_ms)
{
	if (g == NULL)
		return;
	if (connect_ms > 0)
		g->connect_ms = connect_ms;
	if (total_ms > 0)
		g->total_ms = total_ms;
}
