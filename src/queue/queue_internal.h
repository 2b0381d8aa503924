/* queue_internal.h - what the queue module's files share and nobody else needs. */
#ifndef DIALFLOW_QUEUE_INTERNAL_H
#define DIALFLOW_QUEUE_INTERNAL_H

/* Register lead_from_call.c's statements (called by queue_register()). */
void queue_lead_from_call_register(void);

#endif
