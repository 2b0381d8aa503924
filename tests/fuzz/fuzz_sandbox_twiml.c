/*
 * fuzz_sandbox_twiml.c - libFuzzer target for the sandbox's TwiML reader and
 * plan (src/sandbox/twiml.c), which read whatever the application answers.
 *
 * Input: [1 byte: say_ms][document]. Properties checked: a refusal always
 * says why and leaves no tree; an accepted tree respects every bound (depth,
 * element count, attributes, name length), its strings are NUL-terminated
 * with text_len matching, parent/child links agree; a plan holds at most
 * SANDBOX_MAX_STEPS steps with non-negative waits within the caps, and every
 * step has what its kind needs.
 */
#include <stdint.h>
#include <string.h>

#include "dialflow/sandbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int nodes;

/* Walk the tree, checking its invariants. */
static void check(const sandbox_xml_node_t *n, const sandbox_xml_node_t *parent, int depth)
{
	for (; n != NULL; n = n->next) {
		const sandbox_xml_node_t *last = NULL;

		if (++nodes > SANDBOX_XML_MAX_NODES || depth > SANDBOX_XML_MAX_DEPTH)
			__builtin_trap();
		if (n->parent != parent || n->name == NULL || n->text == NULL)
			__builtin_trap();
		if (strlen(n->name) == 0 || strlen(n->name) > SANDBOX_XML_MAX_NAME)
			__builtin_trap();
		if (strlen(n->text) > n->text_len || n->nattrs > SANDBOX_XML_MAX_ATTRS)
			__builtin_trap();
		for (size_t i = 0; i < n->nattrs; i++) {
			if (n->attrs[i].name == NULL || n->attrs[i].value == NULL ||
			    sandbox_xml_attr(n, n->attrs[i].name) == NULL)
				__builtin_trap();
			for (size_t j = 0; j < i; j++)
				if (strcmp(n->attrs[i].name, n->attrs[j].name) == 0)
					__builtin_trap();
		}
		for (last = n->child; last != NULL && last->next != NULL; last = last->next)
			;
		if (last != n->last_child)
			__builtin_trap();
		check(n->child, n, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	sandbox_xml_node_t *root = (sandbox_xml_node_t *)1;
	sandbox_plan_t plan;
	char err[160];
	int say_ms;

	if (a == NULL)
		a = arena_new(65536);
	if (size == 0)
		return 0;
	say_ms = data[0] * 4; /* 0..1020, as DIALFLOW_SANDBOX_SAY_MS allows */
	data++;
	size--;
	err[0] = '\0';
	if (sandbox_xml_parse(a, (const char *)data, size, &root, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || root != NULL)
			__builtin_trap(); /* every refusal says why, and gives no tree */
		goto out;
	}
	if (root == NULL || size > SANDBOX_XML_MAX_BYTES)
		__builtin_trap();
	nodes = 0;
	check(root, NULL, 1);
	if (sandbox_twiml_plan(a, root, say_ms, &plan, err, sizeof(err)) < 0) {
		if (err[0] == '\0' || plan.n != 0)
			__builtin_trap();
		goto out;
	}
	if (plan.n > SANDBOX_MAX_STEPS || strcmp(root->name, "Response") != 0)
		__builtin_trap();
	for (size_t i = 0; i < plan.n; i++) {
		const sandbox_step_t *s = &plan.steps[i];

		if (s->wait_ms < 0 || s->wait_ms > SANDBOX_SAY_MAX_MS * SANDBOX_MAX_LOOPS ||
		    s->verb == NULL)
			__builtin_trap();
		if (s->kind == SANDBOX_STEP_DIAL && (s->number == NULL || s->number[0] == '\0'))
			__builtin_trap();
		if (s->kind == SANDBOX_STEP_REDIRECT && (s->url == NULL || s->url[0] == '\0'))
			__builtin_trap();
		if (s->kind == SANDBOX_STEP_GATHER &&
		    (s->num_digits < 0 || s->num_digits > SANDBOX_MAX_KEYS))
			__builtin_trap();
		if (s->in_gather &&
		    (i + 1 >= plan.n || (plan.steps[i + 1].kind != SANDBOX_STEP_GATHER &&
					 !plan.steps[i + 1].in_gather)))
			__builtin_trap();
	}
out:
	arena_reset(a);
	return 0;
}
