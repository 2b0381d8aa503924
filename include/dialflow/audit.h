/*
 * audit.h - the audit trail: one helper writes the row and the tagged log line.
 *
 * audit_record() inserts into audit_events inside the request's current
 * transaction, so the trail commits or rolls back with the change it
 * describes, and logs the same event as one `[TAG]` line.
 */
#ifndef DIALFLOW_AUDIT_H
#define DIALFLOW_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "dialflow/http.h"

typedef struct audit_event {
	const char *tag;	   /* "AUDIT", "SECURITY", ... (without brackets) */
	const char *action;	   /* "user.create", "tenant.cross_access", ...   */
	const char *resource_type; /* "user", "business", ... or NULL            */
	int64_t resource_id;	   /* 0 when none                                */
	int64_t business_id;	   /* tenant the event belongs to, 0 for none    */
	const char *outcome;	   /* "ok", "denied", "failed"                   */
	json_t *details;	   /* borrowed, may be NULL; never secrets       */
} audit_event_t;

/* Record ev for the request's principal. Returns 0 or an ERR_* code (logged). */
int audit_record(http_request_t *req, const audit_event_t *ev);

#endif
