/*
 * engine.c - the flow step machine (see flow.h).
 *
 * A session rests only on a step that waits for the user: a question, a
 * wait_for_reply step, or an action step named wait_for_whatsapp_response
 * (the original files' convention for "wait for the WhatsApp Flow form").
 * Handling a message validates it against that step, follows the first
 * matching transition, and falls through steps that do not wait until the
 * next resting step or an end; at most FLOW_MAX_STEPS_PER_MESSAGE steps.
 *
 * Replies are visible to conditions only at the resting step that received
 * them; steps entered afterwards see no reply, so a keyword condition never
 * matches a stale message. An invalid reply can only leave its question
 * through a condition that inspects the reply itself (a keyword, the message
 * type, user_requests_human, question_reply_is_valid false, ...): always_true
 * and variable conditions never swallow it, so it re-prompts instead.
 *
 * Every failure returns -1 through fail(), and finish() turns the result
 * into the one error outcome: an apology, a handover, the session ended.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"
#include "dialflow/log.h"

#define WAIT_STEP_NAME "wait_for_whatsapp_response"
#define FLOW_FLAG      "whatsapp_flow_response_received"
#define FLOW_DATA      "whatsapp_flow_data"
#define EMAIL_REGEX    "^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}$"

#define TEXT_APOLOGY                                                                               \
	"I seem to be having some technical difficulties. A team member will be with you "         \
	"shortly."
#define TEXT_DEAD_END                                                                              \
	"Apologies, I've encountered a technical issue and can't continue. I'm connecting you "    \
	"with a team member."
#define TEXT_RETRIES_EXHAUSTED                                                                     \
	"I'm still having trouble understanding. I'm connecting you with a team member who can "   \
	"assist you shortly."
#define TEXT_WAIT_REPROMPT "Sorry, I didn't understand that. Please use the options above."

typedef struct run {
	const flow_env_t *env;
	flow_session_t *s;
	flow_result_t *res;
	json_t *contact; /* working copy: contact updates show in later templates */
	int steps;	 /* entered while handling this message */
	const char *err;
} run_t;

/* ---- small helpers -------------------------------------------------------- */

static const char *str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int fail(run_t *r, const char *why)
{
	if (r->err == NULL)
		r->err = why;
	return -1;
}

static const char *def_name(const json_t *def)
{
	const char *n = str(def, "name");

	return n != NULL ? n : "";
}

static const json_t *find_step(const json_t *def, const char *name)
{
	const json_t *steps = json_object_get(def, "steps");
	size_t i;
	json_t *st;

	json_array_foreach(steps, i, st)
	{
		const char *n = str(st, "name");

		if (n != NULL && strcmp(n, name) == 0)
			return st;
	}
	return NULL;
}

static const json_t *entry_step(const json_t *def)
{
	const json_t *steps = json_object_get(def, "steps");
	size_t i;
	json_t *st;

	json_array_foreach(steps, i, st)
	{
		if (json_is_true(json_object_get(st, "is_entry_point")) && str(st, "name") != NULL)
			return st;
	}
	return NULL;
}

static const json_t *config(const json_t *step)
{
	const json_t *c = json_object_get(step, "config");

	return json_is_object(c) ? c : NULL;
}

/* The template scope: the context's keys, "contact" and "flow_context". New reference. */
static json_t *scope_new(run_t *r)
{
	json_t *scope = json_object();

	if (json_is_object(r->s->context)) {
		json_object_update(scope, r->s->context);
		json_object_set(scope, "flow_context", r->s->context);
	}
	json_object_set(scope, "contact", r->contact);
	return scope;
}

/* Append an event {"event": name, "flow": <current flow>, ...extra}. Steals extra. */
static void event(run_t *r, const char *name, json_t *extra)
{
	json_t *e = json_pack("{s:s,s:s}", "event", name, "flow",
			      r->s->definition != NULL ? def_name(r->s->definition) : "");

	if (json_is_object(extra))
		json_object_update(e, extra);
	json_decref(extra);
	json_array_append_new(r->res->events, e);
}

/* s cut to at most max characters. New reference. */
static json_t *clamp_chars(const char *s, size_t max)
{
	size_t i = 0, n = 0;

	while (s[i] != '\0') {
		if (((unsigned char)s[i] & 0xC0) != 0x80) {
			if (n == max)
				break;
			n++;
		}
		i++;
	}
	return json_stringn(s, i);
}

/* The text form of a rendered scalar, clamped; NULL for null/objects/arrays or "". */
static json_t *text_of(const json_t *v, size_t max)
{
	char buf[64];
	const char *t = NULL;

	if (json_is_string(v)) {
		t = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		t = buf;
	} else if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.15g", json_real_value(v));
		t = buf;
	} else if (json_is_boolean(v)) {
		t = json_is_true(v) ? "true" : "false";
	}
	if (t == NULL || t[0] == '\0')
		return NULL;
	return clamp_chars(t, max);
}

