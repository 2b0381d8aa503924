/*
 * fuzz_http.c - libFuzzer target for the request-line parsers that see raw
 * client bytes: query strings (http_query / http_urldecode), Content-Type
 * classification, and the strict number parser used for CONTENT_LENGTH,
 * X-Business-Id and ?page=.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/http.h"
#include "dialflow/strnum.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	http_request_t req;
	char *s;
	int64_t v;

	if (a == NULL)
		a = arena_new(65536);
	s = arena_strndup(a, (const char *)data, size);
	memset(&req, 0, sizeof(req));
	req.arena = a;
	req.query = s;
	(void)http_query(&req, "page");
	(void)http_query(&req, "page_size");
	(void)http_query(&req, "q");
	(void)http_urldecode(a, (const char *)data, size);
	(void)http_body_type(s);
	(void)strnum_i64(s, INT64_MIN, INT64_MAX, &v);
	(void)strnum_i64n((const char *)data, size, 1, INT64_MAX, &v);
	(void)http_paging(&req, &v, &v);
	arena_reset(a);
	return 0;
}
