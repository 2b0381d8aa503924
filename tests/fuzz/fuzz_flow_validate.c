/*
 * fuzz_flow_validate.c - libFuzzer target for flow definitions: bytes ->
 * strict JSON -> flow_validate(). A definition that validates is then run
 * through the engine (start, and a fixed script of replies of every kind,
 * switch_flow resolving to itself), since the engine only ever sees
 * definitions the validator accepted.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const replies[] = {
    "{\"type\":\"text\",\"text\":{\"body\":\"1\"}}",
    "{\"type\":\"text\",\"text\":{\"body\":\"yes\"}}",
    "{\"type\":\"text\",\"text\":{\"body\":\"a@b.co\"}}",
    "{\"type\":\"interactive\",\"interactive\":{\"type\":\"button_reply\","
    "\"button_reply\":{\"id\":\"b1\",\"title\":\"One\"}}}",
    "{\"type\":\"interactive\",\"interactive\":{\"type\":\"nfm_reply\",\"nfm_reply\":{"
    "\"response_json\":\"{\\\"kit\\\":\\\"mini\\\",\\\"n\\\":2}\"}}}",
    "{\"type\":\"location\",\"location\":{\"latitude\":1.5,\"longitude\":2.5}}",
    "{\"type\":\"image\",\"image\":{\"id\":\"M1\",\"caption\":\"agent\"}}",
    "{\"type\":\"text\",\"text\":{\"body\":\"talk to a person\"}}",
};

static const json_t *current;

/* switch_flow finds the definition under test, whatever the name. */
static int load_flow(void *ud, const char *name, flow_def_ref_t *out)
{
	(void)ud;
	if (name[0] == 'x') /* some targets do not exist */
		return -1;
	*out = (flow_def_ref_t){.flow_id = 1, .version_id = 2, .definition = current};
	return 0;
}

static void check_result(const flow_session_t *s, const flow_result_t *res)
{
	if (!json_is_array(res->messages) || !json_is_object(res->contact_updates) ||
	    !json_is_array(res->events))
		abort();
	if (res->error != NULL && (json_array_size(res->messages) != 1 || !res->handover))
		abort();
	if (res->ended && s->active)
		abort();
	if (s->active && s->context == NULL)
		abort();
}

static void run_engine(const json_t *def)
{
	json_t *contact = json_pack("{s:s,s:s}", "wa_id", "15550001", "name", "Ann");
	flow_env_t env = {.load_flow = load_flow, .contact = contact};
	flow_def_ref_t ref = {.flow_id = 1, .version_id = 1, .definition = def};
	flow_session_t s;
	flow_result_t res;

	current = def;
	flow_session_init(&s);
	flow_engine_start(&env, &s, &ref, NULL, &res);
	check_result(&s, &res);
	flow_result_free(&res);
	for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]) && s.active; i++) {
		json_t *m = json_loads(replies[i], 0, NULL);
		flow_reply_t r;

		flow_reply_parse(m, &r);
		json_decref(m);
		flow_engine_handle(&env, &s, &r, &res);
		check_result(&s, &res);
		flow_result_free(&res);
		flow_reply_free(&r);
	}
	flow_session_clear(&s);
	json_decref(contact);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *def, *problems;
	size_t n;

	if (size > 256 * 1024) /* the API bounds the body before decoding */
		return 0;
	def = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (def == NULL)
		return 0;
	problems = json_array();
	n = flow_validate(def, problems);
	if (json_array_size(problems) > FLOW_MAX_PROBLEMS + 1 ||
	    (n == 0) != (json_array_size(problems) == 0))
		abort();
	if (n == 0)
		run_engine(def);
	json_decref(problems);
	json_decref(def);
	return 0;
}