/* obj[key] replaced by its clamped text form; returns false (and removes it) when empty. */
static bool clamp_key(json_t *obj, const char *key, size_t max)
{
	json_t *t = text_of(json_object_get(obj, key), max);

	if (t == NULL) {
		json_object_del(obj, key);
		return false;
	}
	json_object_set_new(obj, key, t);
	return true;
}

/* Set a context variable (steals value). Fails when the context would pass its key limit. */
static int set_var(run_t *r, const char *name, json_t *value)
{
	if (json_object_get(r->s->context, name) == NULL &&
	    json_object_size(r->s->context) >= FLOW_CONTEXT_MAX_KEYS) {
		json_decref(value);
		return fail(r, "context_full");
	}
	json_object_set_new(r->s->context, name, value);
	return 0;
}

/* ---- outgoing messages ---------------------------------------------------- */

static void text_message(run_t *r, const char *body)
{
	json_t *b = clamp_chars(body, FLOW_WA_TEXT_BODY_MAX);

	if (json_string_length(b) == 0) {
		json_decref(b);
		return;
	}
	json_array_append_new(r->res->messages, json_pack("{s:s,s:{s:o,s:b}}", "type", "text",
							  "text", "body", b, "preview_url", 0));
}

/* Render template text and send it as a text message (nothing when it renders empty). */
static void send_text(run_t *r, const char *tpl)
{
	json_t *scope;
	char *txt;

	if (tpl == NULL)
		return;
	scope = scope_new(r);
	txt = flow_template_render_string(tpl, scope);
	text_message(r, txt);
	free(txt);
	json_decref(scope);
}

/* Keep at most 3 well-formed reply buttons. Returns how many are left. */
static size_t fix_buttons(json_t *action)
{
	json_t *in = json_object_get(action, "buttons"), *out = json_array(), *b;
	size_t i;

	json_array_foreach(in, i, b)
	{
		json_t *reply = json_object_get(b, "reply");

		if (json_array_size(out) == FLOW_WA_BUTTONS_MAX || !json_is_object(reply))
			continue;
		if (!clamp_key(reply, "id", FLOW_WA_BUTTON_ID_MAX) ||
		    !clamp_key(reply, "title", FLOW_WA_BUTTON_TITLE_MAX))
			continue;
		json_array_append_new(out, json_pack("{s:s,s:O}", "type", "reply", "reply", reply));
	}
	json_object_set_new(action, "buttons", out);
	return json_array_size(out);
}

/* Keep at most 10 well-formed rows in non-empty sections. Returns how many rows are left. */
static size_t fix_list(json_t *action)
{
	json_t *in = json_object_get(action, "sections"), *out = json_array(), *sec;
	size_t i, total = 0;

	if (!clamp_key(action, "button", FLOW_WA_LIST_BUTTON_MAX))
		json_object_set_new(action, "button", json_string("Choose"));
	json_array_foreach(in, i, sec)
	{
		json_t *rows = json_object_get(sec, "rows"), *row, *keep, *ns;
		size_t k;

		if (json_array_size(out) == FLOW_WA_SECTIONS_MAX)
			break;
		keep = json_array();
		json_array_foreach(rows, k, row)
		{
			if (total == FLOW_WA_ROWS_MAX || !json_is_object(row))
				continue;
			if (!clamp_key(row, "id", FLOW_WA_ROW_ID_MAX) ||
			    !clamp_key(row, "title", FLOW_WA_ROW_TITLE_MAX))
				continue;
			(void)clamp_key(row, "description", FLOW_WA_ROW_DESC_MAX);
			json_array_append(keep, row);
			total++;
		}
		if (json_array_size(keep) == 0) {
			json_decref(keep);
			continue;
		}
		ns = json_object();
		if (json_is_object(sec) && json_object_get(sec, "title") != NULL) {
			json_t *t =
			    text_of(json_object_get(sec, "title"), FLOW_WA_SECTION_TITLE_MAX);

			if (t != NULL)
				json_object_set_new(ns, "title", t);
		}
		json_object_set_new(ns, "rows", keep);
		json_array_append_new(out, ns);
	}
	json_object_set_new(action, "sections", out);
	return total;
}

/* Clamp a rendered interactive object to WhatsApp's limits. Returns false when nothing
 * sendable is left (no body, no buttons, no rows, no flow id). */
