/*
 * routes.c - provider webhooks: public routes, each authenticated by its
 * provider's signature inside the handler, and the module's statements.
 *
 * The handlers manage their own transactions (GUARD_NO_TX): nothing may be
 * read before the signature holds, and the tenant is known only after the
 * call's business has been looked up.
 */
#include "dialflow/api.h"
#include "dialflow/outbound.h"
#include "dialflow/provider.h"
#include "dialflow/webhooks.h"
#include "dialflow/whatsapp.h"

#define WEBHOOK                                                                                    \
	{                                                                                          \
		GUARD_PUBLIC | GUARD_NO_TX, 0, NULL                                                \
	}

const http_route_t webhook_routes[] = {
    /* Form only: anything else is 415 from the dispatcher. */
    {HTTP_POST, TWILIO_STATUS_PATH, webhook_twilio_status, WEBHOOK, HTTP_BODY_FORM},
    /* It checks the media type itself, to answer TwiML even then; also <Gather>'s action. */
    {HTTP_POST, TWILIO_VOICE_PATH, webhook_twilio_voice, WEBHOOK, HTTP_BODY_NONE},
    /* WhatsApp Cloud API: the subscription handshake, and the signed events. The
     * POST reads the raw body itself: the signature is checked before parsing. */
    {HTTP_GET, WA_WEBHOOK_PATH, webhook_whatsapp_verify, WEBHOOK, HTTP_BODY_NONE},
    {HTTP_POST, WA_WEBHOOK_PATH, webhook_whatsapp, WEBHOOK, HTTP_BODY_NONE},
};
const size_t webhook_nroutes = sizeof(webhook_routes) / sizeof(webhook_routes[0]);

static const db_stmt_t stmts[] = {
    /* SECURITY DEFINER: the only read before the tenant is known. */
    {"webhook_call_business", "SELECT webhook_call_business($1)"},
    /*
     * Scoped by RLS to the tenant set just before, and filtered explicitly too.
     * The run's own snapshot of its script wins (editing a script never changes
     * a run in progress); the script row is the fallback.
     */
    {"webhook_voice_call",
     "SELECT j.status, r.status, r.force_cancel, "
     "CASE WHEN r.script IS NOT NULL THEN r.script::text "
     "WHEN s.id IS NOT NULL THEN json_build_object('kind', s.kind, 'text', s.text, "
     "'language', s.language, 'voice', s.voice, 'bridge_to', s.bridge_to, "
     "'options', s.options, 'voicemail', s.voicemail)::text END "
     "FROM outbound_call_jobs j JOIN outbound_call_runs r ON r.id = j.run_id "
     "LEFT JOIN call_scripts s ON s.id = r.script_id AND s.business_id = r.business_id "
     "WHERE j.call_sid = $1 AND j.business_id = $2::bigint"},
};

void webhooks_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	/* outbound_call_event()'s statements; registering twice is harmless. */
	outbound_events_register();
	wa_webhook_register();
	wa_outbox_register(); /* wa_outbox_enqueue(), for the inbound hook */
}
