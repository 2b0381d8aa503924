/* request.c - request-side helpers: methods, CGI variables, query, media types. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "dialflow/http.h"

static const struct {
	const char *name;
	http_method_t m;
} methods[] = {
    {"GET", HTTP_GET},	     {"POST", HTTP_POST}, {"PUT", HTTP_PUT},	     {"PATCH", HTTP_PATCH},
    {"DELETE", HTTP_DELETE}, {"HEAD", HTTP_HEAD}, {"OPTIONS", HTTP_OPTIONS},
};

http_method_t http_method_parse(const char *name)
{
	for (size_t i = 0; name != NULL && i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(name, methods[i].name) == 0)
			return methods[i].m;
	return HTTP_OTHER;
}

char *http_methods_str(arena_t *a, unsigned mask)
{
	char buf[64] = "";
	size_t n = 0;

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!(mask & methods[i].m))
			continue;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s", n ? ", " : "",
				      methods[i].name);
	}
	return arena_strdup(a, buf);
}

const char *http_env(const http_request_t *req, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *const *e = req->envp; e != NULL && *e != NULL; e++)
		if (strncmp(*e, name, nlen) == 0 && (*e)[nlen] == '=')
			return *e + nlen + 1;
	return NULL;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *http_urldecode(arena_t *a, const char *s, size_t len)
{
	char *out = arena_alloc(a, len + 1);
	size_t j = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (len - i < 3)
				return NULL;
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				return NULL;
			out[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '+') {
			out[j++] = ' ';
		} else if (s[i] == '\0') {
			return NULL;
		} else {
			out[j++] = s[i];
		}
	}
	out[j] = '\0';
	return out;
}

const char *http_query(const http_request_t *req, const char *name)
{
	const char *q = req->query;
	size_t nlen = strlen(name);

	while (q != NULL && *q != '\0') {
		const char *amp = strchr(q, '&');
		size_t plen = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', plen);
		size_t klen = eq ? (size_t)(eq - q) : plen;

		if (klen == nlen && strncmp(q, name, nlen) == 0) {
			if (eq == NULL)
				return "";
			return http_urldecode(req->arena, eq + 1, plen - klen - 1);
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

unsigned http_body_type(const char *ct)
{
	static const struct {
		const char *type;
		unsigned bt;
	} types[] = {
	    {"application/json", HTTP_BODY_JSON},
	    {"text/csv", HTTP_BODY_CSV},
	    {"application/x-www-form-urlencoded", HTTP_BODY_FORM},
	};
	size_t len;

	if (ct == NULL)
		return 0;
	while (*ct == ' ')
		ct++;
	len = strcspn(ct, "; \t");
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		if (len != strlen(types[i].type) || strncasecmp(ct, types[i].type, len) != 0)
			continue;
		/* Only a UTF-8 (or absent) charset parameter is acceptable. */
		const char *p = ct + len;

		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		if (*p == '\0')
			return types[i].bt;
		if (strncasecmp(p, "charset=", 8) == 0) {
			p += 8;
			if (*p == '"')
				p++;
			if (strncasecmp(p, "utf-8", 5) == 0 &&
			    (p[5] == '\0' || p[5] == '"' || p[5] == ' ' || p[5] == ';'))
				return types[i].bt;
		}
		return 0;
	}
	return 0;
}