static bool fix_interactive(json_t *ia)
{
	const char *t = str(ia, "type");
	json_t *body = json_object_get(ia, "body"), *header = json_object_get(ia, "header");
	json_t *footer = json_object_get(ia, "footer"), *action = json_object_get(ia, "action");
	json_t *params;

	if (t == NULL || !json_is_object(body) || !json_is_object(action) ||
	    !clamp_key(body, "text", FLOW_WA_INTERACTIVE_BODY_MAX))
		return false;
	if (json_is_object(header) && str(header, "type") != NULL &&
	    strcmp(str(header, "type"), "text") == 0 &&
	    !clamp_key(header, "text", FLOW_WA_HEADER_MAX))
		json_object_del(ia, "header");
	if (json_is_object(footer) && !clamp_key(footer, "text", FLOW_WA_FOOTER_MAX))
		json_object_del(ia, "footer");
	if (strcmp(t, "button") == 0)
		return fix_buttons(action) > 0;
	if (strcmp(t, "list") == 0)
		return fix_list(action) > 0;
	if (strcmp(t, "flow") != 0)
		return false;
	params = json_object_get(action, "parameters");
	if (!json_is_object(params) || !clamp_key(params, "flow_id", 200))
		return false;
	json_object_set_new(action, "name", json_string("flow"));
	if (json_object_get(params, "flow_message_version") == NULL)
		json_object_set_new(params, "flow_message_version", json_string("3"));
	if (!clamp_key(params, "flow_cta", FLOW_WA_FLOW_CTA_MAX))
		json_object_set_new(params, "flow_cta", json_string("Open"));
	if (str(params, "flow_action") != NULL &&
	    strcmp(str(params, "flow_action"), "data_exchange") == 0)
		json_object_del(params, "flow_action_payload"); /* Meta refuses it (131009) */
	return true;
}

static bool fix_media(json_t *m, const char *type)
{
	if (!clamp_key(m, "link", 2048) && !clamp_key(m, "id", FLOW_REPLY_ID_MAX))
		return false;
	if (strcmp(type, "audio") == 0)
		json_object_del(m, "caption");
	else
		(void)clamp_key(m, "caption", FLOW_WA_CAPTION_MAX);
	if (strcmp(type, "document") == 0)
		(void)clamp_key(m, "filename", 240);
	return true;
}

/*
 * Send a message config ({message_type, <type>: {...}}), rendered over the scope. A message
 * that renders into nothing sendable (an empty body, no media source) is skipped.
 */
static int send_config(run_t *r, const json_t *cfg)
{
	const char *type = str(cfg, "message_type");
	const json_t *body = type != NULL ? json_object_get(cfg, type) : NULL;
	json_t *scope, *rb;
	bool ok = false;

	if (!json_is_object(body))
		return fail(r, "bad_message_config");
	scope = scope_new(r);
	rb = flow_template_render(body, scope);
	json_decref(scope);
	if (strcmp(type, "text") == 0) {
		json_t *t = text_of(json_object_get(rb, "body"), FLOW_WA_TEXT_BODY_MAX);

		if (t != NULL) {
			json_array_append_new(
			    r->res->messages,
			    json_pack("{s:s,s:{s:o,s:b}}", "type", "text", "text", "body", t,
				      "preview_url",
				      json_is_true(json_object_get(rb, "preview_url"))));
		}
		json_decref(rb);
		return 0;
	}
	if (strcmp(type, "interactive") == 0)
		ok = fix_interactive(rb);
	else if (strcmp(type, "image") == 0 || strcmp(type, "document") == 0 ||
		 strcmp(type, "audio") == 0 || strcmp(type, "video") == 0)
		ok = fix_media(rb, type);
	else {
		json_decref(rb);
		return fail(r, "bad_message_type");
	}
	if (ok)
		json_array_append_new(r->res->messages,
				      json_pack("{s:s,s:o}", "type", type, type, rb));
	else
		json_decref(rb);
	return 0;
}

/* ---- session ends --------------------------------------------------------- */

static void end_session(run_t *r)
{
	r->res->ended = true;
	/* the simulator (and logs) want what the conversation ended with */
	json_decref(r->res->final_context);
	r->res->final_context = r->s->context != NULL ? json_deep_copy(r->s->context) : NULL;
	flow_session_clear(r->s);
}

static int do_end(run_t *r, const json_t *cfg)
{
	const json_t *mc = json_object_get(cfg, "message_config");

	if (json_is_object(mc) && send_config(r, mc) < 0)
		return -1;
	event(r, "flow_ended", NULL);
	end_session(r);
	return 0;
}

static int do_handover(run_t *r, const char *text, const char *reason)
{
	send_text(r, text);
	r->res->handover = true;
	r->res->handover_reason = reason;
	event(r, "handover", json_pack("{s:s}", "reason", reason));
	end_session(r);
	return 0;
}

/*
 * switch_flow: load the target (active) flow and make the session run it from its entry step
 * with the rendered initial context. The entry step's name goes to next (FLOW_NAME_MAX + 1).
 */
