/*
 * fuzz_router.c - libFuzzer target for path matching against the real API
 * route table (typed {id:int} / {x:str} captures on hostile paths).
 */
#include <stdint.h>
#include <string.h>

#include "dialflow/api.h"
#include "dialflow/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	static const http_method_t methods[] = {HTTP_GET, HTTP_POST, HTTP_PATCH, HTTP_DELETE};
	const http_route_t *route;
	http_request_t req;
	unsigned allow;

	if (a == NULL)
		a = arena_new(65536);
	if (size == 0)
		return 0;
	memset(&req, 0, sizeof(req));
	req.arena = a;
	req.method = methods[data[0] & 3];
	req.path = arena_strndup(a, (const char *)data + 1, size - 1);
	if (api_route_match(&req, &route, &allow) == ROUTE_FOUND) {
		/* captures must be sane: ints positive, strings bounded */
		for (int i = 0; i < req.nparams; i++)
			if (req.sparams[i] == NULL && req.params[i] <= 0)
				__builtin_trap();
	}
	arena_reset(a);
	return 0;
}
