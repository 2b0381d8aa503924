/*
 * fuzz_csv.c - libFuzzer target for lead imports: the RFC 4180 reader with
 * tight limits (so the limit paths are reached), header mapping, the whole
 * CSV import (per-row validation, dedupe, the row cap) and the E.164
 * normaliser on every field, with a default country picked by the input.
 */
#include <stdint.h>
#include <string.h>

#include "dialflow/csv.h"
#include "dialflow/leadimport.h"
#include "dialflow/phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const countries[] = {"US", "IL", "GB", "DE", "RU", "IT", "AR",
					"HU", "BY", "AU", "JP", "ZZ", "",   NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static arena_t *a;
	static const outbound_csv_limits_t tight = {
	    .max_field = 32, .max_fields = 6, .max_record = 96};
	static const outbound_csv_column_t cols[] = {{"phone|mobile", true}, {"name", false}};
	const char *country = countries[size > 0 ? data[0] % 14 : 0];
	const char *field = NULL, *why = NULL;
	outbound_import_t imp;
	outbound_csv_t p;
	outbound_csv_record_t r, hdr;
	int idx[2];
	bool have_hdr = false;

	if (a == NULL)
		a = arena_new(1 << 16);
	outbound_csv_init(&p, a, (const char *)data, size, &tight);
	while (outbound_csv_next(&p, &r) == 1) {
		if (r.error != NULL)
			continue;
		if (!have_hdr) {
			hdr = r;
			have_hdr = true;
			(void)outbound_csv_map_header(a, &hdr, cols, 2, idx, &why);
		}
		for (size_t i = 0; i < r.nfields; i++) {
			char out[OUTBOUND_PHONE_BUFSZ], reason[160];

			if (outbound_phone_normalize(r.fields[i], country, out, reason,
						     sizeof(reason)) == OUTBOUND_PHONE_OK &&
			    !outbound_phone_is_e164(out))
				__builtin_trap();
		}
	}
	if (outbound_import_csv(a, (const char *)data, size, country, &imp, &field, &why) == 0) {
		if (imp.nrows + imp.duplicates + imp.nerrors != imp.total ||
		    imp.total > OUTBOUND_IMPORT_MAX_ROWS)
			__builtin_trap();
		for (size_t i = 0; i < imp.nrows; i++)
			if (!outbound_phone_is_e164(imp.rows[i].phone))
				__builtin_trap();
	}
	arena_reset(a);
	return 0;
}
