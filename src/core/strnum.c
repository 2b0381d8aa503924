/* strnum.c - strict decimal parsing (kore_strtonum64 with a length bound). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/strnum.h"

int strnum_i64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	char buf[32];
	char *end = NULL;
	long long v;
	size_t i = 0;

	if (s == NULL || len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == '-')
		i = 1;
	if (i >= len)
		return -1;
	/* digits only: no spaces, no '+', no hex, no embedded NUL */
	for (size_t k = i; k < len; k++)
		if (buf[k] < '0' || buf[k] > '9')
			return -1;
	/* no leading zeros ("007"), but "0" itself is fine */
	if (buf[i] == '0' && len - i > 1)
		return -1;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno != 0 || end != buf + len)
		return -1;
	if (v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

int strnum_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (s == NULL)
		return -1;
	return strnum_i64n(s, strlen(s), min, max, out);
}
