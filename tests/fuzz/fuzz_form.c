/*
 * fuzz_form.c - libFuzzer target for what a Twilio webhook does with hostile
 * input before it trusts anything: the strict form parser (form.h), the
 * signature check over the parsed parameters (twilio_signature_check), and
 * the XML escaping of values that end up in TwiML.
 *
 * Input: [1 byte: length L of a signature header][L bytes][form body].
 * Properties checked: a parsed form is well-formed (names non-empty, no NUL
 * inside, bounded); the signature we compute ourselves verifies and the
 * fuzzer's does not unless it is that one; escaped text holds no markup.
 */
#include <stdint.h>
#include <string.h>

#include "dialflow/form.h"
#include "dialflow/provider.h"
#include "dialflow/webhooks.h"

#define TOKEN "fuzz-auth-token"
#define URL   "https://localhost:8443/webhooks/twilio/call-status"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	const char **names, **values, *why = NULL;
	char sig[64], theirs[64];
	size_t siglen;
	form_t f;

	if (a == NULL)
		a = arena_new(65536);
	if (size == 0)
		return 0;
	siglen = data[0] < size - 1 ? data[0] : size - 1;
	siglen = siglen < sizeof(theirs) - 1 ? siglen : sizeof(theirs) - 1;
	memcpy(theirs, data + 1, siglen);
	theirs[siglen] = '\0';
	data += 1 + siglen;
	size -= 1 + siglen;

	if (form_parse(a, (const char *)data, size, &f, &why) < 0) {
		if (why == NULL)
			__builtin_trap(); /* every refusal says why */
		goto out;
	}
	if (f.n > FORM_MAX_PARAMS)
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++) {
		size_t nl = strlen(f.params[i].name), vl = strlen(f.params[i].value);

		if (nl == 0 || nl > FORM_MAX_NAME_LEN || vl > FORM_MAX_VALUE_LEN)
			__builtin_trap();
	}
	form_arrays(a, &f, &names, &values);
	if (twilio_signature(TOKEN, URL, names, values, f.n, sig, sizeof(sig)) != 0)
		__builtin_trap();
	if (!twilio_signature_check(TOKEN, URL, names, values, f.n, sig))
		__builtin_trap();
	if (strcmp(theirs, sig) != 0 &&
	    twilio_signature_check(TOKEN, URL, names, values, f.n, theirs))
		__builtin_trap();
	if (twilio_signature_check("", URL, names, values, f.n, sig))
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++) {
		webhook_xml_t x;

		webhook_xml_init(&x, a);
		webhook_xml_text(&x, f.params[i].value);
		if (strpbrk(x.buf, "<>\"'") != NULL || strlen(x.buf) != x.len)
			__builtin_trap();
	}
out:
	arena_reset(a);
	return 0;
}
