/*
 * validate.c - whole-definition validation (see flow_validate() in flow.h).
 *
 * Every rule appends its problem and goes on, so an author sees all of them
 * at once. Paths name the offending value the way a JavaScript reader would
 * ("steps[2].config.reply_config.expected_type"). Lengths are WhatsApp's
 * limits in characters. A string holding "{{" cannot be measured before it
 * is rendered ("{{ contact.name | title }}" is longer as written than most
 * names), so it is only held to TEMPLATE_MAX; the engine clamps the rendered
 * text to WhatsApp's limit.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "dialflow/flow.h"

#define PATHSZ	     512
#define TEMPLATE_MAX 4096 /* characters of a string holding template tags */

typedef struct vctx {
	json_t *problems;
	size_t n;
} vctx_t;

static void add(vctx_t *v, const char *path, const char *msg)
{
	v->n += flow_problem_add(v->problems, path, msg);
}

/* snprintf into a path buffer; a path that does not fit is cut (paths are bounded by
 * FLOW_NAME_MAX-sized keys and small indexes, so this does not happen in practice). */
static const char *pathf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *pathf(char *buf, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, PATHSZ, fmt, ap);
	va_end(ap);
	if (n < 0)
		buf[0] = '\0';
	return buf;
}

/* path + "." + key into buf. */
static const char *join(char *buf, const char *path, const char *key)
{
	if (path[0] == '\0')
		return pathf(buf, "%s", key);
	return pathf(buf, "%s.%s", path, key);
}

/* path + "[i]" (and "." + key when key is not NULL) into buf. */
static const char *idx(char *buf, const char *path, size_t i, const char *key)
{
	if (key != NULL)
		return pathf(buf, "%s[%zu].%s", path, i, key);
	return pathf(buf, "%s[%zu]", path, i);
}

static bool blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

/*
 * A string at obj[key]: required or not, 1..max characters (min 0 allows "").
 * Returns the string, or NULL when absent or wrong (the problem is recorded).
 */
static const char *check_str(vctx_t *v, const json_t *obj, const char *path, const char *key,
			     bool required, size_t min, size_t max)
{
	char p[PATHSZ], msg[96];
	const json_t *s = json_object_get(obj, key);
	size_t len;

	join(p, path, key);
	if (s == NULL) {
		if (required)
			add(v, p, "is required");
		return NULL;
	}
	if (!json_is_string(s)) {
		add(v, p, "must be a string");
		return NULL;
	}
	len = flow_utf8_len(json_string_value(s));
	if (flow_template_has_tags(json_string_value(s)) && max < TEMPLATE_MAX)
		max = TEMPLATE_MAX;
	if ((min > 0 && (len < min || blank(json_string_value(s)))) || len > max) {
		if (min > 0)
			snprintf(msg, sizeof(msg), "must be %zu to %zu characters, not blank", min,
				 max);
		else
			snprintf(msg, sizeof(msg), "must be at most %zu characters", max);
		add(v, p, msg);
		return NULL;
	}
	return json_string_value(s);
}

/* An object at obj[key]; NULL when absent or not an object (recorded when required/wrong). */
static const json_t *check_obj(vctx_t *v, const json_t *obj, const char *path, const char *key,
			       bool required)
{
	char p[PATHSZ];
	const json_t *o = json_object_get(obj, key);

	if (o == NULL) {
		if (required)
			add(v, join(p, path, key), "is required");
		return NULL;
	}
	if (!json_is_object(o)) {
		add(v, join(p, path, key), "must be an object");
		return NULL;
	}
	return o;
}

static void check_bool(vctx_t *v, const json_t *obj, const char *path, const char *key)
{
	char p[PATHSZ];
	const json_t *b = json_object_get(obj, key);

	if (b != NULL && !json_is_boolean(b))
		add(v, join(p, path, key), "must be true or false");
}

