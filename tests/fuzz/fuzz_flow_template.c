/*
 * fuzz_flow_template.c - libFuzzer target for the template renderer. The
 * input is a template, a NUL byte, and a scope as JSON. Checks: output is
 * bounded, and with an empty scope no "{{" or "}}" ever comes out. The scope's
 * "cond" (if an object) is also validated and evaluated as a transition
 * condition against the template text as a reply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, '\0', size);
	size_t tlen = nul != NULL ? (size_t)(nul - data) : size;
	char *tpl = malloc(tlen + 1);
	json_t *scope = NULL, *v, *out, *problems;
	char *s;

	if (tpl == NULL)
		abort();
	memcpy(tpl, data, tlen);
	tpl[tlen] = '\0';
	if (nul != NULL)
		scope = json_loadb((const char *)nul + 1, size - tlen - 1, JSON_REJECT_DUPLICATES,
				   NULL);

	/* strings */
	s = flow_template_render_string(tpl, json_is_object(scope) ? scope : NULL);
	if (strlen(s) > FLOW_TEMPLATE_OUT_MAX)
		abort();
	free(s);
	s = flow_template_render_string(tpl, NULL);
	if (strstr(s, "{{") != NULL || strstr(s, "}}") != NULL)
		abort();
	free(s);

	/* JSON values: the template as one string, and the template bytes as a JSON document */
	v = json_stringn(tpl, tlen); /* NULL unless valid UTF-8 */
	if (v != NULL) {
		out = flow_template_render(v, scope);
		json_decref(out);
		json_decref(v);
	}
	v = json_loadb(tpl, tlen, JSON_DECODE_ANY, NULL);
	if (v != NULL) {
		out = flow_template_render(v, scope);
		json_decref(out);
		json_decref(v);
	}

	/* conditions over the same scope, the template as the reply */
	if (json_is_object(json_object_get(scope, "cond"))) {
		flow_reply_t r;
		flow_cond_input_t in = {.reply = &r, .scope = scope, .reply_valid = true};

		flow_reply_init_text(&r, tpl);
		problems = json_array();
		(void)flow_condition_validate(json_object_get(scope, "cond"), "c", problems);
		(void)flow_condition_eval(json_object_get(scope, "cond"), &in);
		json_decref(problems);
		flow_reply_free(&r);
	}
	json_decref(scope);
	free(tpl);
	return 0;
}
