/*
 * conditions.c - transition conditions (evaluation and validation), and the
 * small text helpers the flows module shares: whole-word matching, strict
 * numbers, regex compilation of flow-file patterns, problem lists.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/flow.h"

#define PATHSZ	    512
#define COMPLEX_MAX 2000L /* estimated automaton size of one regular expression     */
#define LOOPS_MAX   8	  /* repetitions of what can match nothing, in one pattern */

/* ---- shared helpers ------------------------------------------------------- */

size_t flow_utf8_len(const char *s)
{
	size_t n = 0;

	for (; s != NULL && *s != '\0'; s++)
		if (((unsigned char)*s & 0xC0) != 0x80)
			n++;
	return n;
}

size_t flow_problem_add(json_t *problems, const char *path, const char *msg)
{
	size_t n;

	if (!json_is_array(problems))
		return 0;
	n = json_array_size(problems);
	if (n > FLOW_MAX_PROBLEMS)
		return 0;
	if (n == FLOW_MAX_PROBLEMS) {
		json_array_append_new(problems, json_pack("{s:s,s:s}", "path", "", "message",
							  "too many problems; only the first are "
							  "listed"));
		return 0;
	}
	json_array_append_new(problems, json_pack("{s:s,s:s}", "path", path, "message", msg));
	return 1;
}

