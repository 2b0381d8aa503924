/*
 * csv.h - an RFC 4180 reader for uploaded spreadsheets, and header mapping.
 *
 * Records end at CRLF, LF or a lone CR; fields are separated by ','; a field
 * in double quotes may hold commas, line breaks and "" for one quote. A UTF-8
 * byte order mark at the start is skipped, and a final line break does not
 * start an empty record. Every limit is bounded (field bytes, fields per
 * record, record bytes). A malformed record (invalid UTF-8, a NUL byte, a
 * stray quote, a field or record over its limit, an unterminated quote) is
 * returned with a reason and the reader resumes at the next record, so one
 * bad row never hides the rows after it.
 */
#ifndef DIALFLOW_CSV_H
#define DIALFLOW_CSV_H

#include <stdbool.h>
#include <stddef.h>

#include "dialflow/arena.h"

typedef struct outbound_csv_limits {
	size_t max_field;  /* bytes of one field (after unquoting)     */
	size_t max_fields; /* fields of one record                     */
	size_t max_record; /* bytes of one record as written           */
} outbound_csv_limits_t;

/* 4 KiB fields, 64 fields, 64 KiB records. */
extern const outbound_csv_limits_t outbound_csv_default_limits;

typedef struct outbound_csv {
	arena_t *a;
	const char *buf;
	size_t len, pos;
	size_t line;   /* physical line at pos, 1-based */
	size_t record; /* records returned so far       */
	outbound_csv_limits_t lim;
	char *scratch;	 /* one field being unquoted, lim.max_field + 1 bytes */
	char **fieldbuf; /* lim.max_fields pointers                         */
} outbound_csv_t;

typedef struct outbound_csv_record {
	char **fields;	   /* nfields NUL-terminated strings (arena); NULL on error */
	size_t nfields;	   /* 0 on error                                           */
	size_t number;	   /* 1-based record number (the header is record 1)       */
	size_t line;	   /* physical line where the record starts                */
	bool blank;	   /* an empty line, or only empty fields                  */
	const char *error; /* NULL, or why the record is malformed (static text)   */
} outbound_csv_record_t;

/*
 * Read len bytes of buf (not copied: keep it alive) with lim (NULL for the
 * defaults). Field strings are allocated from a.
 */
void outbound_csv_init(outbound_csv_t *p, arena_t *a, const char *buf, size_t len,
		       const outbound_csv_limits_t *lim);

/*
 * The next record into *rec: returns 1, or 0 at the end of the input. A
 * malformed record is still returned (1) with rec->error set.
 */
int outbound_csv_next(outbound_csv_t *p, outbound_csv_record_t *rec);

/* A column the header must or may name: `aliases` is '|'-separated, lower case. */
typedef struct outbound_csv_column {
	const char *aliases; /* e.g. "phone|phone_number|mobile|number" */
	bool required;
} outbound_csv_column_t;

/*
 * Map a header record onto cols: idx[i] receives the field index of
 * cols[i], or -1. Header names are compared trimmed, case-insensitively, with
 * spaces and '-' read as '_' ("Phone Number" is phone_number). Returns 0, or
 * -1 with *why (arena text) when a required column is missing or a column is
 * named twice.
 */
int outbound_csv_map_header(arena_t *a, const outbound_csv_record_t *hdr,
			    const outbound_csv_column_t *cols, size_t ncols, int *idx,
			    const char **why);

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF). */
bool outbound_utf8_valid(const char *s, size_t len);

#endif
