/*
 * reply.c - one inbound WhatsApp Cloud API message reduced to a flow_reply_t
 * (see flow.h). Every field is looked up with its type checked; anything of
 * the wrong type is simply absent, and lengths are bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"
#include "dialflow/log.h"

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		log_error("flow", "out of memory");
		abort();
	}
	return p;
}

/* A copy of s cut to at most max bytes, at a character boundary. */
static char *dup_bounded(const char *s, size_t max)
{
	size_t len = strlen(s);
	char *out;

	if (len > max) {
		len = max;
		/* Back up over continuation bytes so no character is split. */
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
	}
	out = xmalloc(len + 1);
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/* The string at obj[key], or NULL when absent or not a string. */
static const char *get_str(const json_t *obj, const char *key)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Set *dst to a bounded copy of obj[key] when it is a non-empty string. */
static void take_text(char **dst, const json_t *obj, const char *key)
{
	const char *s = get_str(obj, key);

	if (s != NULL && s[0] != '\0' && *dst == NULL)
		*dst = dup_bounded(s, FLOW_REPLY_TEXT_MAX);
}

/* Set *dst to a copy of obj[key] when it is a non-empty string of at most FLOW_REPLY_ID_MAX
 * bytes. A longer id is dropped rather than cut: a cut id could match another one. */
static void take_id(char **dst, const json_t *obj, const char *key)
{
	const char *s = get_str(obj, key);
	size_t len = s != NULL ? strlen(s) : 0;

	if (len > 0 && len <= FLOW_REPLY_ID_MAX && *dst == NULL)
		*dst = dup_bounded(s, FLOW_REPLY_ID_MAX);
}

static void set_type(flow_reply_t *r, const char *type)
{
	snprintf(r->type, sizeof(r->type), "%s", type);
}

/* Latitude/longitude as numbers (Meta sends numbers; strings are refused), and the optional
 * descriptive strings. */
static json_t *parse_location(const json_t *loc)
{
	static const char *const strs[] = {"name", "address", "url"};
	const json_t *lat = json_object_get(loc, "latitude");
	const json_t *lng = json_object_get(loc, "longitude");
	json_t *out;
	double la, lo;

	if (!json_is_number(lat) || !json_is_number(lng))
		return NULL;
	la = json_number_value(lat);
	lo = json_number_value(lng);
	if (!(la >= -90.0 && la <= 90.0) || !(lo >= -180.0 && lo <= 180.0))
		return NULL;
	out = json_pack("{s:f,s:f}", "latitude", la, "longitude", lo);
	for (size_t i = 0; out != NULL && i < sizeof(strs) / sizeof(strs[0]); i++) {
		const char *s = get_str(loc, strs[i]);

		if (s != NULL) {
			char *c = dup_bounded(s, 1024);

			json_object_set_new(out, strs[i], json_string(c));
			free(c);
		}
	}
	return out;
}

/* interactive.nfm_reply.response_json is a JSON document in a string; only an object counts. */
static json_t *parse_flow_response(const json_t *nfm)
{
	const json_t *rj = json_object_get(nfm, "response_json");
	json_t *v;

	if (json_is_object(rj)) /* tolerate a sender that already decoded it */
		return json_deep_copy(rj);
	if (!json_is_string(rj) || json_string_length(rj) > FLOW_REPLY_JSON_MAX)
		return NULL;
	v = json_loadb(json_string_value(rj), json_string_length(rj), JSON_REJECT_DUPLICATES, NULL);
	if (v != NULL && !json_is_object(v)) {
		json_decref(v);
		v = NULL;
	}
	return v;
}

static void parse_interactive(flow_reply_t *r, const json_t *ia)
{
	const char *sub = get_str(ia, "type");
	const json_t *body;

	if (sub == NULL)
		goto unsupported;
	if (strcmp(sub, "button_reply") == 0 || strcmp(sub, "list_reply") == 0) {
		body = json_object_get(ia, sub);
		if (!json_is_object(body))
			goto unsupported;
		take_id(&r->interactive_id, body, "id");
		take_text(&r->text, body, "title");
	} else if (strcmp(sub, "nfm_reply") == 0) {
		body = json_object_get(ia, "nfm_reply");
		if (!json_is_object(body))
			goto unsupported;
		r->flow_response = parse_flow_response(body);
	} else {
		goto unsupported;
	}
	snprintf(r->subtype, sizeof(r->subtype), "%s", sub);
	return;
unsupported:
	set_type(r, "unsupported");
}

static void parse_media(flow_reply_t *r, const json_t *media)
{
	take_id(&r->media_id, media, "id");
	take_text(&r->text, media, "caption");
	{
		const char *mime = get_str(media, "mime_type");

		if (mime != NULL && strlen(mime) <= 255)
			r->media_mime = dup_bounded(mime, 255);
	}
}

void flow_reply_init_text(flow_reply_t *out, const char *text)
{
	memset(out, 0, sizeof(*out));
	set_type(out, "text");
	if (text != NULL)
		out->text = dup_bounded(text, FLOW_REPLY_TEXT_MAX);
}

int flow_reply_parse(const json_t *msg, flow_reply_t *out)
{
	static const char *const media[] = {"image", "document", "audio", "video", "sticker"};
	const char *type;
	const json_t *body;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	set_type(out, "unsupported");
	type = get_str(msg, "type");
	if (type == NULL) {
		rc = -1;
		goto out;
	}
	body = json_object_get(msg, type);
	if (strcmp(type, "text") == 0) {
		set_type(out, "text");
		take_text(&out->text, body, "body");
		goto out;
	}
	if (strcmp(type, "interactive") == 0) {
		set_type(out, "interactive");
		if (json_is_object(body))
			parse_interactive(out, body);
		else
			set_type(out, "unsupported");
		goto out;
	}
	if (strcmp(type, "button") == 0) { /* a template's quick-reply button */
		set_type(out, "button");
		take_text(&out->text, body, "text");
		take_id(&out->interactive_id, body, "payload");
		goto out;
	}
	for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
		if (strcmp(type, media[i]) == 0) {
			set_type(out, media[i]);
			if (json_is_object(body))
				parse_media(out, body);
			goto out;
		}
	}
	if (strcmp(type, "location") == 0) {
		set_type(out, "location");
		if (json_is_object(body))
			out->location = parse_location(body);
		goto out;
	}
	if (strcmp(type, "contacts") == 0) {
		set_type(out, "contacts");
		if (json_is_array(body) && json_array_size(body) <= 100)
			out->contacts = json_deep_copy(body);
		goto out;
	}
	if (strcmp(type, "reaction") == 0) {
		set_type(out, "reaction");
		if (json_is_object(body)) {
			out->reaction = json_object();
			if (get_str(body, "message_id") != NULL &&
			    strlen(get_str(body, "message_id")) <= FLOW_REPLY_ID_MAX)
				json_object_set_new(out->reaction, "message_id",
						    json_string(get_str(body, "message_id")));
			if (get_str(body, "emoji") != NULL && strlen(get_str(body, "emoji")) <= 64)
				json_object_set_new(out->reaction, "emoji",
						    json_string(get_str(body, "emoji")));
		}
		goto out;
	}
	/* order, system, unknown, ephemeral, ...: nothing a flow can use */
out:
	return rc;
}

void flow_reply_free(flow_reply_t *r)
{
	if (r == NULL)
		return;
	free(r->text);
	free(r->interactive_id);
	free(r->media_id);
	free(r->media_mime);
	json_decref(r->location);
	json_decref(r->contacts);
	json_decref(r->reaction);
	json_decref(r->flow_response);
	memset(r, 0, sizeof(*r));
}
