/*
 * audit.h - the audit trail: one helper writes the row and the tagged log line.
 *
 * audit_record() inserts into audit_events inside the request's current
 * transaction, so the trail commits or rolls back with the change it
 * describes, and logs the same event as one `[TAG]` line.
 *
 * audit_record_detached() is for refusals whose transaction must not commit
 * (a cross-tenant 403) and for events before any tenant is known (login):
 * the row is written by the API pipeline after the request's transaction
 * ended, in a transaction of its own, so it is kept even when the request's
 * work rolls back.
 *
 * Rows never carry secrets, tokens or message bodies; phone numbers in
 * details are masked by the caller (log_mask_phone), emails are hashed
 * (audit_email_hash).
 */
#ifndef DIALFLOW_AUDIT_H
#define DIALFLOW_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "dialflow/db.h"
#include "dialflow/http.h"

typedef struct audit_event {
	const char *tag;	   /* "AUDIT", "SECURITY", ... (without brackets) */
	const char *action;	   /* "user.create", "tenant.cross_access", ...   */
	const char *resource_type; /* "user", "business", ... or NULL            */
	int64_t resource_id;	   /* 0 when none                                */
	int64_t business_id;	   /* tenant the event belongs to, 0 for none    */
	const char *outcome;	   /* "ok", "denied", "failed"                   */
	json_t *details;	   /* borrowed, may be NULL; never secrets       */
	/* the actor when the request has no principal (login); else ignored */
	int64_t actor_id;
	const char *actor_role;
} audit_event_t;

/* Record ev for the request's principal. Returns 0 or an ERR_* code (logged). */
int audit_record(http_request_t *req, const audit_event_t *ev);

/*
 * Log ev now and write its row after the request's transaction ends, in its
 * own transaction (see above). ev's strings and details must live as long as
 * the request (literals or the request arena). Never fails the request.
 */
void audit_record_detached(http_request_t *req, const audit_event_t *ev);

/*
 * Write the detached events of req (the API pipeline calls it once the
 * request's transaction has committed or rolled back). Returns 0 or ERR_*.
 */
int audit_flush_detached(http_request_t *req);

/*
 * Record ev outside any HTTP request (the webhook's inbound processing, the
 * worker): the row in db's current transaction, with no actor, and its log
 * line. Returns 0 or ERR_*.
 */
int audit_write(db_t *db, arena_t *a, const audit_event_t *ev);

/* "sha256:<first 16 hex>" of the lower-cased email, into the request arena. */
const char *audit_email_hash(http_request_t *req, const char *email);

#endif