static int do_switch(run_t *r, const json_t *cfg, char *next)
{
	json_t *scope = scope_new(r), *init = NULL, *nm;
	const json_t *tpl = json_object_get(cfg, "initial_context_template"), *entry;
	flow_def_ref_t ref = {0};
	const char *name, *kw = str(cfg, "trigger_keyword_to_pass");
	int rc = -1;

	nm = flow_template_render(json_object_get(cfg, "target_flow_name"), scope);
	name = json_is_string(nm) ? json_string_value(nm) : "";
	if (name[0] == '\0' || strlen(name) > FLOW_NAME_MAX) {
		fail(r, "switch_target_empty");
		goto out;
	}
	init = json_is_object(tpl) ? flow_template_render(tpl, scope) : json_object();
	if (kw != NULL) {
		char *k = flow_template_render_string(kw, scope);

		json_object_set_new(init, "simulated_trigger_keyword", json_string(k));
		free(k);
	}
	if (json_object_size(init) > FLOW_CONTEXT_MAX_KEYS) {
		fail(r, "context_full");
		goto out;
	}
	if (r->env == NULL || r->env->load_flow == NULL ||
	    r->env->load_flow(r->env->ud, name, &ref) != 0 || ref.definition == NULL) {
		fail(r, "switch_target_missing");
		goto out;
	}
	entry = entry_step(ref.definition);
	if (entry == NULL || strlen(str(entry, "name")) > FLOW_NAME_MAX) {
		fail(r, "switch_target_no_entry");
		goto out;
	}
	event(r, "flow_switched", json_pack("{s:s}", "to", name));
	json_decref(r->s->context);
	json_decref(r->s->awaiting);
	r->s->context = init;
	init = NULL;
	r->s->awaiting = NULL;
	r->s->fallback_count = 0;
	r->s->definition = ref.definition;
	r->s->flow_id = ref.flow_id;
	r->s->flow_version_id = ref.version_id;
	r->res->switched = true;
	snprintf(r->res->switched_to, sizeof(r->res->switched_to), "%s", name);
	r->res->switched_flow_id = ref.flow_id;
	r->res->switched_version_id = ref.version_id;
	event(r, "flow_started", json_pack("{s:s}", "via", "switch_flow"));
	snprintf(next, FLOW_NAME_MAX + 1, "%s", str(entry, "name"));
	rc = 0;
out:
	json_decref(init);
	json_decref(nm);
	json_decref(scope);
	return rc;
}

/* ---- actions -------------------------------------------------------------- */

static int run_actions(run_t *r, const json_t *cfg)
{
	const json_t *list = json_object_get(cfg, "actions_to_run");
	size_t i;
	json_t *a;

	json_array_foreach(list, i, a)
	{
		const char *type = str(a, "action_type");
		json_t *scope = scope_new(r), *val;

		val = flow_template_render(json_object_get(a, "value_template"), scope);
		json_decref(scope);
		if (type != NULL && strcmp(type, "set_context_variable") == 0 &&
		    str(a, "variable_name") != NULL &&
		    strlen(str(a, "variable_name")) <= FLOW_NAME_MAX) {
			if (set_var(r, str(a, "variable_name"), val) < 0)
				return -1;
		} else if (type != NULL && strcmp(type, "update_contact_field") == 0 &&
			   flow_contact_field_allowed(str(a, "field_path"))) {
			json_t *t;

			if (json_is_null(val)) {
				t = json_null();
			} else if ((t = text_of(val, FLOW_CONTACT_VALUE_MAX)) == NULL) {
				/* "" stays ""; an object or a list is stored as its JSON text */
				char *dump = json_is_object(val) || json_is_array(val)
						 ? json_dumps(val, JSON_COMPACT)
						 : NULL;

				t = clamp_chars(dump != NULL ? dump : "", FLOW_CONTACT_VALUE_MAX);
				free(dump);
			}
			json_decref(val);
			json_object_set(r->res->contact_updates, str(a, "field_path"), t);
			json_object_set_new(r->contact, str(a, "field_path"), t);
		} else {
			json_decref(val);
			return fail(r, "bad_action");
		}
	}
	return 0;
}

/* ---- transitions ---------------------------------------------------------- */

/*
 * The target of the first transition of `step` (ascending priority, then list order) whose
 * condition holds, or NULL. With reply_only, only conditions that inspect the reply count.
 */
static const char *pick(run_t *r, const json_t *step, const flow_reply_t *reply, bool valid,
			bool reply_only)
{
	const json_t *list = json_object_get(step, "transitions");
	size_t order[FLOW_MAX_TRANSITIONS], n = json_array_size(list);
	json_int_t prio[FLOW_MAX_TRANSITIONS];
	flow_cond_input_t in = {.reply = reply, .reply_valid = valid};
	const char *target = NULL;
	json_t *scope;

	if (n > FLOW_MAX_TRANSITIONS)
		n = FLOW_MAX_TRANSITIONS;
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_object_get(json_array_get(list, i), "priority");
		size_t k = i;

		prio[i] = json_is_integer(p) ? json_integer_value(p) : (json_int_t)i;
		while (k > 0 && prio[order[k - 1]] > prio[i]) { /* stable insertion sort */
			order[k] = order[k - 1];
			k--;
		}
		order[k] = i;
	}
	scope = scope_new(r);
	in.scope = scope;
	for (size_t i = 0; i < n && target == NULL; i++) {
		const json_t *t = json_array_get(list, order[i]);
		const json_t *cond = json_object_get(t, "condition_config");

		if (reply_only && !flow_condition_inspects_reply(cond))
			continue;
		if (str(t, "to_step") != NULL && flow_condition_eval(cond, &in))
			target = str(t, "to_step");
	}
	json_decref(scope);
	return target;
}

