/*
 * form.h - a strict, bounded application/x-www-form-urlencoded parser.
 *
 * Provider callbacks (Twilio) arrive form-encoded, and their signature covers
 * the decoded names and values, so the parser must agree with the sender on
 * every byte: '+' is a space, %XX is one byte, a pair without '=' has an
 * empty value, and repeated names are kept in their order. Anything else is
 * refused rather than guessed: a malformed escape, an encoded or raw NUL, a
 * raw control byte, invalid UTF-8 after decoding, an empty pair ("a=1&&b=2")
 * or an empty name, and more than FORM_MAX_PARAMS pairs or longer names and
 * values than the limits below.
 */
#ifndef DIALFLOW_FORM_H
#define DIALFLOW_FORM_H

#include <stddef.h>

#include "dialflow/arena.h"

#define FORM_MAX_PARAMS	   128
#define FORM_MAX_NAME_LEN  128	/* decoded bytes */
#define FORM_MAX_VALUE_LEN 8192 /* decoded bytes */

typedef struct form_param {
	const char *name;  /* decoded, NUL-terminated, arena-owned */
	const char *value; /* decoded, NUL-terminated, arena-owned */
} form_param_t;

typedef struct form {
	form_param_t *params; /* in body order */
	size_t n;
} form_t;

/*
 * Parse `len` bytes of `body` (need not be NUL-terminated) into *out; every
 * string lives in the arena. An empty body is zero parameters. Returns 0, or
 * -1 with a short client-safe reason in *why (static text).
 */
int form_parse(arena_t *a, const char *body, size_t len, form_t *out, const char **why);

/* The value of the first parameter called `name`, or NULL. */
const char *form_get(const form_t *f, const char *name);

/* How many parameters are called `name`. */
size_t form_count(const form_t *f, const char *name);

/*
 * The names and values as two parallel arrays in the arena (for
 * twilio_signature()). Returns 0; the arrays are NULL when f->n is 0.
 */
int form_arrays(arena_t *a, const form_t *f, const char ***names, const char ***values);

#endif
