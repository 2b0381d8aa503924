/*
 * twilio_verify.c - authenticating a Twilio webhook (API.md "Webhooks").
 *
 * Twilio signs the URL it was given (our DIALFLOW_PUBLIC_URL + path, plus the
 * query string) followed by the POST parameters sorted by name. The URL is
 * rebuilt from configuration, never from Host or X-Forwarded-* headers,
 * which a caller controls. Like Twilio's own validators, a URL whose port is
 * the scheme's default is also tried with the port left out (and the other
 * way round), because Twilio drops or keeps it depending on how the URL was
 * written.
 */
#include <stdio.h>
#include <string.h>

#include "dialflow/audit.h"
#include "dialflow/config.h"
#include "dialflow/log.h"
#include "dialflow/provider.h"
#include "dialflow/webhooks.h"

#define SIGNED_URL_MAX 4096

/*
 * The other spelling of base (scheme://host[:port][/prefix]) with respect to
 * its default port, into out. Returns false when there is none.
 */
static bool alt_port_base(const char *base, size_t blen, char *out, size_t outsz)
{
	const char *sep = strstr(base, "://");
	const char *host, *end, *colon = NULL;
	const char *dflt;
	int n;

	if (sep == NULL || (size_t)(sep - base) > blen)
		return false;
	if (strncmp(base, "https://", 8) == 0)
		dflt = "443";
	else if (strncmp(base, "http://", 7) == 0)
		dflt = "80";
	else
		return false;
	host = sep + 3;
	end = memchr(host, '/', blen - (size_t)(host - base));
	if (end == NULL)
		end = base + blen;
	for (const char *c = host; c < end; c++) {
		if (*c == ']')
			colon = NULL; /* an IPv6 literal's colons are not the port's */
		else if (*c == ':')
			colon = c;
	}
	if (colon != NULL) {
		if ((size_t)(end - colon - 1) != strlen(dflt) ||
		    strncmp(colon + 1, dflt, strlen(dflt)) != 0)
			return false;
		n = snprintf(out, outsz, "%.*s%.*s", (int)(colon - base), base,
			     (int)(blen - (size_t)(end - base)), end);
	} else {
		n = snprintf(out, outsz, "%.*s:%s%.*s", (int)(end - base), base, dflt,
			     (int)(blen - (size_t)(end - base)), end);
	}
	return n > 0 && (size_t)n < outsz;
}

/* The [SECURITY] line and its audit row (kept whatever the request does next). */
static void log_refusal(http_request_t *req, const char *why)
{
	char path[160];
	audit_event_t ev = {.tag = "SECURITY",
			    .action = "webhook.signature_failed",
			    .resource_type = "webhook",
			    .outcome = "denied"};

	log_warn("webhook", "%s twilio webhook refused reason=%s path=%s ip=%s req=%s",
		 LOG_TAG_SECURITY, why, log_sanitize(req->path, path, sizeof(path)),
		 req->remote_addr ? req->remote_addr : "-",
		 req->request_id ? req->request_id : "-");
	ev.details = json_arena(req->arena, json_pack("{s:s, s:s, s:s}", "provider", "twilio",
						      "reason", why, "path", path));
	audit_record_detached(req, &ev);
}

int webhook_twilio_verify(http_request_t *req, form_t *form, const char **why)
{
	const config_t *cfg = req->cfg;
	const char *token = cfg != NULL ? cfg->twilio_auth_token : NULL;
	const char *sig = http_env(req, "HTTP_X_TWILIO_SIGNATURE");
	const char *base = cfg != NULL && cfg->public_url != NULL ? cfg->public_url : "";
	const char *query = req->query != NULL ? req->query : "";
	const char *account;
	const char **names = NULL, **values = NULL;
	char url[SIGNED_URL_MAX], alt[SIGNED_URL_MAX];
	size_t blen = strlen(base);
	bool ok;
	int n;

	form->params = NULL;
	form->n = 0;
	if (token == NULL || token[0] == '\0') {
		*why = "auth_token_not_configured";
		log_refusal(req, *why);
		return WEBHOOK_FORBIDDEN;
	}
	if (sig == NULL || sig[0] == '\0') {
		*why = "missing_signature";
		log_refusal(req, *why);
		return WEBHOOK_FORBIDDEN;
	}
	if (form_parse(req->arena, req->body, req->body_len, form, why) < 0) {
		log_refusal(req, "malformed_form");
		return WEBHOOK_BAD_FORM;
	}
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	n = snprintf(url, sizeof(url), "%.*s%s%s%s", (int)blen, base, req->path,
		     query[0] ? "?" : "", query);
	if (n < 0 || (size_t)n >= sizeof(url) || blen == 0) {
		*why = "url_too_long";
		log_refusal(req, *why);
		return WEBHOOK_FORBIDDEN;
	}
	form_arrays(req->arena, form, &names, &values);
	ok = twilio_signature_check(token, url, names, values, form->n, sig);
	if (!ok && alt_port_base(base, blen, alt, sizeof(alt))) {
		n = snprintf(url, sizeof(url), "%s%s%s%s", alt, req->path, query[0] ? "?" : "",
			     query);
		ok = n > 0 && (size_t)n < sizeof(url) &&
		     twilio_signature_check(token, url, names, values, form->n, sig);
	}
	if (!ok) {
		*why = "bad_signature";
		log_refusal(req, *why);
		return WEBHOOK_FORBIDDEN;
	}
	/* Signed with our token, so from our account; a different AccountSid is
	 * a misconfiguration (or a leaked token) worth refusing loudly. */
	account = form_get(form, "AccountSid");
	if (account != NULL && cfg->twilio_account_sid != NULL &&
	    cfg->twilio_account_sid[0] != '\0' && strcmp(account, cfg->twilio_account_sid) != 0) {
		*why = "account_mismatch";
		log_refusal(req, *why);
		return WEBHOOK_FORBIDDEN;
	}
	*why = NULL;
	return WEBHOOK_VERIFIED;
}
