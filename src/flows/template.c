/*
 * template.c - "{{ dotted.path | filter }}" rendering over a JSON scope (see
 * flow.h for the language). Deliberately tiny: no expressions, no loops, no
 * re-rendering of substituted values, bounded output, and template syntax
 * that does not parse never leaks to the user.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"
#include "dialflow/log.h"

#define TAG_MAX	    512 /* bytes between "{{" and "}}"        */
#define PATH_MAX_B  256 /* bytes of a dotted path             */
#define SEGS_MAX    32	/* segments of a dotted path          */
#define FILTERS_MAX 8	/* filters of one tag                 */
#define ARG_MAX	    256 /* bytes of a filter argument         */
#define DEPTH_MAX   32	/* nesting of flow_template_render()  */

/* ---- output buffer -------------------------------------------------------- */

typedef struct tbuf {
	char *p;
	size_t len, cap;
	bool full; /* FLOW_TEMPLATE_OUT_MAX reached: everything after is dropped */
} tbuf_t;

static void tb_reserve(tbuf_t *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 64;
	char *p;

	if (need <= b->cap)
		return;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL) {
		log_error("flow", "out of memory");
		abort();
	}
	b->p = p;
	b->cap = cap;
}

/* Append n bytes, cutting at a character boundary when the output limit is reached. */
static void tb_put(tbuf_t *b, const char *s, size_t n)
{
	if (b->full || n == 0)
		return;
	if (n > FLOW_TEMPLATE_OUT_MAX - b->len) {
		n = FLOW_TEMPLATE_OUT_MAX - b->len;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
		b->full = true;
	}
	tb_reserve(b, b->len + n + 1);
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* Append one byte of the template's own text. A brace never follows the same brace, so the
 * template's text can never produce "{{" or "}}". */
static void tb_lit(tbuf_t *b, char c)
{
	if ((c == '{' || c == '}') && b->len > 0 && b->p[b->len - 1] == c)
		return;
	tb_put(b, &c, 1);
}

static char *tb_take(tbuf_t *b)
{
	char *s;

	if (b->p == NULL) {
		tb_reserve(b, 1);
		b->p[0] = '\0';
	}
	s = b->p;
	memset(b, 0, sizeof(*b));
	return s;
}

/* ---- paths ---------------------------------------------------------------- */

static bool path_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* The value at path[0..len) in scope, or NULL. */
static json_t *path_getn(const json_t *scope, const char *path, size_t len)
{
	const json_t *cur = scope;
	size_t i = 0, nseg = 0;

	if (scope == NULL || len == 0 || len > PATH_MAX_B)
		return NULL;
	while (i <= len) {
		size_t start = i, seglen;
		bool digits = true;

		while (i < len && path[i] != '.') {
			if (!path_char(path[i]))
				return NULL;
			if (!isdigit((unsigned char)path[i]))
				digits = false;
			i++;
		}
		seglen = i - start;
		if (seglen == 0 || ++nseg > SEGS_MAX)
			return NULL;
		if (json_is_object(cur)) {
			cur = json_object_getn(cur, path + start, seglen);
		} else if (json_is_array(cur) && digits && seglen <= 9) {
			size_t idx = 0;

			for (size_t k = start; k < i; k++)
				idx = idx * 10 + (size_t)(path[k] - '0');
			cur = json_array_get(cur, idx);
		} else {
			return NULL;
		}
		if (cur == NULL)
			return NULL;
		i++; /* skip '.', or step past the end */
	}
	return (json_t *)cur;
}

json_t *flow_path_get(const json_t *scope, const char *path)
{
	return path != NULL ? path_getn(scope, path, strlen(path)) : NULL;
}

bool flow_template_has_tags(const char *s)
{
	return s != NULL && strstr(s, "{{") != NULL;
}

/* ---- values as text ------------------------------------------------------- */

/* Append the text form of v: strings as they are, numbers in their shortest form, true/false,
 * null and missing as nothing, arrays and objects as compact JSON. */
static void put_value(tbuf_t *b, const json_t *v)
{
	char num[64];
	char *dump;

	if (v == NULL || json_is_null(v))
		return;
	if (json_is_string(v)) {
		tb_put(b, json_string_value(v), json_string_length(v));
	} else if (json_is_integer(v)) {
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		tb_put(b, num, strlen(num));
	} else if (json_is_real(v)) {
		snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		tb_put(b, num, strlen(num));
	} else if (json_is_boolean(v)) {
		tb_put(b, json_is_true(v) ? "true" : "false", json_is_true(v) ? 4 : 5);
	} else {
		dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (dump != NULL)
			tb_put(b, dump, strlen(dump));
		free(dump);
	}
}

/* ---- tags ----------------------------------------------------------------- */

typedef enum { F_DEFAULT, F_UPPER, F_LOWER, F_TITLE } filter_kind_t;

typedef struct filter {
	filter_kind_t kind;
	const char *arg; /* default's text, not NUL-terminated */
	size_t arglen;
} filter_t;

typedef struct tag {
	const char *path;
	size_t pathlen;
	filter_t f[FILTERS_MAX];
	size_t nf;
} tag_t;

static size_t skip_ws(const char *s, size_t i, size_t len)
{
	while (i < len && isspace((unsigned char)s[i]))
		i++;
	return i;
}

/* Parse a filter's argument list "(...)" at s[*i] == '('. Accepts one quoted or bare literal,
 * optionally followed by ", true|false" (Jinja's boolean flag, ignored). */
static int parse_args(const char *s, size_t len, size_t *i, filter_t *f)
{
	size_t k = skip_ws(s, *i + 1, len), start;

	if (k < len && (s[k] == '\'' || s[k] == '"')) {
		char q = s[k++];

		start = k;
		while (k < len && s[k] != q)
			k++;
		if (k >= len)
			return -1;
		f->arg = s + start;
		f->arglen = k - start;
		k++;
	} else {
		start = k;
		while (k < len && (isalnum((unsigned char)s[k]) || strchr("_.+-", s[k]) != NULL))
			k++;
		f->arg = s + start;
		f->arglen = k - start;
	}
	if (f->arglen > ARG_MAX)
		return -1;
	k = skip_ws(s, k, len);
	if (k < len && s[k] == ',') {
		k = skip_ws(s, k + 1, len);
		if (len - k >= 4 && strncmp(s + k, "true", 4) == 0)
			k += 4;
		else if (len - k >= 5 && strncmp(s + k, "false", 5) == 0)
			k += 5;
		else
			return -1;
		k = skip_ws(s, k, len);
	}
	if (k >= len || s[k] != ')')
		return -1;
	*i = k + 1;
	return 0;
}

/* Parse the text between "{{" and "}}". Returns 0, or -1 when it is not a valid tag. */
static int parse_tag(const char *s, size_t len, tag_t *t)
{
	size_t i = skip_ws(s, 0, len), start = i;

	memset(t, 0, sizeof(*t));
	while (i < len && (path_char(s[i]) || s[i] == '.'))
		i++;
	if (i == start)
		return -1;
	t->path = s + start;
	t->pathlen = i - start;
	for (;;) {
		size_t nstart;
		filter_t *f;

		i = skip_ws(s, i, len);
		if (i == len)
			return 0;
		if (s[i] != '|' || t->nf == FILTERS_MAX)
			return -1;
		i = skip_ws(s, i + 1, len);
		nstart = i;
		while (i < len && (isalpha((unsigned char)s[i]) || s[i] == '_'))
			i++;
		f = &t->f[t->nf++];
		if (i - nstart == 7 && strncmp(s + nstart, "default", 7) == 0)
			f->kind = F_DEFAULT;
		else if (i - nstart == 5 && strncmp(s + nstart, "upper", 5) == 0)
			f->kind = F_UPPER;
		else if (i - nstart == 5 && strncmp(s + nstart, "lower", 5) == 0)
			f->kind = F_LOWER;
		else if (i - nstart == 5 && strncmp(s + nstart, "title", 5) == 0)
			f->kind = F_TITLE;
		else
			return -1;
		i = skip_ws(s, i, len);
		if (i < len && s[i] == '(') {
			if (parse_args(s, len, &i, f) < 0)
				return -1;
			if (f->kind != F_DEFAULT && f->arglen > 0)
				return -1;
		} else if (f->kind == F_DEFAULT) {
			return -1;
		}
	}
}

/* The end of the tag opened before s[start] ("}}" outside quotes), or -1 when it does not
 * close within TAG_MAX bytes. */
static long find_close(const char *s, size_t len, size_t start)
{
	char q = 0;

	for (size_t i = start; i + 1 < len && i - start < TAG_MAX; i++) {
		if (q != 0) {
			if (s[i] == q)
				q = 0;
		} else if (s[i] == '\'' || s[i] == '"') {
			q = s[i];
		} else if (s[i] == '}' && s[i + 1] == '}') {
			return (long)i;
		}
	}
	return -1;
}

static void case_map(char *s, size_t n, filter_kind_t kind)
{
	bool word_start = true;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x80) { /* part of a non-ASCII letter: left alone, inside a word */
			word_start = false;
			continue;
		}
		if (kind == F_UPPER)
			s[i] = (char)toupper(c);
		else if (kind == F_LOWER)
			s[i] = (char)tolower(c);
		else
			s[i] = (char)(word_start ? toupper(c) : tolower(c));
		word_start = !isalnum(c);
	}
}