/* A context variable name: [A-Za-z_][A-Za-z0-9_]*, at most FLOW_NAME_MAX bytes. */
static bool identifier(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > FLOW_NAME_MAX || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static void check_identifier(vctx_t *v, const json_t *obj, const char *path, const char *key,
			     bool required)
{
	char p[PATHSZ];
	const char *s = check_str(v, obj, path, key, required, 1, FLOW_NAME_MAX);

	if (s != NULL && !identifier(s))
		add(v, join(p, path, key),
		    "must be a variable name (letters, digits and '_', not starting with a digit)");
}

static void check_regex(vctx_t *v, const json_t *obj, const char *path, const char *key)
{
	char p[PATHSZ], msg[96];
	const char *s = check_str(v, obj, path, key, false, 1, FLOW_REGEX_MAX), *why;
	regex_t re;

	if (s == NULL)
		return;
	if (flow_regex_compile(&re, s, REG_NOSUB, &why) < 0) {
		snprintf(msg, sizeof(msg), "regular expression %s", why);
		add(v, join(p, path, key), msg);
		return;
	}
	regfree(&re);
}

/* Whether s is one of the NULL-terminated list. */
static bool one_of(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

/* A string that is one template tag (so it renders into an array at run time). */
static bool dynamic(const json_t *x)
{
	return json_is_string(x) && flow_template_has_tags(json_string_value(x));
}

/* ---- messages ------------------------------------------------------------- */

static void check_header_footer(vctx_t *v, const json_t *ia, const char *path)
{
	char p[PATHSZ];
	const json_t *h = check_obj(v, ia, path, "header", false);
	const json_t *f = check_obj(v, ia, path, "footer", false);
	static const char *const htypes[] = {"text", "image", "video", "document", NULL};

	if (h != NULL) {
		const char *t = check_str(v, h, join(p, path, "header"), "type", true, 1, 16);
		char hp[PATHSZ];

		join(hp, path, "header");
		if (t != NULL && !one_of(t, htypes))
			add(v, join(p, hp, "type"), "must be text, image, video or document");
		else if (t != NULL && strcmp(t, "text") == 0)
			(void)check_str(v, h, hp, "text", true, 1, FLOW_WA_HEADER_MAX);
	}
	if (f != NULL)
		(void)check_str(v, f, join(p, path, "footer"), "text", true, 1, FLOW_WA_FOOTER_MAX);
}

static void check_buttons(vctx_t *v, const json_t *action, const char *path)
{
	char p[PATHSZ], bp[PATHSZ], rp[PATHSZ];
	const json_t *buttons = json_object_get(action, "buttons"), *b;
	size_t i;

	join(p, path, "buttons");
	if (buttons == NULL) {
		add(v, p, "is required");
		return;
	}
	if (dynamic(buttons))
		return;
	if (!json_is_array(buttons) || json_array_size(buttons) == 0 ||
	    json_array_size(buttons) > FLOW_WA_BUTTONS_MAX) {
		add(v, p, "must be a list of 1 to 3 buttons");
		return;
	}
	json_array_foreach(buttons, i, b)
	{
		const json_t *reply;
		const char *id;

		idx(bp, p, i, NULL);
		if (!json_is_object(b)) {
			add(v, bp, "must be an object");
			continue;
		}
		if (json_object_get(b, "type") != NULL &&
		    !(json_is_string(json_object_get(b, "type")) &&
		      strcmp(json_string_value(json_object_get(b, "type")), "reply") == 0))
			add(v, join(rp, bp, "type"), "must be \"reply\"");
		reply = check_obj(v, b, bp, "reply", true);
		if (reply == NULL)
			continue;
		join(rp, bp, "reply");
		id = check_str(v, reply, rp, "id", true, 1, FLOW_WA_BUTTON_ID_MAX);
		(void)check_str(v, reply, rp, "title", true, 1, FLOW_WA_BUTTON_TITLE_MAX);
		for (size_t k = 0; id != NULL && k < i; k++) {
			const json_t *other = json_object_get(json_array_get(buttons, k), "reply");
			const json_t *oid = json_object_get(other, "id");

			if (json_is_string(oid) && strcmp(json_string_value(oid), id) == 0) {
				char ip[PATHSZ];

				add(v, join(ip, rp, "id"), "duplicates another button's id");
				break;
			}
		}
	}
}

static void check_list(vctx_t *v, const json_t *action, const char *path)
{
	char p[PATHSZ], sp[PATHSZ], rp[PATHSZ], tmp[PATHSZ];
	const json_t *sections = json_object_get(action, "sections"), *sec;
	size_t i, total = 0;
	bool counted = true;

	(void)check_str(v, action, path, "button", true, 1, FLOW_WA_LIST_BUTTON_MAX);
	join(p, path, "sections");
	if (sections == NULL) {
		add(v, p, "is required");
		return;
	}
	if (dynamic(sections))
		return;
	if (!json_is_array(sections) || json_array_size(sections) == 0 ||
	    json_array_size(sections) > FLOW_WA_SECTIONS_MAX) {
		add(v, p, "must be a list of 1 to 10 sections");
		return;
	}
	json_array_foreach(sections, i, sec)
	{
		const json_t *rows, *row;
		size_t k;

		idx(sp, p, i, NULL);
		if (!json_is_object(sec)) {
			add(v, sp, "must be an object");
			continue;
		}
		(void)check_str(v, sec, sp, "title", json_array_size(sections) > 1, 1,
				FLOW_WA_SECTION_TITLE_MAX);
		rows = json_object_get(sec, "rows");
		join(rp, sp, "rows");
		if (rows == NULL) {
			add(v, rp, "is required");
			continue;
		}
		if (dynamic(rows)) {
			counted = false;
			continue;
		}
		if (!json_is_array(rows) || json_array_size(rows) == 0) {
			add(v, rp, "must be a non-empty list of rows");
			continue;
		}
		total += json_array_size(rows);
		json_array_foreach(rows, k, row)
		{
			const char *id;

			idx(tmp, rp, k, NULL);
			if (!json_is_object(row)) {
				add(v, tmp, "must be an object");
				continue;
			}
			id = check_str(v, row, tmp, "id", true, 1, FLOW_WA_ROW_ID_MAX);
			(void)check_str(v, row, tmp, "title", true, 1, FLOW_WA_ROW_TITLE_MAX);
			(void)check_str(v, row, tmp, "description", false, 0, FLOW_WA_ROW_DESC_MAX);
			if (id == NULL)
				continue;
			/* ids are unique across the whole list */
			for (size_t si = 0; si <= i; si++) {
				const json_t *orows =
				    json_object_get(json_array_get(sections, si), "rows");
				size_t lim = si == i ? k : json_array_size(orows);
				bool dup = false;

				for (size_t ok = 0; json_is_array(orows) && ok < lim; ok++) {
					const json_t *oid =
					    json_object_get(json_array_get(orows, ok), "id");

					if (json_is_string(oid) &&
					    strcmp(json_string_value(oid), id) == 0) {
						dup = true;
						break;
					}
				}
				if (dup) {
					char ip[PATHSZ];

					add(v, join(ip, tmp, "id"), "duplicates another row's id");
					break;
				}
			}
		}
	}
	if (counted && total > FLOW_WA_ROWS_MAX)
		add(v, p, "hold more than 10 rows in total");
}

static void check_flow_action(vctx_t *v, const json_t *action, const char *path)
{
	static const char *const actions[] = {"navigate", "data_exchange", NULL};
	const json_t *params = check_obj(v, action, path, "parameters", true);
	char p[PATHSZ], tmp[PATHSZ];
	const char *fa;

	if (params == NULL)
		return;
	join(p, path, "parameters");
	(void)check_str(v, params, p, "flow_id", true, 1, 200);
	(void)check_str(v, params, p, "flow_cta", true, 1, FLOW_WA_FLOW_CTA_MAX);
	(void)check_str(v, params, p, "flow_token", false, 1, 1000);
	fa = check_str(v, params, p, "flow_action", false, 1, 32);
	if (fa != NULL && !one_of(fa, actions))
		add(v, join(tmp, p, "flow_action"), "must be navigate or data_exchange");
}

static void check_interactive(vctx_t *v, const json_t *ia, const char *path)
{
	static const char *const types[] = {"button", "list", "flow", NULL};
	char p[PATHSZ];
	const char *t = check_str(v, ia, path, "type", true, 1, 16);
	const json_t *body = check_obj(v, ia, path, "body", true), *action;

	if (t != NULL && !one_of(t, types)) {
		add(v, join(p, path, "type"), "must be button, list or flow");
		t = NULL;
	}
	if (body != NULL)
		(void)check_str(v, body, join(p, path, "body"), "text", true, 1,
				FLOW_WA_INTERACTIVE_BODY_MAX);
	check_header_footer(v, ia, path);
	action = check_obj(v, ia, path, "action", true);
	if (action == NULL || t == NULL)
		return;
	join(p, path, "action");
	if (strcmp(t, "button") == 0)
		check_buttons(v, action, p);
	else if (strcmp(t, "list") == 0)
		check_list(v, action, p);
	else
		check_flow_action(v, action, p);
}

static void check_media(vctx_t *v, const json_t *m, const char *path, const char *type)
{
	char p[PATHSZ];
	const char *link = check_str(v, m, path, "link", false, 1, 2048);
	const char *id = check_str(v, m, path, "id", false, 1, FLOW_REPLY_ID_MAX);

	if (link == NULL && id == NULL && json_object_get(m, "link") == NULL &&
	    json_object_get(m, "id") == NULL)
		add(v, path, "needs a link or an id");
	if (link != NULL && !flow_template_has_tags(link) && strncmp(link, "https://", 8) != 0 &&
	    strncmp(link, "http://", 7) != 0)
		add(v, join(p, path, "link"), "must be an http(s) URL");
	if (strcmp(type, "audio") != 0)
		(void)check_str(v, m, path, "caption", false, 0, FLOW_WA_CAPTION_MAX);
	if (strcmp(type, "document") == 0)
		(void)check_str(v, m, path, "filename", false, 1, 240);
}

/* A send_message config, or a message_config: {message_type, <message_type>: {...}}. */
static void check_message(vctx_t *v, const json_t *msg, const char *path)
{
	static const char *const types[] = {"text",  "image",	    "document", "audio",
					    "video", "interactive", NULL};
	char p[PATHSZ];
	const char *t = check_str(v, msg, path, "message_type", true, 1, 32);
	const json_t *body;

	if (t == NULL)
		return;
	if (!one_of(t, types)) {
		add(v, join(p, path, "message_type"),
		    "must be text, image, document, audio, video or interactive");
		return;
	}
	body = check_obj(v, msg, path, t, true);
	if (body == NULL)
		return;
	join(p, path, t);
	if (strcmp(t, "text") == 0) {
		(void)check_str(v, body, p, "body", true, 1, FLOW_WA_TEXT_BODY_MAX);
		check_bool(v, body, p, "preview_url");
	} else if (strcmp(t, "interactive") == 0) {
		check_interactive(v, body, p);
	} else {
		check_media(v, body, p, t);
	}
}

/* ---- steps ---------------------------------------------------------------- */

static void check_switch_config(vctx_t *v, const json_t *cfg, const char *path)
{
	(void)check_str(v, cfg, path, "target_flow_name", true, 1, FLOW_NAME_MAX);
	(void)check_obj(v, cfg, path, "initial_context_template", false);
	(void)check_str(v, cfg, path, "trigger_keyword_to_pass", false, 1, FLOW_KEYWORD_MAX);
}

static void check_question(vctx_t *v, const json_t *cfg, const char *path)
{
	static const char *const types[] = {"text",  "email",	 "number", "interactive_id",
					    "image", "location", "any",	   "nfm_reply",
					    NULL};
	static const char *const after[] = {"human_handover", "end_flow", "switch_flow", NULL};
	char p[PATHSZ], tmp[PATHSZ];
	const json_t *mc = check_obj(v, cfg, path, "message_config", true);
	const json_t *rc = check_obj(v, cfg, path, "reply_config", true);
	const json_t *fb = check_obj(v, cfg, path, "fallback_config", false), *mr;
	const char *et, *aar;

	if (mc != NULL)
		check_message(v, mc, join(p, path, "message_config"));
	if (rc != NULL) {
		join(p, path, "reply_config");
		et = check_str(v, rc, p, "expected_type", false, 1, 32);
		if (et != NULL && !one_of(et, types))
			add(v, join(tmp, p, "expected_type"),
			    "must be text, email, number, interactive_id, image, location, any or "
			    "nfm_reply");
		check_identifier(v, rc, p, "save_to_variable", false);
		check_regex(v, rc, p, "validation_regex");
	}
	if (fb == NULL)
		return;
	join(p, path, "fallback_config");
	mr = json_object_get(fb, "max_retries");
	if (mr != NULL && (!json_is_integer(mr) || json_integer_value(mr) < 0 ||
			   json_integer_value(mr) > FLOW_MAX_RETRIES_LIMIT))
		add(v, join(tmp, p, "max_retries"), "must be a whole number from 0 to 10");
	(void)check_str(v, fb, p, "re_prompt_message_text", false, 1, FLOW_WA_TEXT_BODY_MAX);
	if (json_is_null(json_object_get(fb, "action_after_retries")))
		return;
	aar = check_str(v, fb, p, "action_after_retries", false, 1, 32);
	if (aar != NULL && !one_of(aar, after)) {
		add(v, join(tmp, p, "action_after_retries"),
		    "must be human_handover, end_flow or switch_flow");
	} else if (aar != NULL) {
		const json_t *car =
		    check_obj(v, fb, p, "config_after_retries", strcmp(aar, "switch_flow") == 0);

		join(tmp, p, "config_after_retries");
		if (car != NULL && strcmp(aar, "switch_flow") == 0) {
			check_switch_config(v, car, tmp);
		} else if (car != NULL && strcmp(aar, "end_flow") == 0) {
			const json_t *m = check_obj(v, car, tmp, "message_config", false);
			char mp[PATHSZ];

			if (m != NULL)
				check_message(v, m, join(mp, tmp, "message_config"));
		} else if (car != NULL) {
			(void)check_str(v, car, tmp, "pre_handover_message_text", false, 1,
					FLOW_WA_TEXT_BODY_MAX);
		}
	}
}

static void check_action(vctx_t *v, const json_t *cfg, const char *path)
{
	static const char *const types[] = {"set_context_variable", "update_contact_field", NULL};
	char p[PATHSZ], ap[PATHSZ], tmp[PATHSZ];
	const json_t *list = json_object_get(cfg, "actions_to_run"), *a;
	size_t i;

	join(p, path, "actions_to_run");
	if (list == NULL) {
		add(v, p, "is required");
		return;
	}
	if (!json_is_array(list) || json_array_size(list) > FLOW_MAX_ACTIONS) {
		add(v, p, "must be a list of at most 50 actions");
		return;
	}
	json_array_foreach(list, i, a)
	{
		const char *t;

		idx(ap, p, i, NULL);
		if (!json_is_object(a)) {
			add(v, ap, "must be an object");
			continue;
		}
		t = check_str(v, a, ap, "action_type", true, 1, 64);
		if (t == NULL)
			continue;
		if (!one_of(t, types)) {
			add(v, join(tmp, ap, "action_type"),
			    "must be set_context_variable or update_contact_field");
			continue;
		}
		if (json_object_get(a, "value_template") == NULL)
			add(v, join(tmp, ap, "value_template"), "is required");
		if (strcmp(t, "set_context_variable") == 0) {
			check_identifier(v, a, ap, "variable_name", true);
		} else {
			const char *f = check_str(v, a, ap, "field_path", true, 1, 64);

			if (f != NULL && !flow_contact_field_allowed(f))
				add(v, join(tmp, ap, "field_path"),
				    "is not a contact field a flow may write (name, email, "
				    "language, "
				    "notes)");
		}
	}
}

static const char *const step_types[] = {
    "send_message", "question",	 "action",	   "human_handover",  "end_flow",
    "switch_flow",  "condition", "wait_for_reply", "start_flow_node", NULL};

static bool terminal(const char *type)
{
	return strcmp(type, "end_flow") == 0 || strcmp(type, "human_handover") == 0 ||
	       strcmp(type, "switch_flow") == 0;
}

static void check_step_config(vctx_t *v, const json_t *step, const char *type, const char *path)
{
	char p[PATHSZ];
	bool required = strcmp(type, "send_message") == 0 || strcmp(type, "question") == 0 ||
			strcmp(type, "action") == 0 || strcmp(type, "switch_flow") == 0;
	const json_t *cfg = check_obj(v, step, path, "config", required), *m;

	if (cfg == NULL)
		return;
	join(p, path, "config");
	if (strcmp(type, "send_message") == 0) {
		check_message(v, cfg, p);
	} else if (strcmp(type, "question") == 0) {
		check_question(v, cfg, p);
	} else if (strcmp(type, "action") == 0) {
		check_action(v, cfg, p);
	} else if (strcmp(type, "switch_flow") == 0) {
		check_switch_config(v, cfg, p);
	} else if (strcmp(type, "human_handover") == 0) {
		(void)check_str(v, cfg, p, "pre_handover_message_text", false, 1,
				FLOW_WA_TEXT_BODY_MAX);
	} else if (strcmp(type, "end_flow") == 0) {
		char mp[PATHSZ];

		m = check_obj(v, cfg, p, "message_config", false);
		if (m != NULL)
			check_message(v, m, join(mp, p, "message_config"));
	}
}

/* Whether `name` is the name of a step of the list. */
static bool step_exists(const json_t *steps, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(steps, i, s)
	{
		const json_t *n = json_object_get(s, "name");

		if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
			return true;
	}
	return false;
}

static void check_transitions(vctx_t *v, const json_t *steps, const json_t *step, const char *type,
			      const char *path)
{
	char p[PATHSZ], tp[PATHSZ], tmp[PATHSZ];
	const json_t *list = json_object_get(step, "transitions"), *t;
	size_t i;

	join(p, path, "transitions");
	if (list != NULL &&
	    (!json_is_array(list) || json_array_size(list) > FLOW_MAX_TRANSITIONS)) {
		add(v, p, "must be a list of at most 50 transitions");
		return;
	}
	if (type != NULL && !terminal(type) && json_array_size(list) == 0)
		add(v, p,
		    "has no way out: add a transition, or make the step end_flow, "
		    "human_handover or switch_flow");
	json_array_foreach(list, i, t)
	{
		const char *to;
		const json_t *prio;

		idx(tp, p, i, NULL);
		if (!json_is_object(t)) {
			add(v, tp, "must be an object");
			continue;
		}
		to = check_str(v, t, tp, "to_step", true, 1, FLOW_NAME_MAX);
		if (to != NULL && !step_exists(steps, to))
			add(v, join(tmp, tp, "to_step"), "names no step of this flow");
		prio = json_object_get(t, "priority");
		if (prio != NULL &&
		    (!json_is_integer(prio) || json_integer_value(prio) < -1000000 ||
		     json_integer_value(prio) > 1000000))
			add(v, join(tmp, tp, "priority"), "must be a whole number");
		join(tmp, tp, "condition_config");
		if (json_object_get(t, "condition_config") == NULL)
			add(v, tmp, "is required");
		else
			v->n += flow_condition_validate(json_object_get(t, "condition_config"), tmp,
							v->problems);
	}
}

static void check_steps(vctx_t *v, const json_t *steps)
{
	char p[PATHSZ], tmp[PATHSZ];
	size_t i, entries = 0;
	json_t *step;

	if (steps == NULL) {
		add(v, "steps", "is required");
		return;
	}
	if (!json_is_array(steps) || json_array_size(steps) == 0 ||
	    json_array_size(steps) > FLOW_MAX_STEPS) {
		add(v, "steps", "must be a list of 1 to 200 steps");
		return;
	}
	json_array_foreach(steps, i, step)
	{
		const char *name, *type;
		const json_t *entry;

		idx(p, "steps", i, NULL);
		if (!json_is_object(step)) {
			add(v, p, "must be an object");
			continue;
		}
		name = check_str(v, step, p, "name", true, 1, FLOW_NAME_MAX);
		for (size_t k = 0; name != NULL && k < i; k++) {
			const json_t *on = json_object_get(json_array_get(steps, k), "name");

			if (json_is_string(on) && strcmp(json_string_value(on), name) == 0) {
				add(v, join(tmp, p, "name"), "duplicates the name of another step");
				break;
			}
		}
		type = check_str(v, step, p, "type", true, 1, 32);
		if (type != NULL && !one_of(type, step_types)) {
			add(v, join(tmp, p, "type"),
			    "must be send_message, question, action, human_handover, end_flow or "
			    "switch_flow");
			type = NULL;
		}
		entry = json_object_get(step, "is_entry_point");
		check_bool(v, step, p, "is_entry_point");
		if (json_is_true(entry) && ++entries > 1)
			add(v, join(tmp, p, "is_entry_point"), "a flow has exactly one entry step");
		if (type != NULL)
			check_step_config(v, step, type, p);
		check_transitions(v, steps, step, type, p);
	}
	if (entries == 0)
		add(v, "steps", "no step is the entry point (is_entry_point: true)");
}

static void check_trigger(vctx_t *v, const json_t *def)
{
	const json_t *kws = json_object_get(def, "trigger_keywords"), *kw;
	const json_t *tc = check_obj(v, def, "", "trigger_config", false);
	char p[PATHSZ];
	size_t i;

	if (kws != NULL && (!json_is_array(kws) || json_array_size(kws) > FLOW_MAX_KEYWORDS)) {
		add(v, "trigger_keywords", "must be a list of at most 50 keywords");
	} else if (kws != NULL) {
		json_array_foreach(kws, i, kw)
		{
			if (!json_is_string(kw) || blank(json_string_value(kw)) ||
			    json_string_length(kw) > FLOW_KEYWORD_MAX)
				add(v, idx(p, "trigger_keywords", i, NULL),
				    "must be a non-blank string of at most 100 bytes");
		}
	}
	if (tc == NULL)
		return;
	check_regex(v, tc, "trigger_config", "extraction_regex");
	check_identifier(v, tc, "trigger_config", "context_variable",
			 json_object_get(tc, "extraction_regex") != NULL);
}

bool flow_contact_field_allowed(const char *field)
{
	static const char *const fields[] = FLOW_CONTACT_FIELDS;

	for (size_t i = 0; field != NULL && i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strcmp(field, fields[i]) == 0)
			return true;
	return false;
}

size_t flow_validate(const json_t *def, json_t *problems)
{
	vctx_t v = {.problems = problems, .n = 0};

	if (!json_is_array(problems))
		return 0;
	if (!json_is_object(def)) {
		add(&v, "", "a flow definition must be a JSON object");
		goto out;
	}
	(void)check_str(&v, def, "", "name", true, 1, FLOW_NAME_MAX);
	(void)check_str(&v, def, "", "description", false, 0, 2000);
	check_bool(&v, def, "", "is_active");
	check_trigger(&v, def);
	check_steps(&v, json_object_get(def, "steps"));
out:
	return v.n;
}
