/*
 * fuzz_voice.c - libFuzzer target for the voice, <Gather> and AMD requests
 * Twilio posts (twiml.h): the form body parsed into the voice request
 * (twiml_voice_req_parse, under every ?mode=), the choice its Digits select
 * in a default menu and an explicit one, and the TwiML answered for it with
 * hostile values from the form templated into the texts.
 *
 * Input: [1 byte: the mode (index into a table; the rest of the byte range
 * picks a junk mode)][form body].
 * Properties checked: a parsed request holds only what its contract allows
 * (a call sid of 1..63 [A-Za-z0-9], DTMF of 1..20 [0-9*#] or none, a known
 * AMD verdict); every document is one <Response> whose only markup is our
 * own tags, and whose every '&' starts one of the five XML entities.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/form.h"
#include "dialflow/twiml.h"

#define VOICE_URL "https://localhost:8443/webhooks/twilio/voice"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const modes[] = {NULL,  "gather", "whisper", "voicemail", "dial_done",
				    "amd", "answer", "",	"GATHER",    "voicemail\n"};

static const char *const scripts[] = {
    "{\"kind\":\"gather\",\"text\":\"Hi {{ lead.name }}, press 1 or 2\",\"voice\":\"alice\","
    "\"language\":\"en-US\",\"bridge_to\":\"+15550000999\",\"voicemail\":\"Bye {{lead.name}}\","
    "\"options\":{\"whisper\":\"Lead {{ lead.name }} ({{ lead.phone }})\",\"repeat\":2}}",
    "{\"kind\":\"gather\",\"text\":\"menu\",\"options\":{\"num_digits\":3,\"choices\":{"
    "\"1\":{\"action\":\"bridge\",\"bridge_to\":\"+15550000555\",\"say\":\"{{lead.name}}\"},"
    "\"2\":{\"action\":\"opt_out\"},\"*9#\":\"star nine\",\"0\":{\"say\":\"{{business.name}}\"}}}}",
    "{\"kind\":\"bridge\",\"text\":\"{{ lead.email }}\",\"bridge_to\":\"+15550000999\","
    "\"options\":{\"timeout\":30,\"unavailable\":\"{{lead.name}} later\"}}",
    "{\"kind\":\"say\",\"text\":\"{{ lead.name | upper }}\",\"options\":{\"repeat\":9}}",
};

/* Only our tags, and only the five entities. */
static void check_doc(const webhook_xml_t *x)
{
	static const char *const tags[] = {"<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
					   "<Response>",
					   "</Response>",
					   "<Say>",
					   "<Say ",
					   "</Say>",
					   "<Gather ",
					   "</Gather>",
					   "<Dial>",
					   "<Dial ",
					   "</Dial>",
					   "<Number>",
					   "<Number ",
					   "</Number>",
					   "<Hangup/>",
					   "<Pause "};
	static const char *const ents[] = {"&lt;", "&gt;", "&amp;", "&quot;", "&apos;"};
	static const char head[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>";
	const char *p;

	if (strlen(x->buf) != x->len || strncmp(x->buf, head, sizeof(head) - 1) != 0 ||
	    x->len < 11 || strcmp(x->buf + x->len - 11, "</Response>") != 0)
		__builtin_trap();
	for (p = x->buf; (p = strchr(p, '<')) != NULL; p++) {
		size_t i;

		for (i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
			if (strncmp(p, tags[i], strlen(tags[i])) == 0)
				break;
		if (i == sizeof(tags) / sizeof(tags[0]))
			__builtin_trap();
	}
	for (p = x->buf; (p = strchr(p, '&')) != NULL; p++) {
		size_t i;

		for (i = 0; i < sizeof(ents) / sizeof(ents[0]); i++)
			if (strncmp(p, ents[i], strlen(ents[i])) == 0)
				break;
		if (i == sizeof(ents) / sizeof(ents[0]))
			__builtin_trap();
	}
}

static void check_req(const twiml_voice_req_t *vr)
{
	size_t n;

	n = strspn(vr->call_sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
	if (n == 0 || n > 63 || vr->call_sid[n] != '\0')
		__builtin_trap();
	if (vr->digits != NULL) {
		n = strspn(vr->digits, "0123456789*#");
		if (n == 0 || n > TWIML_DIGITS_MAX || vr->digits[n] != '\0' || vr->digits_invalid)
			__builtin_trap();
	}
	if (vr->mode == TWIML_MODE_AMD && twiml_amd_class(vr->answered_by) == NULL)
		__builtin_trap();
	if (vr->dial_status != NULL &&
	    strspn(vr->dial_status, "abcdefghijklmnopqrstuvwxyz-") != strlen(vr->dial_status))
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	static json_t *parsed[sizeof(scripts) / sizeof(scripts[0])];
	const char *why = NULL, *mode;
	twiml_voice_req_t vr;
	form_t f;

	if (a == NULL) {
		a = arena_new(65536);
		for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++)
			if ((parsed[i] = json_loads(scripts[i], 0, NULL)) == NULL)
				abort();
	}
	if (size == 0)
		return 0;
	mode = data[0] < sizeof(modes) / sizeof(modes[0]) ? modes[data[0]] : "junk";
	data++;
	size--;
	if (form_parse(a, (const char *)data, size, &f, &why) < 0)
		goto out;
	if (twiml_voice_req_parse(&f, mode, &vr, &why) < 0) {
		if (why == NULL)
			__builtin_trap(); /* every refusal says why */
		goto out;
	}
	check_req(&vr);
	{
		/* whatever the caller sent lands in the texts, escaped */
		const char *name = form_get(&f, "CallerName"), *biz = form_get(&f, "From");
		json_t *scope =
		    json_pack("{s:{s:s,s:s,s:n},s:{s:s}}", "lead", "name", name ? name : "",
			      "phone", biz ? biz : "", "email", "business", "name",
			      form_get(&f, "To") ? form_get(&f, "To") : "");
		twiml_ctx_t c = {
		    .scope = scope, .voice_url = VOICE_URL, .caller_id = form_get(&f, "Caller")};

		if (scope == NULL)
			goto out; /* invalid UTF-8 never passes form_parse; belt and braces */
		for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
			twiml_script_t s;
			twiml_choice_t ch;
			webhook_xml_t x;

			twiml_script_from_json(parsed[i], &s);
			twiml_choose(&s, form_get(&f, "Digits"), &ch);
			if ((ch.kind == TWIML_CHOICE_OPT_OUT || ch.kind == TWIML_CHOICE_BRIDGE) &&
			    (vr.digits == NULL || vr.digits_invalid))
				__builtin_trap(); /* only real DTMF selects an action */
			webhook_xml_init(&x, a);
			twiml_choice(&x, &s, &c, &ch);
			check_doc(&x);
			webhook_xml_init(&x, a);
			twiml_answer(&x, &s, &c, vr.answered_by == TWIML_AMD_MACHINE_END);
			check_doc(&x);
			webhook_xml_init(&x, a);
			twiml_whisper(&x, &s, &c);
			check_doc(&x);
			webhook_xml_init(&x, a);
			twiml_voicemail(&x, &s, &c);
			check_doc(&x);
			webhook_xml_init(&x, a);
			twiml_dial_done(&x, &s, &c, vr.dial_status);
			check_doc(&x);
		}
		json_decref(scope);
	}
out:
	arena_reset(a);
	return 0;
}
