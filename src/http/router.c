/* router.c - match a path against the route table with typed segments. */
#include <string.h>

#include "dialflow/router.h"
#include "dialflow/strnum.h"

#define MAX_SEGMENT 128

/* Compare one pattern segment with one path segment; capture typed ones. */
static int match_segment(const char *pat, size_t plen, const char *seg, size_t slen,
			 http_request_t *req, int *np)
{
	if (plen >= 2 && pat[0] == '{' && pat[plen - 1] == '}') {
		const char *colon = memchr(pat, ':', plen);
		size_t tlen;

		if (colon == NULL || *np >= HTTP_MAX_PARAMS)
			return 0;
		tlen = (size_t)(pat + plen - 1 - (colon + 1));
		if (tlen == 3 && strncmp(colon + 1, "int", 3) == 0) {
			int64_t v;

			if (strnum_i64n(seg, slen, 1, INT64_MAX, &v) < 0)
				return 0;
			req->params[*np] = v;
			req->sparams[*np] = NULL;
			(*np)++;
			return 1;
		}
		if (tlen == 3 && strncmp(colon + 1, "str", 3) == 0) {
			if (slen == 0 || slen > MAX_SEGMENT)
				return 0;
			for (size_t i = 0; i < slen; i++) {
				char c = seg[i];

				if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
				      (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
					return 0;
			}
			req->params[*np] = 0;
			req->sparams[*np] = arena_strndup(req->arena, seg, slen);
			(*np)++;
			return 1;
		}
		return 0;
	}
	return plen == slen && memcmp(pat, seg, slen) == 0;
}

/* Whether the whole path matches the pattern; captures into req on success. */
static int match_path(const char *pattern, const char *path, http_request_t *req)
{
	const char *p = pattern, *s = path;
	int np = 0;

	for (;;) {
		size_t plen, slen;

		if (*p != '/' || *s != '/')
			return 0;
		p++;
		s++;
		plen = strcspn(p, "/");
		slen = strcspn(s, "/");
		if (!match_segment(p, plen, s, slen, req, &np))
			return 0;
		p += plen;
		s += slen;
		if (*p == '\0' && *s == '\0')
			break;
		/* tolerate exactly one trailing slash on the request path */
		if (*p == '\0' && s[0] == '/' && s[1] == '\0')
			break;
		if (*p == '\0' || *s == '\0')
			return 0;
	}
	req->nparams = np;
	return 1;
}

int http_route_match(const http_route_t *routes, size_t n, http_request_t *req,
		     const http_route_t **out, unsigned *allow)
{
	unsigned methods = 0;
	http_method_t m = req->method == HTTP_HEAD ? HTTP_GET : req->method;

	*out = NULL;
	*allow = 0;
	if (req->path == NULL || req->path[0] != '/')
		return ROUTE_NOT_FOUND;
	for (size_t i = 0; i < n; i++) {
		if (!match_path(routes[i].pattern, req->path, req))
			continue;
		if (routes[i].methods & m) {
			*out = &routes[i];
			return ROUTE_FOUND;
		}
		methods |= routes[i].methods;
	}
	if (methods == 0)
		return ROUTE_NOT_FOUND;
	*allow = methods;
	return ROUTE_BAD_METHOD;
}
