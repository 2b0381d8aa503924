/*
 * leadimport.h - a lead import body (JSON rows or CSV) turned into validated
 * rows, before anything touches the database.
 *
 * Each row's phone is normalised to E.164 with the business's default
 * country (phone.h); name, email and notes are trimmed and checked against the
 * leads table's limits. A row with any problem is reported with all of them
 * and left out; a valid row whose phone repeats an earlier row is counted as
 * a duplicate and left out. Problems with the request as a whole (more than
 * OUTBOUND_IMPORT_MAX_ROWS rows, no rows, a CSV without a phone column) make
 * the whole import fail with a field name and a reason. Pure: no I/O.
 */
#ifndef DIALFLOW_LEADIMPORT_H
#define DIALFLOW_LEADIMPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "dialflow/arena.h"

#define OUTBOUND_IMPORT_MAX_ROWS 5000
#define OUTBOUND_LEAD_NAME_MAX	 200  /* characters, as leads.name  */
#define OUTBOUND_LEAD_EMAIL_MAX	 254  /* bytes, as leads.email      */
#define OUTBOUND_LEAD_NOTES_MAX	 2000 /* characters, as leads.notes */

typedef struct outbound_lead_row {
	size_t row;	   /* 1-based position among the data rows (CSV: after the header) */
	const char *phone; /* E.164                                    */
	const char *name;  /* "" when none                             */
	const char *email; /* NULL when none                           */
	const char *notes; /* NULL when none                           */
} outbound_lead_row_t;

typedef struct outbound_import_error {
	size_t row;	    /* as outbound_lead_row_t.row               */
	size_t line;	    /* CSV: physical line where the row starts; 0 for JSON */
	const char *reason; /* every problem of the row, "; "-separated */
} outbound_import_error_t;

typedef struct outbound_import {
	outbound_lead_row_t *rows; /* valid rows, first occurrence of each phone, in order */
	size_t nrows;
	outbound_import_error_t *errors; /* invalid rows, in order */
	size_t nerrors;
	size_t duplicates; /* valid rows repeating an earlier row's phone */
	size_t total;	   /* data rows read (blank CSV lines are not rows) */
} outbound_import_t;

/*
 * Validate a CSV body of len bytes with a header row (phone|phone_number|
 * mobile|number, name|full_name, email, notes; other columns are ignored).
 * country: the default for national numbers (may be NULL). Everything lives
 * in arena a. Returns 0 with *out filled, or -1 with *field and *why naming
 * what is wrong with the request as a whole.
 */
int outbound_import_csv(arena_t *a, const char *body, size_t len, const char *country,
			outbound_import_t *out, const char **field, const char **why);

/* The same for the `rows` array of a JSON import ([{phone, name?, email?, notes?}]). */
int outbound_import_json(arena_t *a, json_t *rows, const char *country, outbound_import_t *out,
			 const char **field, const char **why);

/* A plausible e-mail address: one '@' with text on both sides, a dot in the domain, no spaces. */
bool outbound_email_valid(const char *e);

#endif
