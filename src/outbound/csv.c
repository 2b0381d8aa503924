/* csv.c - an RFC 4180 reader with per-record errors, and header mapping (see csv.h). */
#include <string.h>

#include "dialflow/csv.h"

const outbound_csv_limits_t outbound_csv_default_limits = {
    .max_field = 4096, .max_fields = 64, .max_record = 65536};

enum { ST_START, ST_UNQUOTED, ST_QUOTED, ST_AFTER_QUOTE };

void outbound_csv_init(outbound_csv_t *p, arena_t *a, const char *buf, size_t len,
		       const outbound_csv_limits_t *lim)
{
	memset(p, 0, sizeof(*p));
	p->a = a;
	p->buf = buf;
	p->len = buf != NULL ? len : 0;
	p->line = 1;
	p->lim = lim != NULL ? *lim : outbound_csv_default_limits;
	if (p->lim.max_fields == 0)
		p->lim.max_fields = 1;
	if (p->len >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
		p->pos = 3;
	p->scratch = arena_alloc(a, p->lim.max_field + 1);
	p->fieldbuf = arena_calloc(a, p->lim.max_fields, sizeof(char *));
}

bool outbound_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		unsigned cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
			min = 0x80;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
			min = 0x800;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false; /* continuation byte, overlong C0/C1, or F5..FF */
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

/* State of the record being read. */
typedef struct rec_state {
	size_t flen;	   /* bytes in p->scratch                 */
	bool overflow;	   /* the field passed lim.max_field      */
	bool nul;	   /* the field holds a NUL byte          */
	size_t nf;	   /* fields stored in p->fieldbuf        */
	bool all_empty;	   /* every field so far is ""            */
	const char *error; /* the first problem of the record     */
} rec_state_t;

static void set_error(rec_state_t *rs, const char *why)
{
	if (rs->error == NULL)
		rs->error = why;
}

static void append(outbound_csv_t *p, rec_state_t *rs, unsigned char c)
{
	if (c == '\0')
		rs->nul = true;
	if (rs->flen >= p->lim.max_field) {
		rs->overflow = true;
		return;
	}
	p->scratch[rs->flen++] = (char)c;
}

static void end_field(outbound_csv_t *p, rec_state_t *rs)
{
	if (rs->nf >= p->lim.max_fields)
		set_error(rs, "has too many fields");
	else if (rs->overflow)
		set_error(rs, "has a field that is too long");
	else if (rs->nul)
		set_error(rs, "contains a NUL byte");
	else if (!outbound_utf8_valid(p->scratch, rs->flen))
		set_error(rs, "is not valid UTF-8");
	if (rs->error == NULL) {
		p->fieldbuf[rs->nf++] = arena_strndup(p->a, p->scratch, rs->flen);
		if (rs->flen > 0)
			rs->all_empty = false;
	}
	rs->flen = 0;
	rs->overflow = false;
	rs->nul = false;
}

/* Consume the rest of a line break that started with c (CRLF is one break). */
static void line_break(outbound_csv_t *p, unsigned char c)
{
	if (c == '\r' && p->pos < p->len && p->buf[p->pos] == '\n')
		p->pos++;
	p->line++;
}

int outbound_csv_next(outbound_csv_t *p, outbound_csv_record_t *rec)
{
	rec_state_t rs = {.all_empty = true};
	size_t start = p->pos;
	int st = ST_START;
	bool done = false;

	memset(rec, 0, sizeof(*rec));
	if (p->pos >= p->len)
		return 0;
	rec->number = ++p->record;
	rec->line = p->line;
	while (!done) {
		unsigned char c;

		if (p->pos >= p->len) {
			if (st == ST_QUOTED)
				set_error(&rs, "has a quoted field that is never closed");
			end_field(p, &rs);
			break;
		}
		c = (unsigned char)p->buf[p->pos++];
		if (p->pos - start > p->lim.max_record)
			set_error(&rs, "is too long");
		switch (st) {
		case ST_START:
		case ST_UNQUOTED:
			if (c == ',') {
				end_field(p, &rs);
				st = ST_START;
			} else if (c == '\r' || c == '\n') {
				line_break(p, c);
				end_field(p, &rs);
				done = true;
			} else if (c == '"' && st == ST_START) {
				st = ST_QUOTED;
			} else {
				if (c == '"')
					set_error(&rs, "has a quote inside an unquoted field");
				append(p, &rs, c);
				st = ST_UNQUOTED;
			}
			break;
		case ST_QUOTED:
			if (c == '"') {
				st = ST_AFTER_QUOTE;
				break;
			}
			if (c == '\n' ||
			    (c == '\r' && (p->pos >= p->len || p->buf[p->pos] != '\n')))
				p->line++;
			append(p, &rs, c);
			break;
		case ST_AFTER_QUOTE:
			if (c == '"') {
				append(p, &rs, '"');
				st = ST_QUOTED;
			} else if (c == ',') {
				end_field(p, &rs);
				st = ST_START;
			} else if (c == '\r' || c == '\n') {
				line_break(p, c);
				end_field(p, &rs);
				done = true;
			} else {
				set_error(&rs, "has text after a closing quote");
				append(p, &rs, c);
				st = ST_UNQUOTED;
			}
			break;
		}
	}
	if (rs.error != NULL) {
		rec->error = rs.error;
		return 1;
	}
	rec->nfields = rs.nf;
	rec->fields = arena_alloc(p->a, rs.nf * sizeof(char *));
	memcpy(rec->fields, p->fieldbuf, rs.nf * sizeof(char *));
	rec->blank = rs.all_empty;
	return 1;
}

/* A header name as compared: trimmed, lower case, ' ' and '-' as '_'. */
static char *header_key(arena_t *a, const char *s)
{
	size_t b = 0, e = strlen(s);
	char *k;

	while (b < e && (s[b] == ' ' || s[b] == '\t'))
		b++;
	while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	k = arena_strndup(a, s + b, e - b);
	for (char *c = k; *c; c++) {
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
		else if (*c == ' ' || *c == '-')
			*c = '_';
	}
	return k;
}

static bool alias_match(const char *aliases, const char *key)
{
	size_t klen = strlen(key);

	while (*aliases != '\0') {
		size_t n = strcspn(aliases, "|");

		if (n == klen && memcmp(aliases, key, n) == 0)
			return true;
		aliases += n;
		if (*aliases == '|')
			aliases++;
	}
	return false;
}

int outbound_csv_map_header(arena_t *a, const outbound_csv_record_t *hdr,
			    const outbound_csv_column_t *cols, size_t ncols, int *idx,
			    const char **why)
{
	for (size_t i = 0; i < ncols; i++)
		idx[i] = -1;
	for (size_t f = 0; f < hdr->nfields; f++) {
		const char *key = header_key(a, hdr->fields[f]);

		if (key[0] == '\0')
			continue;
		for (size_t i = 0; i < ncols; i++) {
			if (!alias_match(cols[i].aliases, key))
				continue;
			if (idx[i] >= 0) {
				*why = arena_sprintf(a,
						     "columns %d and %zu both give the %.*s "
						     "(keep one of them)",
						     idx[i] + 1, f + 1,
						     (int)strcspn(cols[i].aliases, "|"),
						     cols[i].aliases);
				return -1;
			}
			idx[i] = (int)f;
			break;
		}
	}
	for (size_t i = 0; i < ncols; i++) {
		if (cols[i].required && idx[i] < 0) {
			*why = arena_sprintf(a, "needs a %.*s column (named one of: %s)",
					     (int)strcspn(cols[i].aliases, "|"), cols[i].aliases,
					     cols[i].aliases);
			return -1;
		}
	}
	return 0;
}