int flow_number_parse(const char *s, double *out)
{
	char buf[64];
	size_t a = 0, z, i, digits = 0;
	char *end;
	double d;

	if (s == NULL)
		return -1;
	z = strlen(s);
	while (a < z && isspace((unsigned char)s[a]))
		a++;
	while (z > a && isspace((unsigned char)s[z - 1]))
		z--;
	if (z - a == 0 || z - a >= sizeof(buf))
		return -1;
	i = a;
	if (s[i] == '+' || s[i] == '-')
		i++;
	for (; i < z && isdigit((unsigned char)s[i]); i++)
		digits++;
	if (i < z && s[i] == '.') {
		for (i++; i < z && isdigit((unsigned char)s[i]); i++)
			digits++;
	}
	if (digits == 0)
		return -1;
	if (i < z && (s[i] == 'e' || s[i] == 'E')) {
		size_t ed = 0;

		i++;
		if (i < z && (s[i] == '+' || s[i] == '-'))
			i++;
		for (; i < z && isdigit((unsigned char)s[i]); i++)
			ed++;
		if (ed == 0)
			return -1;
	}
	if (i != z)
		return -1;
	memcpy(buf, s + a, z - a);
	buf[z - a] = '\0';
	d = strtod(buf, &end);
	if (*end != '\0' || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

/* The code point whose encoding ends just before s[i] (or starts at s[i] when forward). */
static unsigned decode_at(const unsigned char *s, size_t len, size_t i)
{
	unsigned c = s[i], cp;
	size_t n;

	if (c < 0x80)
		return c;
	if (c >= 0xF0) {
		n = 3;
		cp = c & 0x07;
	} else if (c >= 0xE0) {
		n = 2;
		cp = c & 0x0F;
	} else if (c >= 0xC0) {
		n = 1;
		cp = c & 0x1F;
	} else {
		return 0xFFFD;
	}
	for (size_t k = 1; k <= n; k++) {
		if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
			return 0xFFFD;
		cp = (cp << 6) | (s[i + k] & 0x3F);
	}
	return cp;
}

/* Letters, digits and '_' make words; so does any non-ASCII character except the common
 * punctuation, symbol and emoji blocks (so "hi👋" and "«hi»" still hold the word "hi"). */
static bool word_cp(unsigned cp)
{
	if (cp < 0x80)
		return isalnum((int)cp) || cp == '_';
	if ((cp >= 0xA0 && cp <= 0xBF) || cp == 0xD7 || cp == 0xF7)
		return false;
	if ((cp >= 0x2000 && cp <= 0x2BFF) || (cp >= 0x3000 && cp <= 0x303F) ||
	    (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0x1F000 && cp <= 0x1FAFF))
		return false;
	return true;
}

static bool word_before(const unsigned char *s, size_t len, size_t i)
{
	size_t k = i;

	if (i == 0)
		return false;
	k--;
	while (k > 0 && (s[k] & 0xC0) == 0x80)
		k--;
	return word_cp(decode_at(s, len, k));
}

static bool same_char(char a, char b, bool cs)
{
	return cs ? a == b : tolower((unsigned char)a) == tolower((unsigned char)b);
}

bool flow_word_match(const char *hay, const char *needle, bool case_sensitive)
{
	size_t hl, nl;
	const unsigned char *h = (const unsigned char *)hay;

	if (hay == NULL || needle == NULL)
		return false;
	hl = strlen(hay);
	nl = strlen(needle);
	if (nl == 0 || nl > hl)
		return false;
	for (size_t i = 0; i + nl <= hl; i++) {
		size_t k = 0;

		if ((h[i] & 0xC0) == 0x80)
			continue; /* never start inside a character */
		while (k < nl && same_char(hay[i + k], needle[k], case_sensitive))
			k++;
		if (k < nl)
			continue;
		/* a word character of the needle's edge may not touch one of the text */
		if (word_before(h, hl, i) && word_cp(decode_at(h, hl, i)))
			continue;
		if (i + nl < hl && word_cp(decode_at(h, hl, i + nl)) && word_before(h, hl, i + nl))
			continue;
		return true;
	}
	return false;
}

/*
 * An estimate of the cost of compiling the (translated) pattern with glibc. It copies a
 * subexpression once more for every '+' and max(n, m) times for "{n,m}", so nested
 * repetitions ("((a{9}){9}){9}") grow exponentially; and it takes exponential time over
 * repetitions of subexpressions that can match nothing ("((a?)+)?" several times). The
 * estimate is the automaton size, and `loops` counts those empty-matching repetitions.
 */
typedef struct est {
	const char *p;
	size_t i;
	int depth;
	int loops; /* '*', '+' or "{n,}" over a subexpression that can match "" */
} est_t;

static long est_alt(est_t *e, bool *nullable);

static long capped(long v)
{
	return v > COMPLEX_MAX ? COMPLEX_MAX + 1 : v;
}

/* One atom: a group, a bracket expression, an escape or a character. */
static long est_atom(est_t *e, bool *nullable)
{
	const char *p = e->p;
	long s;

	*nullable = false;
	if (p[e->i] == '(') {
		e->i++;
		e->depth++;
		s = e->depth > 32 ? COMPLEX_MAX + 1 : est_alt(e, nullable);
		e->depth--;
		if (p[e->i] == ')')
			e->i++;
		return capped(s + 1);
	}
	if (p[e->i] == '[') {
		size_t k = e->i + 1;

		if (p[k] == '^')
			k++;
		if (p[k] == ']')
			k++;
		while (p[k] != '\0' && p[k] != ']') {
			if (p[k] == '[' && p[k + 1] != '\0' && strchr(":.=", p[k + 1]) != NULL) {
				char close[3] = {p[k + 1], ']', '\0'};
				const char *end = strstr(p + k + 2, close);

				k = end != NULL ? (size_t)(end - p) + 2 : strlen(p);
				continue;
			}
			k++;
		}
		e->i = p[k] == ']' ? k + 1 : k;
		return 1;
	}
	*nullable = p[e->i] == '^' || p[e->i] == '$';
	if (p[e->i] == '\\' && p[e->i + 1] != '\0')
		e->i++;
	e->i++;
	return 1;
}

/* "{n}", "{n,}" or "{n,m}" at p[*i]: sets *min and *max (-1: unbounded) and moves *i past it;
 * returns -1 (nothing moved) when it is not one. Numbers saturate at COMPLEX_MAX + 1. */
static int interval_of(const char *p, size_t *i, long *min, long *max)
{
	size_t k = *i + 1;
	long n = 0, m = -1;
	bool comma = false;

	if (!isdigit((unsigned char)p[k]))
		return -1;
	for (; isdigit((unsigned char)p[k]); k++)
		n = capped(n * 10 + (p[k] - '0'));
	if (p[k] == ',') {
		comma = true;
		k++;
		if (isdigit((unsigned char)p[k])) {
			m = 0;
			for (; isdigit((unsigned char)p[k]); k++)
				m = capped(m * 10 + (p[k] - '0'));
		}
	}
	if (p[k] != '}')
		return -1;
	*i = k + 1;
	*min = n;
	*max = m >= 0 ? m : (comma ? -1 : n);
	return 0;
}

static bool interval(const char *p, size_t *i)
{
	long min, max;

	return interval_of(p, i, &min, &max) == 0;
}

static long est_seq(est_t *e, bool *nullable)
{
	const char *p = e->p;
	long total = 0;

	*nullable = true;
	while (p[e->i] != '\0' && p[e->i] != '|' && p[e->i] != ')') {
		bool null_atom;
		long s = est_atom(e, &null_atom), min, max;

		for (;;) {
			char q = p[e->i];

			if (q == '*' || q == '+' || q == '?') {
				if (q != '?' && null_atom)
					e->loops++;
				s = capped(q == '+' ? 2 * s + 1 : s + 1);
				null_atom = null_atom || q != '+';
				e->i++;
			} else if (q == '{' && interval_of(p, &e->i, &min, &max) == 0) {
				if (null_atom && (max < 0 || max > 1))
					e->loops++;
				s = capped(s * (max < 0 ? min + 1 : (max > 0 ? max : 1)) + 1);
				null_atom = null_atom || min == 0;
			} else {
				break;
			}
		}
		*nullable = *nullable && null_atom;
		total = capped(total + s);
		if (total > COMPLEX_MAX)
			return total;
	}
	return total;
}

static long est_alt(est_t *e, bool *nullable)
{
	bool n;
	long s = est_seq(e, nullable);

	while (e->p[e->i] == '|' && s <= COMPLEX_MAX) {
		e->i++;
		s = capped(s + est_seq(e, &n) + 1);
		*nullable = *nullable || n;
	}
	return s;
}

int flow_regex_compile(regex_t *re, const char *pattern, int flags, const char **why)
{
	char buf[FLOW_REGEX_MAX * 3 + 1]; /* "\\D" (2 bytes) becomes "[^0-9]" (6) */
	size_t o = 0, len, bstart = 0;
	bool bracket = false, quantified = false, lazy = false;
	long size = 0;

	*why = NULL;
	if (pattern == NULL || (len = strlen(pattern)) == 0) {
		*why = "is empty";
		return -1;
	}
	if (len > FLOW_REGEX_MAX) {
		*why = "is too long";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = pattern[i];
		const char *rep = NULL;
		size_t qend = i;
		bool quant = !bracket && (c == '*' || c == '+' || c == '?' ||
					  (c == '{' && interval(pattern, &qend)));

		/*
		 * POSIX leaves stacked repetitions ("a**", "a+{2}") undefined, and glibc
		 * compiles them in exponential time. One '?' after a repetition is Perl's
		 * lazy form, common in files written for Python: matching or not does not
		 * depend on it, so it is dropped.
		 */
		if (quant && quantified) {
			if (c == '?' && !lazy) {
				lazy = true;
				continue;
			}
			*why = "stacks repetitions (like \"a+*\"), which POSIX leaves undefined";
			return -1;
		}
		quantified = quant;
		lazy = false;
		if (c == '{' && quant) { /* copy the whole {n,m} */
			memcpy(buf + o, pattern + i, qend - i);
			o += qend - i;
			i = qend - 1;
			continue;
		}
		if (bracket) {
			if (c == ']' && i != bstart) {
				bracket = false;
			} else if (c == '[' && strchr(":.=", pattern[i + 1]) != NULL &&
				   pattern[i + 1] != '\0') {
				char close[3] = {pattern[i + 1], ']', '\0'};
				const char *end = strstr(pattern + i + 2, close);
				size_t n;

				if (end == NULL) {
					*why = "has an unterminated character class";
					return -1;
				}
				n = (size_t)(end + 2 - (pattern + i));
				memcpy(buf + o, pattern + i, n);
				o += n;
				i += n - 1;
				continue;
			} else if (c == '\\' && pattern[i + 1] == 'd') {
				rep = "0-9";
				i++;
			}
		} else if (c == '[') {
			bracket = true;
			bstart = i + 1;
			if (pattern[bstart] == '^')
				bstart++;
		} else if (c == '\\') {
			char n = pattern[i + 1];

			if (n >= '1' && n <= '9') {
				*why = "uses a back-reference, which is not supported";
				return -1;
			}
			if (n == 'd' || n == 'D') {
				rep = n == 'd' ? "[0-9]" : "[^0-9]";
				i++;
			} else if (n != '\0') {
				buf[o++] = c;
				c = n;
				i++;
			}
		}
		if (rep != NULL) {
			memcpy(buf + o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			buf[o++] = c;
		}
	}
	buf[o] = '\0';
	{
		est_t e = {.p = buf};
		bool nullable;

		while (buf[e.i] != '\0' && size <= COMPLEX_MAX) { /* a stray ')' splits the top */
			size = capped(size + est_alt(&e, &nullable));
			if (buf[e.i] != '\0')
				e.i++;
		}
		if (size > COMPLEX_MAX || e.loops > LOOPS_MAX) {
			*why = "is too complex (nested repetitions, or repetitions of what can "
			       "match nothing)";
			return -1;
		}
	}
	if (regcomp(re, buf, REG_EXTENDED | flags) != 0) {
		*why = "does not compile";
		return -1;
	}
	return 0;
}

/* ---- evaluation ----------------------------------------------------------- */

static const char *get_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static bool get_bool(const json_t *obj, const char *key, bool dflt)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* s without the spaces around it: start in the return value, length in *len. */
static const char *trim(const char *s, size_t *len)
{
	size_t z;

	while (isspace((unsigned char)*s))
		s++;
	z = strlen(s);
	while (z > 0 && isspace((unsigned char)s[z - 1]))
		z--;
	*len = z;
	return s;
}

/* Whether a trimmed text equals a trimmed keyword. */
static bool equals_trimmed(const char *text, const char *kw, bool cs)
{
	size_t tl, kl;
	const char *t = trim(text, &tl), *k = trim(kw, &kl);

	if (kl == 0 || tl != kl)
		return false;
	for (size_t i = 0; i < kl; i++)
		if (!same_char(t[i], k[i], cs))
			return false;
	return true;
}

/* Whether text holds the trimmed keyword as whole words. */
static bool contains_trimmed(const char *text, const char *kw, bool cs)
{
	char buf[FLOW_KEYWORD_MAX + 1];
	size_t kl;
	const char *k = trim(kw, &kl);

	if (kl == 0 || kl > FLOW_KEYWORD_MAX)
		return false;
	memcpy(buf, k, kl);
	buf[kl] = '\0';
	return flow_word_match(text, buf, cs);
}

typedef bool (*kw_pred_t)(const char *text, const char *kw, bool cs);

/* Whether pred holds for text and any of keyword / keywords[] / value. */
static bool any_keyword(const json_t *cond, const char *text, kw_pred_t pred, bool cs)
{
	const json_t *list = json_object_get(cond, "keywords");
	const char *kw;
	size_t i;
	json_t *el;

	if ((kw = get_str(cond, "keyword")) != NULL && pred(text, kw, cs))
		return true;
	if (json_is_array(list))
		json_array_foreach(list, i, el)
		{
			if (i < FLOW_MAX_KEYWORDS && json_is_string(el) &&
			    pred(text, json_string_value(el), cs))
				return true;
		}
	if ((kw = get_str(cond, "value")) != NULL && pred(text, kw, cs))
		return true;
	return false;
}

static bool requests_human(const json_t *cond, const char *text)
{
	static const char *const dflt[] = FLOW_HUMAN_PHRASES;
	const json_t *list = json_object_get(cond, "keywords");
	size_t i;
	json_t *el;

	if (json_is_array(list) && json_array_size(list) > 0) {
		json_array_foreach(list, i, el)
		{
			if (i < FLOW_MAX_KEYWORDS && json_is_string(el) &&
			    contains_trimmed(text, json_string_value(el), false))
				return true;
		}
		return false;
	}
	for (i = 0; i < sizeof(dflt) / sizeof(dflt[0]); i++)
		if (flow_word_match(text, dflt[i], false))
			return true;
	return false;
}

/* A scalar's text form ("true", "12", "1.5", the string), or NULL for other values. */
static const char *scalar_text(const json_t *v, char *buf, size_t sz)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, sz, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, sz, "%.15g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, sz, "%s", json_is_true(v) ? "true" : "false");
	else
		return NULL;
	return buf;
}

/* A number, or a string that parses strictly as one. */
static int as_number(const json_t *v, double *out)
{
	if (json_is_number(v)) {
		*out = json_number_value(v);
		return 0;
	}
	if (json_is_string(v))
		return flow_number_parse(json_string_value(v), out);
	return -1;
}

static bool truthy(const json_t *v)
{
	if (v == NULL || json_is_null(v) || json_is_false(v))
		return false;
	if (json_is_true(v))
		return true;
	if (json_is_number(v))
		return json_number_value(v) != 0.0;
	if (json_is_string(v))
		return json_string_length(v) > 0 && strcmp(json_string_value(v), "false") != 0;
	if (json_is_array(v))
		return json_array_size(v) > 0;
	return json_object_size(v) > 0;
}

static bool scalars_equal(const json_t *a, const json_t *b)
{
	char ba[64], bb[64];
	const char *ta, *tb;
	double da, db;

	if (json_equal(a, b))
		return true;
	if (as_number(a, &da) == 0 && as_number(b, &db) == 0)
		return da == db;
	ta = scalar_text(a, ba, sizeof(ba));
	tb = scalar_text(b, bb, sizeof(bb));
	if (ta == NULL || tb == NULL)
		return false;
	if (json_is_boolean(a) || json_is_boolean(b)) /* "True" from Python-era files */
		return strcasecmp(ta, tb) == 0;
	return strcmp(ta, tb) == 0;
}

/* Render s over scope when it holds tags; returns a new json string. */
static json_t *render_str(const json_t *v, const json_t *scope)
{
	if (json_is_string(v) && flow_template_has_tags(json_string_value(v)))
		return flow_template_render(v, scope);
	return json_incref((json_t *)v);
}

/* The variable named by cond.variable_name (tags rendered), borrowed from scope, or NULL. */
static const json_t *variable(const json_t *cond, const json_t *scope, const char *dflt)
{
	const json_t *name = json_object_get(cond, "variable_name");
	json_t *r;
	const json_t *v;

	if (!json_is_string(name)) {
		if (dflt == NULL)
			return NULL;
		return flow_path_get(scope, dflt);
	}
	r = render_str(name, scope);
	v = json_is_string(r) ? flow_path_get(scope, json_string_value(r)) : NULL;
	json_decref(r);
	return v;
}

static bool eval_variable(const char *type, const json_t *cond, const json_t *scope)
{
	const json_t *v = variable(cond, scope, NULL);
	const json_t *rawval = json_object_get(cond, "value");
	json_t *want;
	bool res = false;
	double a, b;

	if (strcmp(type, "variable_exists") == 0)
		return v != NULL && !json_is_null(v);
	if (rawval == NULL || !json_is_string(json_object_get(cond, "variable_name")))
		return false;
	want = render_str(rawval, scope);
	if (strcmp(type, "variable_equals") == 0) {
		if (json_is_string(want) && json_string_length(want) == 0)
			res = v == NULL || json_is_null(v) ||
			      (json_is_string(v) && json_string_length(v) == 0);
		else
			res = v != NULL && scalars_equal(v, want);
	} else if (strcmp(type, "variable_contains") == 0) {
		char buf[64];
		const char *wt = scalar_text(want, buf, sizeof(buf));
		size_t i;
		json_t *el;

		if (json_is_string(v) && wt != NULL)
			res = strstr(json_string_value(v), wt) != NULL;
		else if (json_is_array(v))
			json_array_foreach(v, i, el)
			{
				if (scalars_equal(el, want)) {
					res = true;
					break;
				}
			}
		else if (json_is_object(v) && wt != NULL)
			res = json_object_get(v, wt) != NULL;
	} else if (v != NULL && as_number(v, &a) == 0 && as_number(want, &b) == 0) {
		if (strcmp(type, "variable_less_than") == 0)
			res = a < b;
		else if (strcmp(type, "variable_less_than_or_equal") == 0)
			res = a <= b;
		else if (strcmp(type, "variable_greater_than") == 0)
			res = a > b;
		else if (strcmp(type, "variable_greater_than_or_equal") == 0)
			res = a >= b;
	}
	json_decref(want);
	return res;
}

static bool eval_regex(const json_t *cond, const char *text)
{
	const char *pat = get_str(cond, "regex"), *why;
	regex_t re;
	bool res;

	if (pat == NULL)
		pat = get_str(cond, "value");
	if (pat == NULL || text == NULL)
		return false;
	if (flow_regex_compile(
		&re, pat, REG_NOSUB | (get_bool(cond, "case_sensitive", false) ? 0 : REG_ICASE),
		&why) < 0)
		return false;
	res = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return res;
}

bool flow_condition_eval(const json_t *cond, const flow_cond_input_t *in)
{
	const char *type = get_str(cond, "type");
	const flow_reply_t *r = in->reply;
	const char *text = r != NULL ? r->text : NULL;
	bool cs = get_bool(cond, "case_sensitive", false);
	char buf[64];
	const char *want;

	if (type == NULL)
		return false;
	if (strcmp(type, "always_true") == 0)
		return true;
	if (strcmp(type, "user_reply_matches_keyword") == 0)
		return text != NULL && any_keyword(cond, text, equals_trimmed, cs);
	if (strcmp(type, "user_reply_contains_keyword") == 0)
		return text != NULL && any_keyword(cond, text, contains_trimmed, cs);
	if (strcmp(type, "interactive_reply_id_equals") == 0) {
		want = scalar_text(json_object_get(cond, "value"), buf, sizeof(buf));
		return r != NULL && r->interactive_id != NULL && want != NULL &&
		       !json_is_boolean(json_object_get(cond, "value")) &&
		       strcmp(r->interactive_id, want) == 0;
	}
	if (strcmp(type, "message_type_is") == 0) {
		want = get_str(cond, "value");
		return r != NULL && want != NULL && want[0] != '\0' &&
		       (strcmp(r->type, want) == 0 || strcmp(r->subtype, want) == 0);
	}
	if (strcmp(type, "user_reply_matches_regex") == 0)
		return eval_regex(cond, text);
	if (strncmp(type, "variable_", 9) == 0 && flow_condition_type_known(type))
		return eval_variable(type, cond, in->scope);
	if (strcmp(type, "question_reply_is_valid") == 0)
		return r != NULL && in->reply_valid == get_bool(cond, "value", true);
	if (strcmp(type, "user_requests_human") == 0)
		return text != NULL && requests_human(cond, text);
	if (strcmp(type, "whatsapp_flow_response_received") == 0)
		return truthy(variable(cond, in->scope, "whatsapp_flow_response_received"));
	return false;
}

/* ---- validation ----------------------------------------------------------- */

static const char *const cond_types[] = {"always_true",
					 "user_reply_matches_keyword",
					 "user_reply_contains_keyword",
					 "interactive_reply_id_equals",
					 "message_type_is",
					 "user_reply_matches_regex",
					 "variable_equals",
					 "variable_exists",
					 "variable_contains",
					 "variable_less_than",
					 "variable_less_than_or_equal",
					 "variable_greater_than",
					 "variable_greater_than_or_equal",
					 "question_reply_is_valid",
					 "user_requests_human",
					 "whatsapp_flow_response_received"};

bool flow_condition_type_known(const char *type)
{
	for (size_t i = 0; type != NULL && i < sizeof(cond_types) / sizeof(cond_types[0]); i++)
		if (strcmp(type, cond_types[i]) == 0)
			return true;
	return false;
}

bool flow_condition_inspects_reply(const json_t *cond)
{
	static const char *const reply_types[] = {
	    "user_reply_matches_keyword",     "user_reply_contains_keyword",
	    "interactive_reply_id_equals",    "message_type_is",
	    "user_reply_matches_regex",	      "user_requests_human",
	    "whatsapp_flow_response_received"};
	const char *type = get_str(cond, "type");

	if (type == NULL)
		return false;
	for (size_t i = 0; i < sizeof(reply_types) / sizeof(reply_types[0]); i++)
		if (strcmp(type, reply_types[i]) == 0)
			return true;
	return strcmp(type, "question_reply_is_valid") == 0 && !get_bool(cond, "value", true);
}

static size_t problem(json_t *problems, const char *path, const char *key, const char *msg)
{
	char p[PATHSZ];

	if (key != NULL)
		snprintf(p, sizeof(p), "%s.%s", path, key);
	else
		snprintf(p, sizeof(p), "%s", path);
	return flow_problem_add(problems, p, msg);
}

static bool blank(const char *s)
{
	size_t n;

	(void)trim(s, &n);
	return n == 0;
}

/* keyword / keywords / value: at least one present, each non-blank and bounded. */
static size_t check_keywords(const json_t *cond, const char *path, json_t *problems, bool required)
{
	const json_t *kw = json_object_get(cond, "keyword"),
		     *list = json_object_get(cond, "keywords");
	const json_t *val = json_object_get(cond, "value");
	size_t n = 0, i;
	json_t *el;

	if (kw != NULL && (!json_is_string(kw) || blank(json_string_value(kw)) ||
			   json_string_length(kw) > FLOW_KEYWORD_MAX))
		n += problem(problems, path, "keyword",
			     "must be a non-blank string of at most 100 bytes");
	if (list != NULL) {
		if (!json_is_array(list) || json_array_size(list) == 0 ||
		    json_array_size(list) > FLOW_MAX_KEYWORDS) {
			n += problem(problems, path, "keywords",
				     "must be a list of 1 to 50 keywords");
		} else {
			json_array_foreach(list, i, el)
			{
				if (!json_is_string(el) || blank(json_string_value(el)) ||
				    json_string_length(el) > FLOW_KEYWORD_MAX) {
					char p[PATHSZ];

					snprintf(p, sizeof(p), "%s.keywords[%zu]", path, i);
					n += flow_problem_add(
					    problems, p,
					    "must be a non-blank string of at most "
					    "100 bytes");
				}
			}
		}
	}
	if (required && kw == NULL && list == NULL) {
		if (val == NULL)
			n += problem(problems, path, "keyword", "is required");
		else if (!json_is_string(val) || blank(json_string_value(val)) ||
			 json_string_length(val) > FLOW_KEYWORD_MAX)
			n += problem(problems, path, "value",
				     "must be a non-blank string of at most 100 bytes");
	}
	return n;
}

static size_t check_variable_name(const json_t *cond, const char *path, json_t *problems,
				  bool required)
{
	const json_t *v = json_object_get(cond, "variable_name");

	if (v == NULL)
		return required ? problem(problems, path, "variable_name", "is required") : 0;
	if (!json_is_string(v) || blank(json_string_value(v)) || json_string_length(v) > 256)
		return problem(problems, path, "variable_name",
			       "must be a non-blank string of at most 256 bytes");
	return 0;
}

static bool known_message_type(const char *t)
{
	static const char *const types[] = {
	    "text",	"interactive", "button",       "image",	     "document",
	    "audio",	"video",       "sticker",      "location",   "contacts",
	    "reaction", "unsupported", "button_reply", "list_reply", "nfm_reply"};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(t, types[i]) == 0)
			return true;
	return false;
}

size_t flow_condition_validate(const json_t *cond, const char *path, json_t *problems)
{
	const json_t *tv, *val;
	const char *type, *why;
	size_t n = 0;
	double d;

	if (!json_is_object(cond))
		return flow_problem_add(problems, path, "must be an object");
	tv = json_object_get(cond, "type");
	if (tv == NULL)
		return problem(problems, path, "type", "is required");
	if (!json_is_string(tv) || blank(json_string_value(tv)))
		return problem(problems, path, "type", "must be a non-blank string");
	type = json_string_value(tv);
	if (!flow_condition_type_known(type))
		return problem(problems, path, "type", "is not a known condition type");
	val = json_object_get(cond, "value");
	if (json_object_get(cond, "case_sensitive") != NULL &&
	    !json_is_boolean(json_object_get(cond, "case_sensitive")))
		n += problem(problems, path, "case_sensitive", "must be true or false");

	if (strcmp(type, "user_reply_matches_keyword") == 0 ||
	    strcmp(type, "user_reply_contains_keyword") == 0) {
		n += check_keywords(cond, path, problems, true);
	} else if (strcmp(type, "interactive_reply_id_equals") == 0) {
		if (val == NULL)
			n += problem(problems, path, "value", "is required");
		else if (!(json_is_string(val) && json_string_length(val) > 0 &&
			   json_string_length(val) <= FLOW_WA_BUTTON_ID_MAX) &&
			 !json_is_integer(val))
			n += problem(problems, path, "value", "must be a non-empty id");
	} else if (strcmp(type, "message_type_is") == 0) {
		if (val == NULL)
			n += problem(problems, path, "value", "is required");
		else if (!json_is_string(val) || !known_message_type(json_string_value(val)))
			n += problem(problems, path, "value", "is not a known message type");
	} else if (strcmp(type, "user_reply_matches_regex") == 0) {
		const json_t *re = json_object_get(cond, "regex");
		const char *key = "regex";
		regex_t compiled;

		if (re == NULL && val != NULL) {
			re = val;
			key = "value";
		}
		if (re == NULL)
			n += problem(problems, path, "regex", "is required");
		else if (!json_is_string(re))
			n += problem(problems, path, key, "must be a string");
		else if (flow_regex_compile(&compiled, json_string_value(re), REG_NOSUB, &why) < 0)
			n += problem(problems, path, key, why);
		else
			regfree(&compiled);
	} else if (strcmp(type, "variable_exists") == 0) {
		n += check_variable_name(cond, path, problems, true);
	} else if (strcmp(type, "variable_equals") == 0 || strcmp(type, "variable_contains") == 0) {
		n += check_variable_name(cond, path, problems, true);
		if (val == NULL)
			n += problem(problems, path, "value", "is required");
		else if (json_is_null(val) || json_is_object(val) || json_is_array(val))
			n +=
			    problem(problems, path, "value", "must be a string, number or boolean");
	} else if (strncmp(type, "variable_", 9) == 0) { /* the numeric comparisons */
		n += check_variable_name(cond, path, problems, true);
		if (val == NULL)
			n += problem(problems, path, "value", "is required");
		else if (as_number(val, &d) < 0 &&
			 !(json_is_string(val) && flow_template_has_tags(json_string_value(val))))
			n += problem(problems, path, "value", "must be a number");
	} else if (strcmp(type, "question_reply_is_valid") == 0) {
		if (val != NULL && !json_is_boolean(val))
			n += problem(problems, path, "value", "must be true or false");
	} else if (strcmp(type, "user_requests_human") == 0) {
		n += check_keywords(cond, path, problems, false);
	} else if (strcmp(type, "whatsapp_flow_response_received") == 0) {
		n += check_variable_name(cond, path, problems, false);
	}
	return n;
}
