/* leadimport.c - import bodies (JSON rows or CSV) to validated lead rows (see leadimport.h). */
#include <stdint.h>
#include <string.h>

#include "dialflow/csv.h"
#include "dialflow/leadimport.h"
#include "dialflow/phone.h"

/* Open addressing over the phones seen so far; twice the row cap keeps probes short. */
#define SEEN_SLOTS 16384

typedef struct builder {
	arena_t *a;
	const char *country;
	outbound_import_t *out;
	size_t cap_rows, cap_errors;
	const char **seen; /* SEEN_SLOTS entries */
} builder_t;

static void builder_init(builder_t *b, arena_t *a, const char *country, outbound_import_t *out)
{
	memset(out, 0, sizeof(*out));
	b->a = a;
	b->country = country;
	b->out = out;
	b->cap_rows = b->cap_errors = 0;
	b->seen = arena_calloc(a, SEEN_SLOTS, sizeof(char *));
}

/* Grow an arena array of `size`-byte elements to hold one more than `n`. */
static void *grow(arena_t *a, void *arr, size_t n, size_t *cap, size_t size)
{
	void *bigger;

	if (n < *cap)
		return arr;
	*cap = *cap ? *cap * 2 : 64;
	bigger = arena_calloc(a, *cap, size);
	if (n > 0)
		memcpy(bigger, arr, n * size);
	return bigger;
}

/* Whether phone was seen before; remembers it otherwise. */
static bool seen_before(builder_t *b, const char *phone)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *c = (const unsigned char *)phone; *c; c++)
		h = (h ^ *c) * 16777619u;
	for (size_t i = h % SEEN_SLOTS;; i = (i + 1) % SEEN_SLOTS) {
		if (b->seen[i] == NULL) {
			b->seen[i] = phone;
			return false;
		}
		if (strcmp(b->seen[i], phone) == 0)
			return true;
	}
}

/* s without leading and trailing ASCII whitespace, in the arena; NULL stays NULL. */
static const char *trim(arena_t *a, const char *s)
{
	size_t b = 0, e;

	if (s == NULL)
		return NULL;
	e = strlen(s);
	while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n'))
		b++;
	while (e > b &&
	       (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n'))
		e--;
	return arena_strndup(a, s + b, e - b);
}

/* Characters (code points) of valid UTF-8 s. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;

	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if ((*c & 0xC0) != 0x80)
			n++;
	return n;
}

/* Whether s holds a control character; \t \n \r are allowed when multiline. */
static bool has_control(const char *s, bool multiline)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (multiline && (*c == '\t' || *c == '\n' || *c == '\r'))
			continue;
		if (*c < 0x20 || *c == 0x7f)
			return true;
	}
	return false;
}

bool outbound_email_valid(const char *e)
{
	const char *at = strchr(e, '@');

	if (at == NULL || at == e || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
	    strchr(at + 1, '.') == NULL || at[1] == '.' || e[strlen(e) - 1] == '.')
		return false;
	for (const unsigned char *c = (const unsigned char *)e; *c; c++)
		if (*c <= 0x20 || *c == 0x7f || *c == '"' || *c == '<' || *c == '>' || *c == ',' ||
		    *c == ';')
			return false;
	return true;
}

/* Append problem p to the "; "-separated list *acc. */
static void problem(arena_t *a, const char **acc, const char *p)
{
	*acc = *acc == NULL ? p : arena_sprintf(a, "%s; %s", *acc, p);
}

static void add_error(builder_t *b, size_t row, size_t line, const char *reason)
{
	outbound_import_t *o = b->out;

	o->errors = grow(b->a, o->errors, o->nerrors, &b->cap_errors, sizeof(*o->errors));
	o->errors[o->nerrors].row = row;
	o->errors[o->nerrors].line = line;
	o->errors[o->nerrors].reason = reason;
	o->nerrors++;
}

/*
 * Judge one row. Fields are raw (untrimmed, may be NULL when absent); `pre`
 * holds problems already found (wrong JSON types), or NULL.
 */
static void add_row(builder_t *b, size_t row, size_t line, const char *phone, const char *name,
		    const char *email, const char *notes, const char *pre)
{
	outbound_import_t *o = b->out;
	const char *probs = pre;
	char e164[OUTBOUND_PHONE_BUFSZ], why[160];

	o->total++;
	phone = trim(b->a, phone);
	name = trim(b->a, name);
	email = trim(b->a, email);
	notes = trim(b->a, notes);
	if (phone != NULL && outbound_phone_normalize(phone, b->country, e164, why, sizeof(why)) !=
				 OUTBOUND_PHONE_OK)
		problem(b->a, &probs, arena_sprintf(b->a, "phone %s", why));
	if (name == NULL)
		name = "";
	if (has_control(name, false))
		problem(b->a, &probs, "name contains control characters");
	else if (utf8_chars(name) > OUTBOUND_LEAD_NAME_MAX)
		problem(b->a, &probs, "name is longer than 200 characters");
	if (email != NULL && email[0] == '\0')
		email = NULL;
	if (email != NULL && strlen(email) > OUTBOUND_LEAD_EMAIL_MAX)
		problem(b->a, &probs, "email is longer than 254 characters");
	else if (email != NULL && !outbound_email_valid(email))
		problem(b->a, &probs, "email is not a valid address");
	if (notes != NULL && notes[0] == '\0')
		notes = NULL;
	if (notes != NULL && has_control(notes, true))
		problem(b->a, &probs, "notes contain control characters");
	else if (notes != NULL && utf8_chars(notes) > OUTBOUND_LEAD_NOTES_MAX)
		problem(b->a, &probs, "notes are longer than 2000 characters");
	if (probs != NULL) {
		add_error(b, row, line, probs);
		return;
	}
	phone = arena_strdup(b->a, e164);
	if (seen_before(b, phone)) {
		o->duplicates++;
		return;
	}
	o->rows = grow(b->a, o->rows, o->nrows, &b->cap_rows, sizeof(*o->rows));
	o->rows[o->nrows] = (outbound_lead_row_t){
	    .row = row, .phone = phone, .name = name, .email = email, .notes = notes};
	o->nrows++;
}