/*
 * Evaluate a parsed tag. Either *value is set (borrowed, may be NULL for missing) and the tag
 * keeps its JSON type, or the text is left in txt and *is_text is true. *literal is true when
 * the text comes from the template itself (a default), so it goes through tb_lit().
 */
static void eval_tag(const tag_t *t, const json_t *scope, const json_t **value, tbuf_t *txt,
		     bool *is_text, bool *literal)
{
	const json_t *v = path_getn(scope, t->path, t->pathlen);

	*is_text = false;
	*literal = false;
	for (size_t k = 0; k < t->nf; k++) {
		const filter_t *f = &t->f[k];

		if (f->kind == F_DEFAULT) {
			bool empty = *is_text ? txt->len == 0
					      : (v == NULL || json_is_null(v) ||
						 (json_is_string(v) && json_string_length(v) == 0));
			if (empty) {
				txt->len = 0;
				txt->full = false;
				tb_put(txt, f->arg, f->arglen);
				*is_text = true;
				*literal = true;
			}
			continue;
		}
		if (!*is_text) {
			txt->len = 0;
			txt->full = false;
			put_value(txt, v);
			*is_text = true;
		}
		if (txt->len > 0)
			case_map(txt->p, txt->len, f->kind);
	}
	*value = v;
}

/* Render one tag's text into out. */
static void render_tag(tbuf_t *out, const char *s, size_t len, const json_t *scope)
{
	tag_t t;
	tbuf_t txt = {0};
	const json_t *v;
	bool is_text, literal;

	if (parse_tag(s, len, &t) < 0)
		return; /* an invalid tag renders as nothing */
	eval_tag(&t, scope, &v, &txt, &is_text, &literal);
	if (!is_text)
		put_value(out, v);
	else if (literal)
		for (size_t i = 0; i < txt.len; i++)
			tb_lit(out, txt.p[i]);
	else
		tb_put(out, txt.p, txt.len);
	free(txt.p);
}

