/*
 * jsonutil.h - jansson helpers: strict decoding and field validation.
 *
 * Decoding always rejects duplicate keys, invalid UTF-8, NUL in strings and
 * numbers that do not fit. Field getters record problems in a field-error
 * list so a handler answers 400 invalid_input with every problem at once.
 */
#ifndef DIALFLOW_JSONUTIL_H
#define DIALFLOW_JSONUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "dialflow/arena.h"

/* A list of {field, message} problems; owned by the request arena. */
typedef struct json_fielderr {
	json_t *list; /* JSON array of {"field","message"}; NULL while empty */
	arena_t *arena;
} json_fielderr_t;

/*
 * Decode `len` bytes as one JSON value. Returns a new reference tied to the
 * arena (decref'd at reset), or NULL with a client-safe reason in *why.
 */
json_t *json_decode_strict(arena_t *a, const char *buf, size_t len, const char **why);

void json_fielderr_init(json_fielderr_t *fe, arena_t *a);
void json_fielderr_add(json_fielderr_t *fe, const char *field, const char *msg);
bool json_fielderr_any(const json_fielderr_t *fe);

/*
 * Field getters. `required` makes a missing key an error. A present key of the
 * wrong type, or null, is always an error. On error they record it and leave *out alone.
 * Returns 1 when a value was read, 0 when absent, -1 on error.
 */
int json_get_str(json_t *obj, const char *key, bool required, size_t minlen, size_t maxlen,
		 const char **out, json_fielderr_t *fe);
int json_get_int(json_t *obj, const char *key, bool required, int64_t min, int64_t max,
		 int64_t *out, json_fielderr_t *fe);
int json_get_bool(json_t *obj, const char *key, bool required, bool *out, json_fielderr_t *fe);

/* Serialise compactly into the arena; returns the text and sets *len. */
char *json_dump_arena(arena_t *a, const json_t *v, size_t *len);

/* Tie a reference to the arena: it is decref'd at reset. Returns v. */
json_t *json_arena(arena_t *a, json_t *v);

#endif