/* ---- the loop ------------------------------------------------------------- */

static void set_awaiting(run_t *r, const char *step, const char *kind, const json_t *rc)
{
	json_t *a = json_pack("{s:s,s:s}", "step", step, "kind", kind);

	if (rc != NULL) {
		const char *et = str(rc, "expected_type"), *var = str(rc, "save_to_variable");

		json_object_set_new(a, "expected_type", json_string(et != NULL ? et : "text"));
		if (var != NULL)
			json_object_set_new(a, "save_to_variable", json_string(var));
	}
	json_decref(r->s->awaiting);
	r->s->awaiting = a;
}

/* Leaving a resting step: its form flag goes, so the next form is waited for again. */
static void leave_resting(run_t *r)
{
	json_object_del(r->s->context, FLOW_FLAG);
	r->s->fallback_count = 0;
	json_decref(r->s->awaiting);
	r->s->awaiting = NULL;
}

static bool is_wait_step(const json_t *step)
{
	const char *type = str(step, "type"), *name = str(step, "name");

	return type != NULL &&
	       (strcmp(type, "wait_for_reply") == 0 ||
		(strcmp(type, "action") == 0 && name != NULL && strcmp(name, WAIT_STEP_NAME) == 0));
}

/* Enter `target` and fall through until a step waits or the session ends. */
static int advance(run_t *r, const char *target)
{
	char next[FLOW_NAME_MAX + 1];

	if (strlen(target) > FLOW_NAME_MAX)
		return fail(r, "unknown_step");
	snprintf(next, sizeof(next), "%s", target);
	for (;;) {
		const json_t *step, *cfg;
		const char *type, *to;

		if (++r->steps > FLOW_MAX_STEPS_PER_MESSAGE)
			return fail(r, "step_limit");
		step = find_step(r->s->definition, next);
		type = str(step, "type");
		if (step == NULL || type == NULL)
			return fail(r, "unknown_step");
		cfg = config(step);
		snprintf(r->s->current_step, sizeof(r->s->current_step), "%s", next);
		json_decref(r->s->awaiting);
		r->s->awaiting = NULL;
		r->s->fallback_count = 0;
		event(r, "step_entered", json_pack("{s:s,s:s}", "step", next, "step_type", type));

		if (strcmp(type, "send_message") == 0) {
			if (send_config(r, cfg) < 0)
				return -1;
		} else if (strcmp(type, "question") == 0) {
			const json_t *mc = json_object_get(cfg, "message_config");

			if (!json_is_object(mc) || send_config(r, mc) < 0)
				return fail(r, "bad_question");
			set_awaiting(r, next, "question", json_object_get(cfg, "reply_config"));
			return 0;
		} else if (strcmp(type, "action") == 0) {
			if (run_actions(r, cfg) < 0)
				return -1;
			if (is_wait_step(step)) {
				set_awaiting(r, next, "wait", NULL);
				return 0;
			}
		} else if (strcmp(type, "wait_for_reply") == 0) {
			set_awaiting(r, next, "wait", NULL);
			return 0;
		} else if (strcmp(type, "end_flow") == 0) {
			return do_end(r, cfg);
		} else if (strcmp(type, "human_handover") == 0) {
			return do_handover(r, str(cfg, "pre_handover_message_text"), "step");
		} else if (strcmp(type, "switch_flow") == 0) {
			if (do_switch(r, cfg, next) < 0)
				return -1;
			continue;
		} else if (strcmp(type, "condition") != 0 && strcmp(type, "start_flow_node") != 0) {
			return fail(r, "unknown_step_type");
		}
		if (json_array_size(json_object_get(step, "transitions")) == 0) {
			/* a last step that only talks ends the flow rather than stranding it */
			event(r, "flow_ended", json_pack("{s:s}", "reason", "last_step"));
			end_session(r);
			return 0;
		}
		to = pick(r, step, NULL, false, false);
		if (to == NULL)
			return do_handover(r, TEXT_DEAD_END, "dead_end");
		if (strlen(to) > FLOW_NAME_MAX)
			return fail(r, "unknown_step");
		snprintf(next, sizeof(next), "%s", to);
	}
}

