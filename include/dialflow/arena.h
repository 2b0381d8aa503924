/*
 * arena.h - per-request bump allocator with LIFO cleanup callbacks.
 *
 * Every HTTP request (and every worker iteration) owns one arena. Memory is
 * released in one go by arena_reset()/arena_free(); library objects that are
 * not arena memory (PGresult, json_t, ...) are tied to the arena with
 * arena_on_reset(), whose callbacks run in reverse order of registration.
 * Allocation failure aborts with a log line, so callers never check for NULL.
 */
#ifndef DIALFLOW_ARENA_H
#define DIALFLOW_ARENA_H

#include <stdarg.h>
#include <stddef.h>

typedef struct arena arena_t;
typedef void (*arena_cleanup_fn)(void *data);

/* Create an arena whose first chunk holds at least `first_chunk` bytes. Caller frees with
 * arena_free(). */
arena_t *arena_new(size_t first_chunk);
/* Run cleanups, release every chunk but the first, and rewind. The arena stays usable. */
void arena_reset(arena_t *a);
/* Run cleanups and release everything. NULL-safe. */
void arena_free(arena_t *a);

/* Allocate `n` bytes aligned for any type; never returns NULL. */
void *arena_alloc(arena_t *a, size_t n);
/* Zeroed allocation of `n` elements of `size`; aborts on overflow. */
void *arena_calloc(arena_t *a, size_t n, size_t size);
/* Copy `len` bytes of `s` and NUL-terminate. */
char *arena_strndup(arena_t *a, const char *s, size_t len);
/* Copy a NUL-terminated string; NULL in gives NULL out. */
char *arena_strdup(arena_t *a, const char *s);
/* printf into the arena. */
char *arena_sprintf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vsprintf(arena_t *a, const char *fmt, va_list ap);
/* Register fn(data) to run at the next reset/free. */
void arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data);
/* Bytes currently handed out (for tests and statistics). */
size_t arena_used(const arena_t *a);

#endif
