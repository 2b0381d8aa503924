/* xml.c - a growing XML document in the request arena, for TwiML (see webhooks.h). */
#include <string.h>

#include "dialflow/webhooks.h"

void webhook_xml_init(webhook_xml_t *x, arena_t *a)
{
	x->arena = a;
	x->cap = 512;
	x->len = 0;
	x->buf = arena_alloc(a, x->cap);
	x->buf[0] = '\0';
}

static void xml_reserve(webhook_xml_t *x, size_t more)
{
	char *nb;

	if (x->len + more + 1 <= x->cap)
		return;
	while (x->len + more + 1 > x->cap)
		x->cap *= 2;
	nb = arena_alloc(x->arena, x->cap);
	memcpy(nb, x->buf, x->len + 1);
	x->buf = nb;
}

void webhook_xml_raw(webhook_xml_t *x, const char *s)
{
	size_t n = strlen(s);

	xml_reserve(x, n);
	memcpy(x->buf + x->len, s, n + 1);
	x->len += n;
}

void webhook_xml_text(webhook_xml_t *x, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		const char *rep = NULL;

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f)
				rep = " ";
			break;
		}
		if (rep != NULL) {
			webhook_xml_raw(x, rep);
		} else {
			xml_reserve(x, 1);
			x->buf[x->len++] = (char)c;
			x->buf[x->len] = '\0';
		}
	}
}