/* An invalid (or unrouted) reply at a resting step: re-prompt, or give up as configured. */
static int retry(run_t *r, const json_t *step, bool question)
{
	const json_t *cfg = config(step);
	const json_t *fb = json_object_get(cfg, "fallback_config");
	const json_t *mr = json_object_get(fb, "max_retries");
	const json_t *after = json_object_get(fb, "config_after_retries");
	const char *aar = str(fb, "action_after_retries"), *reprompt;
	json_int_t max = FLOW_DEFAULT_MAX_RETRIES;
	char next[FLOW_NAME_MAX + 1];

	if (json_is_integer(mr))
		max = json_integer_value(mr);
	if (max < 0)
		max = 0;
	if (max > FLOW_MAX_RETRIES_LIMIT)
		max = FLOW_MAX_RETRIES_LIMIT;
	if (r->s->fallback_count < max) {
		r->s->fallback_count++;
		event(r, "reprompt",
		      json_pack("{s:s,s:i}", "step", r->s->current_step, "attempt",
				r->s->fallback_count));
		reprompt = str(fb, "re_prompt_message_text");
		if (reprompt != NULL)
			send_text(r, reprompt);
		else if (question)
			return send_config(r, json_object_get(cfg, "message_config"));
		else
			send_text(r, TEXT_WAIT_REPROMPT);
		return 0;
	}
	event(r, "retries_exhausted", json_pack("{s:s}", "step", r->s->current_step));
	leave_resting(r);
	if (aar != NULL && strcmp(aar, "end_flow") == 0)
		return do_end(r, after);
	if (aar != NULL && strcmp(aar, "switch_flow") == 0) {
		if (++r->steps > FLOW_MAX_STEPS_PER_MESSAGE)
			return fail(r, "step_limit");
		if (do_switch(r, after, next) < 0)
			return -1;
		return advance(r, next);
	}
	return do_handover(r,
			   str(after, "pre_handover_message_text") != NULL
			       ? str(after, "pre_handover_message_text")
			       : TEXT_RETRIES_EXHAUSTED,
			   "retries_exhausted");
}

/* s with the spaces around it removed, as a new json string. */
static json_t *trimmed(const char *s)
{
	size_t z;

	while (isspace((unsigned char)*s))
		s++;
	z = strlen(s);
	while (z > 0 && isspace((unsigned char)s[z - 1]))
		z--;
	return json_stringn(s, z);
}

