/*
 * strnum.h - strict number parsing for every number that comes from outside.
 *
 * The whole string must be consumed: no leading spaces, no sign unless
 * allowed by the range, no trailing bytes, no overflow.
 */
#ifndef DIALFLOW_STRNUM_H
#define DIALFLOW_STRNUM_H

#include <stddef.h>
#include <stdint.h>

/* Parse decimal `s` (NUL-terminated) into *out within [min, max]. Returns 0, or -1 on any defect.
 */
int strnum_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* The same over `len` bytes that need not be NUL-terminated. */
int strnum_i64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

#endif