static const char *too_many(arena_t *a)
{
	return arena_sprintf(a, "has more than %d rows (the limit of one import)",
			     OUTBOUND_IMPORT_MAX_ROWS);
}

enum { COL_PHONE, COL_NAME, COL_EMAIL, COL_NOTES, NCOLS };

static const outbound_csv_column_t columns[NCOLS] = {
    [COL_PHONE] = {"phone|phone_number|mobile|number", true},
    [COL_NAME] = {"name|full_name", false},
    [COL_EMAIL] = {"email|e_mail", false},
    [COL_NOTES] = {"notes|note", false},
};

static const char *field_at(const outbound_csv_record_t *r, int idx)
{
	return idx >= 0 && (size_t)idx < r->nfields ? r->fields[idx] : NULL;
}

int outbound_import_csv(arena_t *a, const char *body, size_t len, const char *country,
			outbound_import_t *out, const char **field, const char **why)
{
	outbound_csv_t p;
	outbound_csv_record_t hdr, r;
	builder_t b;
	int idx[NCOLS];

	builder_init(&b, a, country, out);
	outbound_csv_init(&p, a, body, len, NULL);
	do {
		if (outbound_csv_next(&p, &hdr) == 0) {
			*field = "body";
			*why = "is empty: send a header row and at least one data row";
			return -1;
		}
	} while (hdr.error == NULL && hdr.blank);
	if (hdr.error != NULL) {
		*field = "header";
		*why = arena_sprintf(a, "the header row %s", hdr.error);
		return -1;
	}
	if (outbound_csv_map_header(a, &hdr, columns, NCOLS, idx, why) < 0) {
		*field = "header";
		return -1;
	}
	while (outbound_csv_next(&p, &r) == 1) {
		size_t row = r.number - hdr.number;
		const char *pre = NULL;

		if (r.error == NULL && r.blank)
			continue;
		if (out->total >= OUTBOUND_IMPORT_MAX_ROWS) {
			*field = "rows";
			*why = too_many(a);
			return -1;
		}
		if (r.error != NULL) {
			out->total++;
			add_error(&b, row, r.line, arena_sprintf(a, "the row %s", r.error));
			continue;
		}
		for (size_t f = hdr.nfields; f < r.nfields; f++) {
			if (r.fields[f][0] != '\0') {
				pre = arena_sprintf(a, "the row has %zu fields, the header %zu",
						    r.nfields, hdr.nfields);
				break;
			}
		}
		add_row(&b, row, r.line,
			field_at(&r, idx[COL_PHONE]) ? field_at(&r, idx[COL_PHONE]) : "",
			field_at(&r, idx[COL_NAME]), field_at(&r, idx[COL_EMAIL]),
			field_at(&r, idx[COL_NOTES]), pre);
	}
	if (out->total == 0) {
		*field = "rows";
		*why = "the CSV has a header but no data rows";
		return -1;
	}
	return 0;
}

/* A string member of a JSON row: NULL when absent; a problem when of the wrong type. */
static const char *json_text(arena_t *a, json_t *row, const char *key, const char **probs)
{
	json_t *v = json_object_get(row, key);

	if (v == NULL)
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	problem(
	    a, probs,
	    arena_sprintf(a, "%s must be a string%s", key, json_is_null(v) ? ", not null" : ""));
	return NULL;
}

int outbound_import_json(arena_t *a, json_t *rows, const char *country, outbound_import_t *out,
			 const char **field, const char **why)
{
	builder_t b;
	json_t *row;
	size_t i;

	builder_init(&b, a, country, out);
	*field = "rows";
	if (!json_is_array(rows)) {
		*why = rows == NULL ? "is required" : "must be an array of objects";
		return -1;
	}
	if (json_array_size(rows) == 0) {
		*why = "must not be empty";
		return -1;
	}
	if (json_array_size(rows) > OUTBOUND_IMPORT_MAX_ROWS) {
		*why = too_many(a);
		return -1;
	}
	json_array_foreach(rows, i, row)
	{
		const char *probs = NULL, *phone, *name, *email, *notes;

		if (!json_is_object(row)) {
			out->total++;
			add_error(&b, i + 1, 0, "the row is not an object");
			continue;
		}
		phone = json_text(a, row, "phone", &probs);
		name = json_text(a, row, "name", &probs);
		email = json_text(a, row, "email", &probs);
		notes = json_text(a, row, "notes", &probs);
		if (phone == NULL && json_object_get(row, "phone") == NULL)
			problem(a, &probs, "phone is required");
		add_row(&b, i + 1, 0, phone, name, email, notes, probs);
	}
	return 0;
}
