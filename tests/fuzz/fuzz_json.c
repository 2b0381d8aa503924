/*
 * fuzz_json.c - libFuzzer target for request bodies: strict JSON decoding
 * (duplicates, UTF-8, NUL, huge numbers) and the typed field getters every
 * handler validates with.
 */
#include <stdint.h>

#include "dialflow/jsonutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	const char *why = NULL, *s;
	json_fielderr_t fe;
	json_t *v;
	int64_t n;
	bool b;
	size_t len;

	if (a == NULL)
		a = arena_new(65536);
	v = json_decode_strict(a, (const char *)data, size, &why);
	if (v != NULL) {
		json_fielderr_init(&fe, a);
		(void)json_get_str(v, "email", true, 3, 254, &s, &fe);
		(void)json_get_str(v, "name", false, 0, 200, &s, &fe);
		(void)json_get_int(v, "max_concurrent_calls", false, 1, 1000, &n, &fe);
		(void)json_get_bool(v, "is_active", false, &b, &fe);
		(void)json_dump_arena(a, v, &len);
		if (fe.list != NULL)
			(void)json_dump_arena(a, fe.list, &len);
	}
	arena_reset(a);
	return 0;
}
