/* form.c - strict application/x-www-form-urlencoded parsing (see form.h). */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "dialflow/form.h"

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Whether s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/*
 * Decode one name or value (`len` raw bytes) into the arena, at most `max`
 * decoded bytes. Returns NULL with *why set on any defect.
 */
static char *decode(arena_t *a, const char *s, size_t len, size_t max, const char **why)
{
	char *out = arena_alloc(a, len + 1);
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (j >= max) {
			*why = "a form name or value is too long";
			return NULL;
		}
		if (c == '%') {
			int hi, lo;

			if (len - i < 3 || (hi = hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = hexval((unsigned char)s[i + 2])) < 0) {
				*why = "malformed percent-escape in the form body";
				return NULL;
			}
			if (hi == 0 && lo == 0) {
				*why = "NUL byte in the form body";
				return NULL;
			}
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (c == '+') {
			out[j++] = ' ';
		} else if (c < 0x20 || c == 0x7f) {
			*why =
			    c == 0 ? "NUL byte in the form body" : "control byte in the form body";
			return NULL;
		} else {
			out[j++] = (char)c;
		}
	}
	out[j] = '\0';
	if (!utf8_valid((const unsigned char *)out, j)) {
		*why = "the form body is not valid UTF-8";
		return NULL;
	}
	return out;
}

int form_parse(arena_t *a, const char *body, size_t len, form_t *out, const char **why)
{
	size_t cap = 1, pos = 0;

	out->params = NULL;
	out->n = 0;
	if (len == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (body[i] == '&')
			cap++;
	if (cap > FORM_MAX_PARAMS) {
		*why = "too many form parameters";
		return -1;
	}
	out->params = arena_calloc(a, cap, sizeof(*out->params));
	while (pos <= len) {
		const char *seg = body + pos;
		const char *amp = memchr(seg, '&', len - pos);
		size_t seglen = amp ? (size_t)(amp - seg) : len - pos;
		const char *eq = memchr(seg, '=', seglen);
		size_t nlen = eq ? (size_t)(eq - seg) : seglen;
		form_param_t *p = &out->params[out->n];

		if (seglen == 0) {
			*why = "empty form parameter";
			return -1;
		}
		if (nlen == 0) {
			*why = "form parameter without a name";
			return -1;
		}
		p->name = decode(a, seg, nlen, FORM_MAX_NAME_LEN, why);
		if (p->name == NULL)
			return -1;
		if (p->name[0] == '\0') {
			*why = "form parameter without a name";
			return -1;
		}
		p->value = eq ? decode(a, eq + 1, seglen - nlen - 1, FORM_MAX_VALUE_LEN, why) : "";
		if (p->value == NULL)
			return -1;
		out->n++;
		if (amp == NULL)
			break;
		pos += seglen + 1;
	}
	return 0;
}

const char *form_get(const form_t *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->params[i].name, name) == 0)
			return f->params[i].value;
	return NULL;
}

size_t form_count(const form_t *f, const char *name)
{
	size_t n = 0;

	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->params[i].name, name) == 0)
			n++;
	return n;
}

int form_arrays(arena_t *a, const form_t *f, const char ***names, const char ***values)
{
	*names = NULL;
	*values = NULL;
	if (f->n == 0)
		return 0;
	*names = arena_calloc(a, f->n, sizeof(char *));
	*values = arena_calloc(a, f->n, sizeof(char *));
	for (size_t i = 0; i < f->n; i++) {
		(*names)[i] = f->params[i].name;
		(*values)[i] = f->params[i].value;
	}
	return 0;
}
