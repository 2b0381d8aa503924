/*
 * flow_process.h - inbound WhatsApp messages through the flow engine
 * (src/flows/process.c): the webhook's inbound hook.
 */
#ifndef DIALFLOW_FLOW_PROCESS_H
#define DIALFLOW_FLOW_PROCESS_H

#include "dialflow/arena.h"
#include "dialflow/db.h"
#include "dialflow/whatsapp.h"

/*
 * Handle one new inbound message (a wa_inbound_hook_t): in the message's
 * transaction, tenant-scoped, with the contact's row locked. Returns 0, or a
 * database ERR_* (the webhook then rolls the message back and answers 503).
 */
int flow_process_inbound(db_t *db, arena_t *a, const wa_inbound_t *in);

/* Register the module's statements (and flow_store's). */
void flow_process_register(void);

/*
 * Plug the flows into the WhatsApp webhook: the inbound hook above, and the
 * audit row of a refused webhook (webhook.signature_failed). Call once at
 * start-up of the API process.
 */
void flow_process_install(void);

#endif
