/*
 * arena.c - bump allocator in chunks, with LIFO cleanups (nginx pools,
 * PostgreSQL memory contexts). The first chunk survives a reset, so a
 * steady-state request allocates nothing from malloc.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/arena.h"
#include "dialflow/log.h"

#define ARENA_ALIGN 16

struct chunk {
	struct chunk *next;
	size_t size; /* usable bytes in data[] */
	size_t used;
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

struct cleanup {
	struct cleanup *next;
	arena_cleanup_fn fn;
	void *data;
};

struct arena {
	struct chunk *head; /* current chunk, the first one is last in the list */
	struct chunk *first;
	struct cleanup *cleanups;
	size_t total_used;
};

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	if (p == NULL) {
		log_error("arena", "out of memory allocating %zu bytes", n);
		abort();
	}
	return p;
}

static struct chunk *chunk_new(size_t size)
{
	struct chunk *c;

	if (size > SIZE_MAX - sizeof(*c)) {
		log_error("arena", "allocation size overflow");
		abort();
	}
	c = xmalloc(sizeof(*c) + size);
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

arena_t *arena_new(size_t first_chunk)
{
	arena_t *a = xmalloc(sizeof(*a));

	if (first_chunk < 1024)
		first_chunk = 1024;
	a->first = a->head = chunk_new(first_chunk);
	a->cleanups = NULL;
	a->total_used = 0;
	return a;
}

static void run_cleanups(arena_t *a)
{
	/* Cleanups may allocate or register more cleanups; drain until empty. */
	while (a->cleanups != NULL) {
		struct cleanup *c = a->cleanups;

		a->cleanups = c->next;
		c->fn(c->data);
	}
}

void arena_reset(arena_t *a)
{
	struct chunk *c, *next;

	run_cleanups(a);
	for (c = a->head; c != a->first; c = next) {
		next = c->next;
		free(c);
	}
	a->head = a->first;
	a->first->used = 0;
	a->first->next = NULL;
	a->total_used = 0;
}

void arena_free(arena_t *a)
{
	if (a == NULL)
		return;
	arena_reset(a);
	free(a->first);
	free(a);
}

void *arena_alloc(arena_t *a, size_t n)
{
	struct chunk *c = a->head;
	size_t need;
	void *p;

	if (n == 0)
		n = 1;
	if (n > SIZE_MAX - ARENA_ALIGN) {
		log_error("arena", "allocation size overflow");
		abort();
	}
	need = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (c->size - c->used < need) {
		size_t size = a->first->size * 2;

		if (size < need)
			size = need;
		c = chunk_new(size);
		c->next = a->head;
		a->head = c;
	}
	p = c->data + c->used;
	c->used += need;
	a->total_used += need;
	return p;
}

void *arena_calloc(arena_t *a, size_t n, size_t size)
{
	void *p;

	if (size != 0 && n > SIZE_MAX / size) {
		log_error("arena", "calloc size overflow");
		abort();
	}
	p = arena_alloc(a, n * size);
	memset(p, 0, n * size);
	return p;
}

char *arena_strndup(arena_t *a, const char *s, size_t len)
{
	char *p = arena_alloc(a, len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
	if (s == NULL)
		return NULL;
	return arena_strndup(a, s, strlen(s));
}

char *arena_vsprintf(arena_t *a, const char *fmt, va_list ap)
{
	va_list cp;
	char small[256];
	int n;
	char *p;

	va_copy(cp, ap);
	n = vsnprintf(small, sizeof(small), fmt, cp);
	va_end(cp);
	if (n < 0) {
		log_error("arena", "vsnprintf failed");
		abort();
	}
	p = arena_alloc(a, (size_t)n + 1);
	if ((size_t)n < sizeof(small))
		memcpy(p, small, (size_t)n + 1);
	else
		vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *arena_sprintf(arena_t *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vsprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void arena_on_reset(arena_t *a, arena_cleanup_fn fn, void *data)
{
	struct cleanup *c = arena_alloc(a, sizeof(*c));

	c->fn = fn;
	c->data = data;
	c->next = a->cleanups;
	a->cleanups = c;
}

size_t arena_used(const arena_t *a)
{
	return a->total_used;
}