static void render_into(tbuf_t *out, const char *s, size_t len, const json_t *scope)
{
	size_t i = 0;

	while (i < len && !out->full) {
		if (s[i] == '{' && i + 1 < len && s[i + 1] == '{') {
			long close = find_close(s, len, i + 2);

			if (close < 0) { /* unterminated: drop the braces, keep the text */
				i += 2;
				continue;
			}
			render_tag(out, s + i + 2, (size_t)close - (i + 2), scope);
			i = (size_t)close + 2;
		} else if (s[i] == '}' && i + 1 < len && s[i + 1] == '}') {
			i += 2; /* a stray close */
		} else {
			tb_lit(out, s[i]);
			i++;
		}
	}
}

char *flow_template_render_string(const char *tpl, const json_t *scope)
{
	tbuf_t out = {0};

	if (tpl != NULL)
		render_into(&out, tpl, strlen(tpl), scope);
	return tb_take(&out);
}

/* A string that is one tag and nothing else (spaces around allowed) keeps its value's type. */
static json_t *render_single(const char *s, size_t len, const json_t *scope, bool *done)
{
	size_t a = skip_ws(s, 0, len), z = len;
	long close;
	tag_t t;
	tbuf_t txt = {0}, clean = {0};
	const json_t *v;
	bool is_text, literal;
	json_t *res = NULL;

	*done = false;
	while (z > a && isspace((unsigned char)s[z - 1]))
		z--;
	if (z - a < 4 || s[a] != '{' || s[a + 1] != '{')
		return NULL;
	close = find_close(s, z, a + 2);
	if (close < 0 || (size_t)close + 2 != z)
		return NULL;
	*done = true;
	if (parse_tag(s + a + 2, (size_t)close - (a + 2), &t) < 0)
		return json_string("");
	eval_tag(&t, scope, &v, &txt, &is_text, &literal);
	if (!is_text) {
		res = v != NULL ? json_deep_copy(v) : json_string("");
	} else {
		if (literal)
			for (size_t i = 0; i < txt.len; i++)
				tb_lit(&clean, txt.p[i]);
		else
			tb_put(&clean, txt.p != NULL ? txt.p : "", txt.len);
		res = json_stringn(clean.p != NULL ? clean.p : "", clean.len);
	}
	free(txt.p);
	free(clean.p);
	return res != NULL ? res : json_string("");
}

static json_t *render_value(const json_t *value, const json_t *scope, int depth)
{
	json_t *out;

	if (value == NULL)
		return json_null();
	if (json_is_string(value)) {
		const char *s = json_string_value(value);
		size_t len = json_string_length(value);
		bool done;
		tbuf_t b = {0};

		if (memchr(s, '{', len) == NULL && memchr(s, '}', len) == NULL)
			return json_stringn(s, len);
		out = render_single(s, len, scope, &done);
		if (done)
			return out;
		render_into(&b, s, len, scope);
		out = json_stringn(b.p != NULL ? b.p : "", b.len);
		free(b.p);
		return out != NULL ? out : json_string("");
	}
	if (depth >= DEPTH_MAX)
		return json_null();
	if (json_is_array(value)) {
		size_t i;
		json_t *el;

		out = json_array();
		json_array_foreach(value, i, el)
		{
			json_array_append_new(out, render_value(el, scope, depth + 1));
		}
		return out;
	}
	if (json_is_object(value)) {
		const char *k;
		json_t *el;

		out = json_object();
		json_object_foreach((json_t *)value, k, el)
		{
			json_object_set_new(out, k, render_value(el, scope, depth + 1));
		}
		return out;
	}
	return json_deep_copy(value);
}

json_t *flow_template_render(const json_t *value, const json_t *scope)
{
	json_t *out = render_value(value, scope, 0);

	if (out == NULL) {
		log_error("flow", "out of memory");
		abort();
	}
	return out;
}
