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
#include "dialflow/queue.h"
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
    /* The async answering-machine verdict; form only, like the status callback. */
    {HTTP_POST, TWILIO_AMD_PATH, webhook_twilio_amd, WEBHOOK, HTTP_BODY_FORM},
    /* WhatsApp Cloud API: the subscription handshake, and the signed events. The
     * POST reads the raw body itself: the signature is checked before parsing. */
    {HTTP_GET, WA_WEBHOOK_PATH, webhook_whatsapp_verify, WEBHOOK, HTTP_BODY_NONE},
    {HTTP_POST, WA_WEBHOOK_PATH, webhook_whatsapp, WEBHOOK, HTTP_BODY_NONE},
};
const size_t webhook_nroutes = sizeof(webhook_routes) / sizeof(webhook_routes[0]);

static const db_stmt_t stmts[] = {
    /* SECURITY DEFINER: the only read before the tenant is known. */
    {"webhook_call_business", "SELECT webhook_call_business($1)"},
    /* SECURITY DEFINER (0006): the voice webhook's one read, by CallSid. */
    {"webhook_voice_context", "SELECT * FROM webhook_voice_context($1)"},
    /* $1 business, $2 job, $3 digits: what a <Gather> collected (scoped by RLS too) */
    {"webhook_gather_digits", "UPDATE outbound_call_jobs SET digits = $3, updated_at = now() "
			      "WHERE id = $2::bigint AND business_id = $1::bigint"},
    /* $1 business, $2 lead: the callee asked not to be called again */
    {"webhook_opt_out", "UPDATE leads SET do_not_call = true, updated_at = now() "
			"WHERE id = $2::bigint AND business_id = $1::bigint AND NOT do_not_call "
			"RETURNING id"},
    /*
     * $1 sid, $2 business, $3 answered_by, $4 the machine's greeting ended.
     * The AMD action is asked for once per job (the first machine verdict), for a
     * live call, when the business hangs up on machines or the script has a
     * voicemail text to leave; `requested` is true when this statement asked.
     */
    {"webhook_amd_apply",
     "WITH u AS (UPDATE outbound_call_jobs j SET answered_by = $3, "
     "voicemail_requested_at = CASE WHEN $4::boolean "
     "AND j.answered_by IS DISTINCT FROM 'machine' AND j.voicemail_requested_at IS NULL "
     "AND j.status IN ('dialing', 'calling') AND j.hangup_requested_at IS NULL "
     "AND NOT r.force_cancel AND (b.amd_action = 'hangup' OR nullif(CASE WHEN r.script "
     "IS NOT NULL THEN r.script->>'voicemail' ELSE s.voicemail END, '') IS NOT NULL) "
     "THEN now() ELSE j.voicemail_requested_at END, updated_at = now() "
     "FROM outbound_call_runs r JOIN businesses b ON b.id = r.business_id "
     "LEFT JOIN call_scripts s ON s.id = r.script_id AND s.business_id = r.business_id "
     "WHERE j.call_sid = $1 AND j.business_id = $2::bigint AND r.id = j.run_id "
     "RETURNING j.id, j.voicemail_requested_at IS NOT NULL "
     "AND j.voicemail_requested_at = now() AS requested) SELECT id, requested FROM u"},
    /* $1 job: wake a worker for it (delivered at commit) */
    {"webhook_amd_notify", "SELECT pg_notify('" QUEUE_CHANNEL "', 'amd:' || $1)"},
};

void webhooks_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	/* outbound_call_event()'s statements; registering twice is harmless. */
	outbound_events_register();
	wa_webhook_register();
	wa_outbox_register(); /* wa_outbox_enqueue(), for the inbound hook */
}