/* Whether text matches regex (POSIX ERE, case-sensitive); -1 when it does not compile. */
static int regex_ok(const char *regex, const char *text)
{
	regex_t re;
	const char *why;
	int m;

	if (flow_regex_compile(&re, regex, REG_NOSUB, &why) < 0)
		return -1;
	m = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

/*
 * Validate a reply against a question's reply_config. Returns 1 and sets *value (new
 * reference, typed) when valid, 0 when not, -1 on a broken regex.
 */
static int validate_reply(const json_t *rc, const flow_reply_t *reply, json_t **value)
{
	const char *et = str(rc, "expected_type"), *regex = str(rc, "validation_regex");
	bool textual = strcmp(reply->type, "text") == 0 || strcmp(reply->type, "button") == 0 ||
		       strcmp(reply->subtype, "button_reply") == 0 ||
		       strcmp(reply->subtype, "list_reply") == 0;
	json_t *v = NULL;
	const char *subject = NULL; /* what validation_regex looks at */
	int m;

	*value = NULL;
	if (et == NULL)
		et = "text";
	if (strcmp(et, "text") == 0 || strcmp(et, "email") == 0 || strcmp(et, "number") == 0) {
		if (!textual || reply->text == NULL)
			return 0;
		v = trimmed(reply->text);
		subject = json_string_value(v);
		if (subject[0] == '\0')
			goto invalid;
		if (strcmp(et, "email") == 0 && regex == NULL)
			regex = EMAIL_REGEX;
		if (strcmp(et, "number") == 0) {
			double d;
			long long ll;
			char *end;

			if (flow_number_parse(subject, &d) < 0)
				goto invalid;
			errno = 0;
			ll = strtoll(subject, &end, 10);
			if (errno == 0 && *end == '\0' && strpbrk(subject, ".eE") == NULL) {
				json_t *num = json_integer(ll);

				if (regex != NULL && (m = regex_ok(regex, subject)) != 1) {
					json_decref(num);
					json_decref(v);
					return m;
				}
				json_decref(v);
				*value = num;
				return 1;
			}
			if (regex != NULL && (m = regex_ok(regex, subject)) != 1) {
				json_decref(v);
				return m;
			}
			json_decref(v);
			*value = json_real(d);
			return 1;
		}
	} else if (strcmp(et, "interactive_id") == 0) {
		if (reply->interactive_id == NULL)
			return 0;
		v = json_string(reply->interactive_id);
		subject = reply->interactive_id;
	} else if (strcmp(et, "image") == 0) {
		if (strcmp(reply->type, "image") != 0 || reply->media_id == NULL)
			return 0;
		v = json_string(reply->media_id);
	} else if (strcmp(et, "location") == 0) {
		if (reply->location == NULL)
			return 0;
		v = json_deep_copy(reply->location);
	} else if (strcmp(et, "nfm_reply") == 0) {
		if (reply->flow_response == NULL)
			return 0;
		v = json_deep_copy(reply->flow_response);
	} else if (strcmp(et, "any") == 0) {
		if (reply->text != NULL)
			v = trimmed(reply->text);
		else if (reply->interactive_id != NULL)
			v = json_string(reply->interactive_id);
		else if (reply->flow_response != NULL)
			v = json_deep_copy(reply->flow_response);
		else if (reply->media_id != NULL)
			v = json_string(reply->media_id);
		else if (reply->location != NULL)
			v = json_deep_copy(reply->location);
		else if (reply->contacts != NULL)
			v = json_deep_copy(reply->contacts);
		else
			v = json_string(reply->type);
	} else {
		return 0;
	}
	if (regex != NULL && subject != NULL && (m = regex_ok(regex, subject)) != 1) {
		json_decref(v);
		return m;
	}
	*value = v;
	return 1;
invalid:
	json_decref(v);
	return 0;
}

/* A WhatsApp Flow form reply: its fields join the context, with the raw data and the flag. */
static int merge_form(run_t *r, const json_t *resp)
{
	const json_t *data = json_object_get(resp, "data");
	const char *k;
	json_t *v;

	if (!json_is_object(data))
		data = resp;
	json_object_foreach((json_t *)data, k, v)
	{
		if (k[0] == '_' || strlen(k) > FLOW_NAME_MAX || strcmp(k, FLOW_FLAG) == 0 ||
		    strcmp(k, FLOW_DATA) == 0)
			continue;
		if (set_var(r, k, json_deep_copy(v)) < 0)
			return -1;
	}
	if (set_var(r, FLOW_DATA, json_deep_copy(data)) < 0 ||
	    set_var(r, FLOW_FLAG, json_true()) < 0)
		return -1;
	event(r, "form_received", json_pack("{s:s}", "step", r->s->current_step));
	return 0;
}

/* ---- results and sessions ------------------------------------------------- */

void flow_result_init(flow_result_t *res)
{
	memset(res, 0, sizeof(*res));
	res->messages = json_array();
	res->contact_updates = json_object();
	res->events = json_array();
	if (res->messages == NULL || res->contact_updates == NULL || res->events == NULL) {
		log_error("flow", "out of memory");
		abort();
	}
}

void flow_result_free(flow_result_t *res)
{
	if (res == NULL)
		return;
	json_decref(res->messages);
	json_decref(res->contact_updates);
	json_decref(res->events);
	json_decref(res->final_context);
	memset(res, 0, sizeof(*res));
}

void flow_session_init(flow_session_t *s)
{
	memset(s, 0, sizeof(*s));
}

void flow_session_clear(flow_session_t *s)
{
	if (s == NULL)
		return;
	json_decref(s->context);
	json_decref(s->awaiting);
	memset(s, 0, sizeof(*s));
}

int flow_session_load(flow_session_t *s, const flow_def_ref_t *flow, const char *step,
		      const json_t *context, const json_t *awaiting, int fallback_count)
{
	flow_session_clear(s);
	if (flow == NULL || step == NULL || strlen(step) > FLOW_NAME_MAX)
		return -1;
	s->active = true;
	s->flow_id = flow->flow_id;
	s->flow_version_id = flow->version_id;
	s->definition = flow->definition;
	snprintf(s->current_step, sizeof(s->current_step), "%s", step);
	s->context = json_is_object(context) ? json_deep_copy(context) : json_object();
	s->awaiting = awaiting != NULL && !json_is_null(awaiting) ? json_deep_copy(awaiting) : NULL;
	s->fallback_count = fallback_count < 0 ? 0 : fallback_count;
	return 0;
}

static void run_init(run_t *r, const flow_env_t *env, flow_session_t *s, flow_result_t *res)
{
	memset(r, 0, sizeof(*r));
	r->env = env;
	r->s = s;
	r->res = res;
	flow_result_init(res);
	r->contact = env != NULL && json_is_object(env->contact) ? json_deep_copy(env->contact)
								 : json_object();
}

/* Close a run: on failure (or an oversized context) the result becomes the error outcome. */
static int finish(run_t *r, int rc)
{
	if (rc == 0 && r->s->active) {
		char *dump = json_dumps(r->s->context, JSON_COMPACT);
		size_t len = dump != NULL ? strlen(dump) : 0;

		free(dump);
		if (len > FLOW_CONTEXT_MAX_BYTES)
			rc = fail(r, "context_too_large");
	}
	if (rc < 0) {
		const char *apology = r->env != NULL && r->env->apology_text != NULL
					  ? r->env->apology_text
					  : TEXT_APOLOGY;

		if (r->err == NULL)
			r->err = "internal";
		json_array_clear(r->res->messages);
		json_object_clear(r->res->contact_updates);
		text_message(r, apology);
		r->res->handover = true;
		r->res->handover_reason = "error";
		r->res->error = r->err;
		r->res->switched = false;
		event(r, "error",
		      json_pack("{s:s,s:s}", "reason", r->err, "step", r->s->current_step));
		end_session(r);
		rc = -1;
	}
	json_decref(r->contact);
	return rc;
}

/* ---- public entry points -------------------------------------------------- */

int flow_trigger_match(const flow_candidate_t *flows, size_t n, const char *text,
		       json_t **initial_context)
{
	int best = -1;
	size_t bestlen = 0;
	const char *bestname = NULL;
	const json_t *def, *tc;
	const char *regex, *var, *why;
	json_t *ctx;
	regex_t re;
	regmatch_t m[2];

	*initial_context = NULL;
	if (text == NULL || flows == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const json_t *kws, *kw;
		const char *name;
		size_t k;

		def = flows[i].flow.definition;
		name = flows[i].name != NULL ? flows[i].name : def_name(def);
		kws = json_object_get(def, "trigger_keywords");
		json_array_foreach(kws, k, kw)
		{
			char buf[FLOW_KEYWORD_MAX + 1];
			const char *s;
			size_t len;

			if (k >= FLOW_MAX_KEYWORDS || !json_is_string(kw))
				break;
			s = json_string_value(kw);
			while (isspace((unsigned char)*s))
				s++;
			len = strlen(s);
			while (len > 0 && isspace((unsigned char)s[len - 1]))
				len--;
			if (len == 0 || len > FLOW_KEYWORD_MAX)
				continue;
			memcpy(buf, s, len);
			buf[len] = '\0';
			if (!flow_word_match(text, buf, false))
				continue;
			if (best < 0 || len > bestlen ||
			    (len == bestlen && strcmp(name, bestname) < 0)) {
				best = (int)i;
				bestlen = len;
				bestname = name;
			}
		}
	}
	if (best < 0)
		return -1;
	ctx = json_object();
	tc = json_object_get(flows[best].flow.definition, "trigger_config");
	regex = str(tc, "extraction_regex");
	var = str(tc, "context_variable");
	if (regex != NULL && var != NULL && strlen(var) <= FLOW_NAME_MAX &&
	    flow_regex_compile(&re, regex, 0, &why) == 0) {
		if (regexec(&re, text, 2, m, 0) == 0) {
			regmatch_t g = m[1].rm_so >= 0 ? m[1] : m[0];
			char *val = strndup(text + g.rm_so, (size_t)(g.rm_eo - g.rm_so));
			json_t *t;

			if (val == NULL) {
				log_error("flow", "out of memory");
				abort();
			}
			t = trimmed(val);
			free(val);
			json_object_set_new(ctx, var, clamp_chars(json_string_value(t), 1024));
			json_decref(t);
		}
		regfree(&re);
	}
	*initial_context = ctx;
	return best;
}

int flow_engine_start(const flow_env_t *env, flow_session_t *s, const flow_def_ref_t *flow,
		      const json_t *initial_context, flow_result_t *res)
{
	run_t r;
	const json_t *entry;
	int rc;

	flow_session_clear(s);
	run_init(&r, env, s, res);
	if (flow == NULL || flow->definition == NULL) {
		rc = fail(&r, "no_definition");
		goto out;
	}
	s->definition = flow->definition;
	entry = entry_step(flow->definition);
	if (entry == NULL) {
		rc = fail(&r, "no_entry_step");
		goto out;
	}
	s->active = true;
	s->flow_id = flow->flow_id;
	s->flow_version_id = flow->version_id;
	s->context =
	    json_is_object(initial_context) ? json_deep_copy(initial_context) : json_object();
	if (json_object_size(s->context) > FLOW_CONTEXT_MAX_KEYS) {
		rc = fail(&r, "context_full");
		goto out;
	}
	event(&r, "flow_started", json_pack("{s:s}", "via", "trigger"));
	rc = advance(&r, str(entry, "name"));
out:
	return finish(&r, rc);
}

int flow_engine_handle(const flow_env_t *env, flow_session_t *s, const flow_reply_t *reply,
		       flow_result_t *res)
{
	run_t r;
	const json_t *step, *cfg;
	const char *type, *to;
	json_t *value = NULL;
	int rc, valid;

	run_init(&r, env, s, res);
	if (!s->active || s->definition == NULL || !json_is_object(s->context) || reply == NULL) {
		rc = fail(&r, "no_session");
		goto out;
	}
	step = find_step(s->definition, s->current_step);
	type = str(step, "type");
	if (step == NULL || type == NULL) {
		rc = fail(&r, "unknown_step");
		goto out;
	}
	cfg = config(step);
	if (reply->flow_response != NULL && (rc = merge_form(&r, reply->flow_response)) < 0)
		goto out;
	if (strcmp(type, "question") == 0) {
		const char *var = str(json_object_get(cfg, "reply_config"), "save_to_variable");

		valid = validate_reply(json_object_get(cfg, "reply_config"), reply, &value);
		if (valid < 0) {
			rc = fail(&r, "bad_validation_regex");
			goto out;
		}
		event(&r, "reply", json_pack("{s:s,s:b}", "step", s->current_step, "valid", valid));
		if (valid && var != NULL && strlen(var) <= FLOW_NAME_MAX) {
			rc = set_var(&r, var, value);
			value = NULL;
			if (rc < 0)
				goto out;
		}
		to = pick(&r, step, reply, valid == 1, valid != 1);
		if (to == NULL) {
			rc = retry(&r, step, true);
			goto out;
		}
	} else {
		to = pick(&r, step, reply, true, false);
		if (to == NULL) {
			rc = retry(&r, step, false);
			goto out;
		}
	}
	leave_resting(&r);
	rc = advance(&r, to);
out:
	json_decref(value);
	return finish(&r, rc);
}
