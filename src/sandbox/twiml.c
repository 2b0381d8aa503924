/*
 * twiml.c - the sandbox's TwiML reader (see sandbox.h): a small, bounded XML
 * parser for the subset TwiML needs, and the plan of a document (its verbs,
 * their timing at the configured speed, their URLs) that carrier.c executes.
 *
 * Pure: no I/O, no globals; everything lives in the caller's arena, so a
 * malformed or hostile document costs at most its bounded size.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/sandbox.h"
#include "dialflow/strnum.h"

#define HOUR_MS	     (3600 * 1000)
#define PLAY_REAL_MS 2000 /* the sandbox does not fetch audio: every <Play> lasts this */

/* --- the XML reader ------------------------------------------------------- */

typedef struct xr {
	arena_t *a;
	const char *start, *p, *end;
	char *err;
	size_t errsz;
	int nodes;
} xr_t;

/* Record why the document is refused, at the current byte. Returns -1. */
static int xr_fail(xr_t *x, const char *what)
{
	if (x->err != NULL && x->errsz > 0)
		snprintf(x->err, x->errsz, "byte %zu: %s", (size_t)(x->p - x->start), what);
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static bool name_start(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static bool name_char(unsigned char c)
{
	return name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static void skip_space(xr_t *x)
{
	while (x->p < x->end && is_space(*x->p))
		x->p++;
}

static bool starts(const xr_t *x, const char *lit)
{
	size_t n = strlen(lit);

	return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

/* A name at x->p into *out (arena). Returns 0 or -1. */
static int read_name(xr_t *x, const char **out)
{
	const char *s = x->p;

	if (x->p >= x->end || !name_start((unsigned char)*x->p))
		return xr_fail(x, "a name was expected");
	while (x->p < x->end && name_char((unsigned char)*x->p))
		x->p++;
	if (x->p - s > SANDBOX_XML_MAX_NAME)
		return xr_fail(x, "name too long");
	*out = arena_strndup(x->a, s, (size_t)(x->p - s));
	return 0;
}

/* Append code point cp as UTF-8 to buf (room for 4 bytes). Returns bytes written. */
static size_t put_utf8(char *buf, uint32_t cp)
{
	if (cp < 0x80) {
		buf[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		buf[0] = (char)(0xc0 | (cp >> 6));
		buf[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		buf[0] = (char)(0xe0 | (cp >> 12));
		buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		buf[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	buf[0] = (char)(0xf0 | (cp >> 18));
	buf[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	buf[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	buf[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode the entity at x->p ('&') into buf (4 bytes of room); advance past
 * its ';'. Returns the bytes written, or -1.
 */
static int read_entity(xr_t *x, char *buf)
{
	static const struct {
		const char *name;
		char ch;
	} named[] = {
	    {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
	uint32_t cp = 0;
	int base = 10, ndig = 0;

	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (starts(x, named[i].name)) {
			x->p += strlen(named[i].name);
			buf[0] = named[i].ch;
			return 1;
		}
	}
	if (!starts(x, "&#"))
		return xr_fail(x, "unknown entity (only &lt; &gt; &amp; &quot; &apos; &#N;)");
	x->p += 2;
	if (x->p < x->end && *x->p == 'x') {
		base = 16;
		x->p++;
	}
	for (; x->p < x->end && *x->p != ';'; x->p++, ndig++) {
		char c = *x->p;
		int d;

		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return xr_fail(x, "bad character reference");
		if (ndig >= 8)
			return xr_fail(x, "character reference too long");
		cp = cp * (uint32_t)base + (uint32_t)d;
	}
	if (x->p >= x->end || ndig == 0)
		return xr_fail(x, "bad character reference");
	x->p++; /* ';' */
	if (!(cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
	      (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)))
		return xr_fail(x, "character reference to a character XML does not allow");
	return (int)put_utf8(buf, cp);
}

/* A byte that may appear in a document as is. */
static bool byte_ok(unsigned char c)
{
	return c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Decode character data from x->p up to the first `stop` byte (not
 * consumed) into an arena string. in_attr: normalise TAB CR LF to spaces and
 * refuse '<'. Returns 0 with *out and *out_len, or -1.
 */
static int read_chars(xr_t *x, char stop, bool in_attr, char **out, size_t *out_len)
{
	const char *s = x->p;
	const char *e = memchr(s, stop, (size_t)(x->end - s));
	size_t len = 0;
	char *buf;

	if (e == NULL)
		e = x->end;
	/* decoding never grows: an entity is longer than its UTF-8 */
	buf = arena_alloc(x->a, (size_t)(e - s) + 1);
	while (x->p < e) {
		unsigned char c = (unsigned char)*x->p;

		if (!byte_ok(c))
			return xr_fail(x, "control character");
		if (in_attr && c == '<')
			return xr_fail(x, "'<' in an attribute value");
		if (c == '&') {
			int n = read_entity(x, buf + len);

			if (n < 0)
				return -1;
			if (x->p > e)
				return xr_fail(x, "bad entity");
			len += (size_t)n;
			continue;
		}
		buf[len++] = in_attr && is_space((char)c) ? ' ' : (char)c;
		x->p++;
	}
	buf[len] = '\0';
	*out = buf;
	*out_len = len;
	return 0;
}

/* Append len bytes of text to n's character data. */
static void add_text(arena_t *a, sandbox_xml_node_t *n, const char *t, size_t len)
{
	char *nt;

	if (len == 0)
		return;
	nt = arena_alloc(a, n->text_len + len + 1);
	memcpy(nt, n->text, n->text_len);
	memcpy(nt + n->text_len, t, len);
	nt[n->text_len + len] = '\0';
	n->text = nt;
	n->text_len += len;
}

/* Skip a comment, a processing instruction or the XML declaration at x->p. Returns 0 or -1. */
static int skip_markup(xr_t *x)
{
	const char *close = starts(x, "<!--") ? "-->" : "?>";
	const char *from = x->p + (close[0] == '-' ? 4 : 2);
	const char *e = memmem(from, (size_t)(x->end - from), close, strlen(close));

	if (e == NULL)
		return xr_fail(x,
			       close[0] == '-' ? "unterminated comment" : "unterminated <?...?>");
	for (const char *q = from; q < e; q++)
		if (!byte_ok((unsigned char)*q))
			return xr_fail(x, "control character");
	x->p = e + strlen(close);
	return 0;
}

/* The attributes and the end of a start tag; *empty for "/>". Returns 0 or -1. */
static int read_attrs(xr_t *x, sandbox_xml_node_t *n, bool *empty)
{
	sandbox_xml_attr_t tmp[SANDBOX_XML_MAX_ATTRS];

	n->nattrs = 0;
	for (;;) {
		const char *before = x->p, *name;
		char *value, q;
		size_t vlen;

		skip_space(x);
		if (x->p >= x->end)
			return xr_fail(x, "unterminated start tag");
		if (*x->p == '>' || starts(x, "/>")) {
			*empty = *x->p == '/';
			x->p += *empty ? 2 : 1;
			break;
		}
		if (x->p == before)
			return xr_fail(x, "space expected before an attribute");
		if (read_name(x, &name) < 0)
			return -1;
		skip_space(x);
		if (x->p >= x->end || *x->p != '=')
			return xr_fail(x, "'=' expected after an attribute name");
		x->p++;
		skip_space(x);
		if (x->p >= x->end || (*x->p != '"' && *x->p != '\''))
			return xr_fail(x, "a quoted attribute value was expected");
		q = *x->p++;
		if (read_chars(x, q, true, &value, &vlen) < 0)
			return -1;
		if (x->p >= x->end)
			return xr_fail(x, "unterminated attribute value");
		x->p++;
		for (size_t i = 0; i < n->nattrs; i++)
			if (strcmp(tmp[i].name, name) == 0)
				return xr_fail(x, "duplicate attribute");
		if (n->nattrs == SANDBOX_XML_MAX_ATTRS)
			return xr_fail(x, "too many attributes");
		tmp[n->nattrs].name = name;
		tmp[n->nattrs].value = value;
		n->nattrs++;
	}
	if (n->nattrs > 0) {
		n->attrs = arena_calloc(x->a, n->nattrs, sizeof(*n->attrs));
		memcpy(n->attrs, tmp, n->nattrs * sizeof(*tmp));
	}
	return 0;
}

int sandbox_xml_parse(arena_t *a, const char *src, size_t len, sandbox_xml_node_t **root, char *err,
		      size_t errsz)
{
	xr_t x = {.a = a, .start = src, .p = src, .end = src + len, .err = err, .errsz = errsz};
	sandbox_xml_node_t *cur = NULL, *top = NULL;
	int depth = 0, rc = -1;

	*root = NULL;
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (len > SANDBOX_XML_MAX_BYTES) {
		xr_fail(&x, "document too large");
		goto out;
	}
	if (starts(&x, "\xef\xbb\xbf"))
		x.p += 3; /* a UTF-8 byte order mark */
	while (x.p < x.end) {
		if (*x.p != '<') {
			char *t;
			size_t tl;

			if (read_chars(&x, '<', false, &t, &tl) < 0)
				goto out;
			if (cur != NULL) {
				add_text(a, cur, t, tl);
			} else {
				for (size_t i = 0; i < tl; i++) {
					if (!is_space(t[i])) {
						xr_fail(&x, "text outside the root element");
						goto out;
					}
				}
			}
			continue;
		}
		if (starts(&x, "<!--") || starts(&x, "<?")) {
			if (skip_markup(&x) < 0)
				goto out;
			continue;
		}
		if (starts(&x, "<![CDATA[")) {
			const char *from = x.p + 9;
			const char *e = memmem(from, (size_t)(x.end - from), "]]>", 3);

			if (cur == NULL) {
				xr_fail(&x, "CDATA outside the root element");
				goto out;
			}
			if (e == NULL) {
				xr_fail(&x, "unterminated CDATA section");
				goto out;
			}
			for (const char *q = from; q < e; q++) {
				if (!byte_ok((unsigned char)*q)) {
					xr_fail(&x, "control character");
					goto out;
				}
			}
			add_text(a, cur, from, (size_t)(e - from));
			x.p = e + 3;
			continue;
		}
		if (starts(&x, "<!")) {
			xr_fail(&x, "DOCTYPE and other declarations are not allowed");
			goto out;
		}
		if (starts(&x, "</")) {
			const char *name;

			x.p += 2;
			if (read_name(&x, &name) < 0)
				goto out;
			skip_space(&x);
			if (x.p >= x.end || *x.p != '>') {
				xr_fail(&x, "'>' expected after an end tag's name");
				goto out;
			}
			if (cur == NULL || strcmp(name, cur->name) != 0) {
				xr_fail(&x, "end tag does not match the open element");
				goto out;
			}
			x.p++;
			cur = cur->parent;
			depth--;
			continue;
		}
		/* a start tag */
		{
			sandbox_xml_node_t *n;
			bool empty = false;

			if (cur == NULL && top != NULL) {
				xr_fail(&x, "a second root element");
				goto out;
			}
			if (++x.nodes > SANDBOX_XML_MAX_NODES) {
				xr_fail(&x, "too many elements");
				goto out;
			}
			if (depth >= SANDBOX_XML_MAX_DEPTH) {
				xr_fail(&x, "elements nested too deep");
				goto out;
			}
			n = arena_calloc(a, 1, sizeof(*n));
			n->text = "";
			x.p++;
			if (read_name(&x, &n->name) < 0 || read_attrs(&x, n, &empty) < 0)
				goto out;
			n->parent = cur;
			if (cur == NULL) {
				top = n;
			} else {
				if (cur->last_child != NULL)
					cur->last_child->next = n;
				else
					cur->child = n;
				cur->last_child = n;
			}
			if (!empty) {
				cur = n;
				depth++;
			}
		}
	}
	if (cur != NULL) {
		xr_fail(&x, "unclosed element at the end of the document");
		goto out;
	}
	if (top == NULL) {
		xr_fail(&x, "no root element");
		goto out;
	}
	*root = top;
	rc = 0;
out:
	return rc;
}

const char *sandbox_xml_attr(const sandbox_xml_node_t *n, const char *name)
{
	for (size_t i = 0; n != NULL && i < n->nattrs; i++)
		if (strcmp(n->attrs[i].name, name) == 0)
			return n->attrs[i].value;
	return NULL;
}

/* --- the plan of a document ----------------------------------------------- */

int sandbox_scale_ms(int say_ms, int64_t real_ms)
{
	int64_t v = real_ms * (int64_t)say_ms / SANDBOX_SPEECH_MS;

	return v > HOUR_MS ? HOUR_MS : v < 0 ? 0 : (int)v;
}

typedef struct planner {
	arena_t *a;
	int say_ms;
	sandbox_plan_t *plan;
	char *err;
	size_t errsz;
} planner_t;

static int plan_fail(planner_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Record why the document cannot run. Returns -1. */
static int plan_fail(planner_t *p, const char *fmt, ...)
{
	va_list ap;

	if (p->err != NULL && p->errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(p->err, p->errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Text without leading and trailing white space, in the arena. */
static const char *trimmed(arena_t *a, const char *s)
{
	const char *e;

	while (is_space(*s))
		s++;
	e = s + strlen(s);
	while (e > s && is_space(e[-1]))
		e--;
	return arena_strndup(a, s, (size_t)(e - s));
}

/* Integer attribute `name` of n in [min, max], def when absent. Returns 0 or -1. */
static int int_attr(planner_t *p, const sandbox_xml_node_t *n, const char *name, int min, int max,
		    int def, int *out)
{
	const char *v = sandbox_xml_attr(n, name);
	int64_t x = def;

	if (v != NULL && strnum_i64(trimmed(p->a, v), min, max, &x) < 0)
		return plan_fail(p, "attribute %s: not a number in range", name);
	*out = (int)x;
	return 0;
}

/* Only POST (or no method) is supported. Returns 0 or -1. */
static int method_ok(planner_t *p, const sandbox_xml_node_t *n)
{
	const char *m = sandbox_xml_attr(n, "method");

	if (m != NULL && strcmp(m, "POST") != 0)
		return plan_fail(p, "<%s method>: the sandbox requests with POST only", n->name);
	return 0;
}

static sandbox_step_t *add_step(planner_t *p, sandbox_step_kind_t kind, const char *verb)
{
	sandbox_step_t *s;

	if (p->plan->n == SANDBOX_MAX_STEPS)
		return NULL;
	s = &p->plan->steps[p->plan->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->verb = verb;
	return s;
}

/* Code points of UTF-8 text (continuation bytes are not counted). */
static int64_t chars(const char *s)
{
	int64_t n = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* A <Say>, <Pause> or <Play>, nested in a Gather or not. Returns 0 or -1. */
static int plan_prompt(planner_t *p, const sandbox_xml_node_t *n, bool in_gather)
{
	sandbox_step_t *s;
	int loop = 1, length = 1;
	int64_t one;

	if (strcmp(n->name, "Say") == 0) {
		if (int_attr(p, n, "loop", 0, 1000, 1, &loop) < 0)
			return -1;
		one = chars(trimmed(p->a, n->text)) * p->say_ms;
		if (one > SANDBOX_SAY_MAX_MS)
			one = SANDBOX_SAY_MAX_MS;
		s = add_step(p, SANDBOX_STEP_SAY, "Say");
	} else if (strcmp(n->name, "Pause") == 0) {
		if (int_attr(p, n, "length", 0, 600, 1, &length) < 0)
			return -1;
		one = sandbox_scale_ms(p->say_ms, (int64_t)length * 1000);
		s = add_step(p, SANDBOX_STEP_PAUSE, "Pause");
	} else if (strcmp(n->name, "Play") == 0) {
		if (int_attr(p, n, "loop", 0, 1000, 1, &loop) < 0)
			return -1;
		one = sandbox_scale_ms(p->say_ms, PLAY_REAL_MS);
		s = add_step(p, SANDBOX_STEP_PLAY, "Play");
	} else {
		return plan_fail(p, "<%s> is not allowed inside <Gather>", n->name);
	}
	if (s == NULL)
		return plan_fail(p, "more than %d verbs", SANDBOX_MAX_STEPS);
	if (loop == 0 || loop > SANDBOX_MAX_LOOPS)
		loop = SANDBOX_MAX_LOOPS;
	s->wait_ms = (int)(one * loop);
	s->in_gather = in_gather;
	return 0;
}

static int plan_gather(planner_t *p, const sandbox_xml_node_t *n)
{
	const char *input = sandbox_xml_attr(n, "input");
	const char *aoe = sandbox_xml_attr(n, "actionOnEmptyResult");
	sandbox_step_t *s;
	int nd = 0, timeout = 5;

	if (method_ok(p, n) < 0 || int_attr(p, n, "numDigits", 1, SANDBOX_MAX_KEYS, 0, &nd) < 0 ||
	    int_attr(p, n, "timeout", 0, 600, 5, &timeout) < 0)
		return -1;
	if (input != NULL && strstr(input, "dtmf") == NULL)
		return plan_fail(p, "<Gather input=\"%s\">: the sandbox presses keys only", input);
	for (const sandbox_xml_node_t *c = n->child; c != NULL; c = c->next)
		if (plan_prompt(p, c, true) < 0)
			return -1;
	s = add_step(p, SANDBOX_STEP_GATHER, "Gather");
	if (s == NULL)
		return plan_fail(p, "more than %d verbs", SANDBOX_MAX_STEPS);
	s->url = sandbox_xml_attr(n, "action");
	s->num_digits = nd;
	s->timeout_s = timeout;
	s->action_on_empty = aoe != NULL && strcmp(aoe, "true") == 0;
	return 0;
}

static int plan_dial(planner_t *p, const sandbox_xml_node_t *n)
{
	const sandbox_xml_node_t *num = NULL;
	sandbox_step_t *s;
	int timeout = 30;

	if (method_ok(p, n) < 0 || int_attr(p, n, "timeout", 1, 600, 30, &timeout) < 0)
		return -1;
	for (const sandbox_xml_node_t *c = n->child; c != NULL; c = c->next) {
		if (strcmp(c->name, "Number") != 0)
			return plan_fail(p, "<Dial><%s>: the sandbox dials <Number> only", c->name);
		if (method_ok(p, c) < 0)
			return -1;
		if (num == NULL)
			num = c; /* several ring at once at Twilio; the first one answers here */
	}
	s = add_step(p, SANDBOX_STEP_DIAL, "Dial");
	if (s == NULL)
		return plan_fail(p, "more than %d verbs", SANDBOX_MAX_STEPS);
	s->url = sandbox_xml_attr(n, "action");
	s->caller_id = sandbox_xml_attr(n, "callerId");
	s->timeout_s = timeout;
	s->number = trimmed(p->a, num != NULL ? num->text : n->text);
	s->number_url = num != NULL ? sandbox_xml_attr(num, "url") : NULL;
	if (s->number[0] == '\0')
		return plan_fail(p, "<Dial> without a number");
	return 0;
}

int sandbox_twiml_plan(arena_t *a, const sandbox_xml_node_t *root, int say_ms, sandbox_plan_t *plan,
		       char *err, size_t errsz)
{
	planner_t p = {.a = a, .say_ms = say_ms, .plan = plan, .err = err, .errsz = errsz};
	int rc = -1;

	plan->n = 0;
	plan->steps = arena_calloc(a, SANDBOX_MAX_STEPS, sizeof(*plan->steps));
	if (err != NULL && errsz > 0)
		err[0] = '\0';
	if (root == NULL || strcmp(root->name, "Response") != 0) {
		plan_fail(&p, "the root element is <%s>, not <Response>",
			  root != NULL ? root->name : "");
		goto out;
	}
	if (trimmed(a, root->text)[0] != '\0') {
		plan_fail(&p, "text directly inside <Response>");
		goto out;
	}
	for (const sandbox_xml_node_t *n = root->child; n != NULL; n = n->next) {
		sandbox_step_t *s;

		if (strcmp(n->name, "Say") == 0 || strcmp(n->name, "Pause") == 0 ||
		    strcmp(n->name, "Play") == 0) {
			if (plan_prompt(&p, n, false) < 0)
				goto out;
		} else if (strcmp(n->name, "Gather") == 0) {
			if (plan_gather(&p, n) < 0)
				goto out;
		} else if (strcmp(n->name, "Dial") == 0) {
			if (plan_dial(&p, n) < 0)
				goto out;
		} else if (strcmp(n->name, "Hangup") == 0 || strcmp(n->name, "Reject") == 0) {
			if ((s = add_step(&p, SANDBOX_STEP_HANGUP,
					  n->name[0] == 'H' ? "Hangup" : "Reject")) == NULL) {
				plan_fail(&p, "more than %d verbs", SANDBOX_MAX_STEPS);
				goto out;
			}
		} else if (strcmp(n->name, "Redirect") == 0) {
			if (method_ok(&p, n) < 0)
				goto out;
			if ((s = add_step(&p, SANDBOX_STEP_REDIRECT, "Redirect")) == NULL) {
				plan_fail(&p, "more than %d verbs", SANDBOX_MAX_STEPS);
				goto out;
			}
			s->url = trimmed(a, n->text);
			if (s->url[0] == '\0') {
				plan_fail(&p, "<Redirect> without a URL");
				goto out;
			}
		} else {
			plan_fail(&p, "unsupported verb <%s>", n->name);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc < 0)
		plan->n = 0;
	return rc;
}
