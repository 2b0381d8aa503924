/*
 * fuzz_wa_webhook.c - libFuzzer target for the WhatsApp webhook payload
 * (src/webhooks/wa_payload.c): strict decoding, the pre-signature scan of
 * phone_number_ids and the extraction of messages and statuses, with the
 * invariants the webhook relies on checked on every accepted input, and
 * the signature check over the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/whatsapp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	const char *why = NULL;
	char sig[WA_SIGNATURE_LEN + 1];
	wa_webhook_t wh;

	if (a == NULL)
		a = arena_new(65536);
	if (wa_webhook_parse(a, (const char *)data, size, &wh, &why) == 0) {
		if (wh.naccounts > WA_MAX_ACCOUNTS || wh.nmessages + wh.nstatuses > WA_MAX_EVENTS)
			abort();
		for (size_t i = 0; i < wh.nmessages; i++) {
			const wa_message_t *m = &wh.messages[i];

			if (m->wamid == NULL || strlen(m->wamid) > WA_MAX_ID_LEN ||
			    m->from == NULL || m->type == NULL || m->phone_number_id == NULL ||
			    m->raw == NULL ||
			    (m->text != NULL && strlen(m->text) > WA_MAX_TEXT_LEN) ||
			    (m->profile_name != NULL && strlen(m->profile_name) > WA_MAX_NAME_LEN))
				abort();
		}
		for (size_t i = 0; i < wh.nstatuses; i++)
			if (wh.statuses[i].wamid == NULL || wh.statuses[i].status == NULL)
				abort();
	} else if (why == NULL) {
		abort();
	}
	if (wa_signature("fuzz-secret", (const char *)data, size, sig, sizeof(sig)) != 0 ||
	    !wa_signature_check("fuzz-secret", (const char *)data, size, sig))
		abort();
	arena_reset(a);
	return 0;
}
