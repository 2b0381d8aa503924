/*
 * phone.c - E.164 normalisation (see phone.h).
 *
 * The country table holds, for every ISO 3166-1 country (and the few
 * territories with their own code, like AC and XK), its calling code, its
 * national trunk prefixes (most common first: "0" in most of the world, "8" in
 * Russia, "06" in Hungary, "1" in the NANP), and the shortest, longest and
 * longest ordinary (fixed line or mobile) national significant number. The
 * figures follow the ITU-T numbering plans as published in Google's
 * libphonenumber metadata; a country without a code of its own (AQ, BV, GS,
 * HM, PN, TF, UM) borrows its host's. Entries with no country are the
 * non-geographic codes (+800 freephone, +882 international networks, ...).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dialflow/phone.h"

typedef struct country {
	char iso[3];
	uint16_t cc;
	const char *trunk; /* '|'-separated national prefixes, "" for none */
	uint8_t min, max;  /* national significant number length          */
	uint8_t tmax;	   /* longest fixed-line or mobile number          */
} country_t;

static const country_t countries[] = {
    {"AC", 247, "", 5, 6, 5},	     {"AD", 376, "", 6, 9, 9},	  {"AE", 971, "0", 5, 12, 9},
    {"AF", 93, "0", 9, 9, 9},	     {"AG", 1, "1", 10, 10, 10},  {"AI", 1, "1", 10, 10, 10},
    {"AL", 355, "0", 6, 9, 9},	     {"AM", 374, "0", 8, 8, 8},	  {"AO", 244, "", 9, 9, 9},
    {"AQ", 672, "", 6, 6, 6},	     {"AR", 54, "0", 10, 11, 11}, {"AS", 1, "1", 10, 10, 10},
    {"AT", 43, "0", 4, 13, 13},	     {"AU", 61, "0", 5, 12, 9},	  {"AW", 297, "", 7, 7, 7},
    {"AX", 358, "0", 5, 12, 10},     {"AZ", 994, "0", 9, 9, 9},	  {"BA", 387, "0", 8, 9, 9},
    {"BB", 1, "1", 10, 10, 10},	     {"BD", 880, "0", 6, 10, 10}, {"BE", 32, "0", 8, 9, 9},
    {"BF", 226, "", 8, 8, 8},	     {"BG", 359, "0", 6, 9, 9},	  {"BH", 973, "", 8, 8, 8},
    {"BI", 257, "", 8, 8, 8},	     {"BJ", 229, "", 8, 8, 8},	  {"BL", 590, "0", 9, 9, 9},
    {"BM", 1, "1", 10, 10, 10},	     {"BN", 673, "", 7, 7, 7},	  {"BO", 591, "0", 8, 9, 8},
    {"BQ", 599, "", 7, 7, 7},	     {"BR", 55, "0", 8, 11, 11},  {"BS", 1, "1", 10, 10, 10},
    {"BT", 975, "", 7, 8, 8},	     {"BV", 47, "", 5, 8, 8},	  {"BW", 267, "", 7, 10, 8},
    {"BY", 375, "80|8|0", 6, 11, 9}, {"BZ", 501, "", 7, 11, 7},	  {"CA", 1, "1", 7, 10, 10},
    {"CC", 61, "0", 6, 12, 9},	     {"CD", 243, "0", 7, 9, 9},	  {"CF", 236, "", 8, 8, 8},
    {"CG", 242, "", 9, 9, 9},	     {"CH", 41, "0", 9, 12, 9},	  {"CI", 225, "", 10, 10, 10},
    {"CK", 682, "", 5, 5, 5},	     {"CL", 56, "", 9, 11, 9},	  {"CM", 237, "", 8, 9, 9},
    {"CN", 86, "0", 7, 12, 11},	     {"CO", 57, "0", 10, 11, 10}, {"CR", 506, "", 8, 10, 8},
    {"CU", 53, "0", 6, 10, 10},	     {"CV", 238, "", 7, 7, 7},	  {"CW", 599, "", 7, 8, 8},
    {"CX", 61, "0", 6, 12, 9},	     {"CY", 357, "", 8, 8, 8},	  {"CZ", 420, "", 9, 12, 9},
    {"DE", 49, "0", 4, 15, 15},	     {"DJ", 253, "", 8, 8, 8},	  {"DK", 45, "", 8, 8, 8},
    {"DM", 1, "1", 10, 10, 10},	     {"DO", 1, "1", 10, 10, 10},  {"DZ", 213, "0", 8, 9, 9},
    {"EC", 593, "0", 8, 11, 9},	     {"EE", 372, "", 7, 10, 8},	  {"EG", 20, "0", 8, 10, 10},
    {"EH", 212, "0", 9, 9, 9},	     {"ER", 291, "0", 7, 7, 7},	  {"ES", 34, "", 9, 9, 9},
    {"ET", 251, "0", 9, 9, 9},	     {"FI", 358, "0", 5, 12, 10}, {"FJ", 679, "", 7, 11, 7},
    {"FK", 500, "", 5, 5, 5},	     {"FM", 691, "", 7, 7, 7},	  {"FO", 298, "", 6, 6, 6},
    {"FR", 33, "0", 9, 9, 9},	     {"GA", 241, "", 7, 8, 8},	  {"GB", 44, "0", 7, 10, 10},
    {"GD", 1, "1", 10, 10, 10},	     {"GE", 995, "0", 9, 9, 9},	  {"GF", 594, "0", 9, 9, 9},
    {"GG", 44, "0", 7, 10, 10},	     {"GH", 233, "0", 8, 9, 9},	  {"GI", 350, "", 8, 8, 8},
    {"GL", 299, "", 6, 6, 6},	     {"GM", 220, "", 7, 7, 7},	  {"GN", 224, "", 8, 9, 9},
    {"GP", 590, "0", 9, 9, 9},	     {"GQ", 240, "", 9, 9, 9},	  {"GR", 30, "", 10, 12, 10},
    {"GS", 500, "", 5, 5, 5},	     {"GT", 502, "", 8, 11, 8},	  {"GU", 1, "1", 10, 10, 10},
    {"GW", 245, "", 7, 9, 9},	     {"GY", 592, "", 7, 7, 7},	  {"HK", 852, "", 5, 11, 8},
    {"HM", 672, "", 6, 6, 6},	     {"HN", 504, "", 8, 11, 8},	  {"HR", 385, "0", 6, 9, 9},
    {"HT", 509, "", 8, 8, 8},	     {"HU", 36, "06", 8, 9, 9},	  {"ID", 62, "0", 7, 13, 12},
    {"IE", 353, "0", 7, 10, 10},     {"IL", 972, "0", 7, 12, 12}, {"IM", 44, "0", 10, 10, 10},
    {"IN", 91, "0", 8, 13, 10},	     {"IO", 246, "", 7, 7, 7},	  {"IQ", 964, "0", 8, 10, 10},
    {"IR", 98, "0", 4, 10, 10},	     {"IS", 354, "", 7, 9, 9},	  {"IT", 39, "", 6, 12, 11},
    {"JE", 44, "0", 10, 10, 10},     {"JM", 1, "1", 10, 10, 10},  {"JO", 962, "0", 8, 9, 9},
    {"JP", 81, "0", 8, 17, 10},	     {"KE", 254, "0", 7, 10, 9},  {"KG", 996, "0", 9, 10, 9},
    {"KH", 855, "0", 8, 10, 9},	     {"KI", 686, "0", 5, 8, 8},	  {"KM", 269, "", 7, 7, 7},
    {"KN", 1, "1", 10, 10, 10},	     {"KP", 850, "0", 8, 10, 10}, {"KR", 82, "0", 5, 14, 10},
    {"KW", 965, "", 7, 8, 8},	     {"KY", 1, "1", 10, 10, 10},  {"KZ", 7, "8", 10, 14, 10},
    {"LA", 856, "0", 8, 10, 10},     {"LB", 961, "0", 7, 8, 8},	  {"LC", 1, "1", 10, 10, 10},
    {"LI", 423, "0", 7, 9, 9},	     {"LK", 94, "0", 9, 9, 9},	  {"LR", 231, "0", 7, 9, 9},
    {"LS", 266, "", 8, 8, 8},	     {"LT", 370, "8|0", 8, 8, 8}, {"LU", 352, "", 4, 11, 11},
    {"LV", 371, "", 8, 8, 8},	     {"LY", 218, "0", 9, 9, 9},	  {"MA", 212, "0", 9, 9, 9},
    {"MC", 377, "0", 8, 9, 9},	     {"MD", 373, "0", 8, 8, 8},	  {"ME", 382, "0", 8, 9, 8},
    {"MF", 590, "0", 9, 9, 9},	     {"MG", 261, "0", 9, 9, 9},	  {"MH", 692, "1", 7, 7, 7},
    {"MK", 389, "0", 8, 8, 8},	     {"ML", 223, "", 8, 8, 8},	  {"MM", 95, "0", 6, 10, 10},
    {"MN", 976, "0", 8, 10, 10},     {"MO", 853, "", 7, 8, 8},	  {"MP", 1, "1", 10, 10, 10},
    {"MQ", 596, "0", 9, 9, 9},	     {"MR", 222, "", 8, 8, 8},	  {"MS", 1, "1", 10, 10, 10},
    {"MT", 356, "", 8, 8, 8},	     {"MU", 230, "", 7, 10, 8},	  {"MV", 960, "", 7, 10, 7},
    {"MW", 265, "0", 7, 9, 9},	     {"MX", 52, "", 10, 11, 11},  {"MY", 60, "0", 8, 10, 10},
    {"MZ", 258, "", 8, 9, 9},	     {"NA", 264, "0", 8, 9, 9},	  {"NC", 687, "", 6, 6, 6},
    {"NE", 227, "", 8, 8, 8},	     {"NF", 672, "", 6, 6, 6},	  {"NG", 234, "0", 7, 14, 10},
    {"NI", 505, "", 8, 8, 8},	     {"NL", 31, "0", 5, 11, 11},  {"NO", 47, "", 5, 8, 8},
    {"NP", 977, "0", 8, 11, 10},     {"NR", 674, "", 7, 7, 7},	  {"NU", 683, "", 4, 7, 7},
    {"NZ", 64, "0", 5, 10, 10},	     {"OM", 968, "", 7, 9, 8},	  {"PA", 507, "", 7, 11, 8},
    {"PE", 51, "0", 8, 9, 9},	     {"PF", 689, "", 6, 9, 8},	  {"PG", 675, "", 7, 8, 8},
    {"PH", 63, "0", 6, 13, 10},	     {"PK", 92, "0", 8, 12, 10},  {"PL", 48, "", 6, 10, 9},
    {"PM", 508, "0", 6, 9, 6},	     {"PN", 64, "0", 5, 10, 10},  {"PR", 1, "1", 10, 10, 10},
    {"PS", 970, "0", 8, 10, 9},	     {"PT", 351, "", 9, 9, 9},	  {"PW", 680, "", 7, 7, 7},
    {"PY", 595, "0", 6, 11, 9},	     {"QA", 974, "", 7, 9, 8},	  {"RE", 262, "0", 9, 9, 9},
    {"RO", 40, "0", 6, 9, 9},	     {"RS", 381, "0", 6, 12, 12}, {"RU", 7, "8", 10, 14, 10},
    {"RW", 250, "0", 8, 9, 9},	     {"SA", 966, "0", 9, 10, 9},  {"SB", 677, "", 5, 7, 7},
    {"SC", 248, "", 7, 7, 7},	     {"SD", 249, "0", 9, 9, 9},	  {"SE", 46, "0", 6, 12, 9},
    {"SG", 65, "", 8, 11, 8},	     {"SH", 290, "", 4, 5, 5},	  {"SI", 386, "0", 5, 8, 8},
    {"SJ", 47, "", 5, 8, 8},	     {"SK", 421, "0", 6, 9, 9},	  {"SL", 232, "0", 8, 8, 8},
    {"SM", 378, "", 8, 10, 10},	     {"SN", 221, "", 9, 9, 9},	  {"SO", 252, "0", 6, 9, 9},
    {"SR", 597, "", 6, 7, 7},	     {"SS", 211, "0", 9, 9, 9},	  {"ST", 239, "", 7, 7, 7},
    {"SV", 503, "", 7, 11, 8},	     {"SX", 1, "1", 10, 10, 10},  {"SY", 963, "0", 8, 9, 9},
    {"SZ", 268, "", 8, 9, 8},	     {"TA", 290, "", 4, 4, 4},	  {"TC", 1, "1", 10, 10, 10},
    {"TD", 235, "", 8, 8, 8},	     {"TF", 262, "0", 9, 9, 9},	  {"TG", 228, "", 8, 8, 8},
    {"TH", 66, "0", 8, 13, 9},	     {"TJ", 992, "", 9, 9, 9},	  {"TK", 690, "", 4, 7, 7},
    {"TL", 670, "", 7, 8, 8},	     {"TM", 993, "8", 8, 8, 8},	  {"TN", 216, "", 8, 8, 8},
    {"TO", 676, "", 5, 7, 7},	     {"TR", 90, "0", 7, 13, 10},  {"TT", 1, "1", 10, 10, 10},
    {"TV", 688, "", 5, 7, 7},	     {"TW", 886, "0", 7, 11, 9},  {"TZ", 255, "0", 9, 9, 9},
    {"UA", 380, "0", 9, 10, 9},	     {"UG", 256, "0", 9, 9, 9},	  {"UM", 1, "1", 10, 10, 10},
    {"US", 1, "1", 10, 10, 10},	     {"UY", 598, "0", 7, 10, 8},  {"UZ", 998, "8", 9, 9, 9},
    {"VA", 39, "", 6, 12, 11},	     {"VC", 1, "1", 10, 10, 10},  {"VE", 58, "0", 10, 10, 10},
    {"VG", 1, "1", 10, 10, 10},	     {"VI", 1, "1", 10, 10, 10},  {"VN", 84, "0", 7, 10, 10},
    {"VU", 678, "", 5, 7, 7},	     {"WF", 681, "", 6, 9, 6},	  {"WS", 685, "", 5, 10, 10},
    {"XK", 383, "0", 8, 9, 9},	     {"YE", 967, "0", 7, 9, 9},	  {"YT", 262, "0", 9, 9, 9},
    {"ZA", 27, "0", 5, 10, 9},	     {"ZM", 260, "0", 9, 9, 9},	  {"ZW", 263, "0", 5, 10, 10},
    {"", 800, "", 8, 8, 8},	     {"", 808, "", 8, 8, 8},	  {"", 870, "", 9, 12, 12},
    {"", 878, "", 12, 12, 12},	     {"", 881, "", 9, 9, 9},	  {"", 882, "", 7, 12, 12},
    {"", 883, "", 9, 12, 12},	     {"", 888, "", 11, 11, 11},	  {"", 979, "", 9, 9, 9},
};

#define NCOUNTRIES (sizeof(countries) / sizeof(countries[0]))

/* E.164: at most 15 digits with the country code; the schema wants at least 7. */
#define E164_MAX_DIGITS 15
#define E164_MIN_DIGITS 7
/* Digits collected from the input before they are judged (input is capped at 64 bytes). */
#define MAX_DIGITS 64

/* What a country calling code allows, over every country that shares it. */
typedef struct cc_info {
	int cc;
	int min, max;
	bool trunk0; /* every country of the code has trunk prefix "0" alone */
	bool nanp;   /* +1 */
} cc_info_t;

static const country_t *country_find(const char *iso2)
{
	if (iso2 == NULL || strlen(iso2) != 2)
		return NULL;
	for (size_t i = 0; i < NCOUNTRIES; i++)
		if (countries[i].iso[0] == iso2[0] && countries[i].iso[1] == iso2[1])
			return &countries[i];
	return NULL;
}

static bool cc_lookup(int cc, cc_info_t *ci)
{
	bool found = false;

	memset(ci, 0, sizeof(*ci));
	ci->cc = cc;
	ci->trunk0 = true;
	for (size_t i = 0; i < NCOUNTRIES; i++) {
		const country_t *c = &countries[i];

		if (c->cc != cc)
			continue;
		if (!found || c->min < ci->min)
			ci->min = c->min;
		if (!found || c->max > ci->max)
			ci->max = c->max;
		if (strcmp(c->trunk, "0") != 0)
			ci->trunk0 = false;
		found = true;
	}
	ci->nanp = cc == 1;
	if (ci->nanp)
		ci->min = ci->max = 10;
	return found;
}

int outbound_phone_country_code(const char *iso2)
{
	const country_t *c = country_find(iso2);

	return c != NULL ? c->cc : 0;
}

bool outbound_phone_is_e164(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return false;
	n = strlen(s + 1);
	return n >= E164_MIN_DIGITS && n <= E164_MAX_DIGITS && strspn(s + 1, "0123456789") == n;
}

static outbound_phone_err_t fail(outbound_phone_err_t e, char *why, size_t whysz, const char *fmt,
				 ...) __attribute__((format(printf, 4, 5)));

static outbound_phone_err_t fail(outbound_phone_err_t e, char *why, size_t whysz, const char *fmt,
				 ...)
{
	va_list ap;

	if (why != NULL && whysz > 0) {
		va_start(ap, fmt);
		vsnprintf(why, whysz, fmt, ap);
		va_end(ap);
	}
	return e;
}

/*
 * Length of a separator at s (ASCII or a Unicode space or dash), 0 when s is
 * not one: U+00A0, U+2000-U+200B, U+202F, U+2010-U+2015, U+2212, U+3000.
 */
static size_t separator_len(const unsigned char *s)
{
	if (*s == ' ' || *s == '\t' || *s == '-' || *s == '.' || *s == '(' || *s == ')' ||
	    *s == '/')
		return 1;
	if (s[0] == 0xC2 && s[1] == 0xA0)
		return 2;
	if (s[0] == 0xE2 && s[1] == 0x80 && ((s[2] >= 0x80 && s[2] <= 0x95) || s[2] == 0xAF))
		return 3;
	if (s[0] == 0xE2 && s[1] == 0x88 && s[2] == 0x92)
		return 3;
	if (s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
		return 3;
	return 0;
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/*
 * Letters at s after some digits: an extension marker ("x", "ext", "extn",
 * "extension", optionally with '.' or ':') followed by digits, or plain words.
 */
static bool is_extension(const unsigned char *s)
{
	static const char *const markers[] = {"extension", "extn", "ext", "x"};
	size_t i;

	for (i = 0; i < sizeof(markers) / sizeof(markers[0]); i++) {
		size_t n = strlen(markers[i]), k;

		for (k = 0; k < n && s[k] != '\0' && lower(s[k]) == (unsigned char)markers[i][k];
		     k++)
			;
		if (k != n)
			continue;
		s += n;
		while (*s == '.' || *s == ':' || *s == ' ' || *s == '=')
			s++;
		return *s >= '0' && *s <= '9';
	}
	return false;
}

static bool has_prefix(const char *s, size_t len, const char *p)
{
	size_t n = strlen(p);

	return len >= n && memcmp(s, p, n) == 0;
}

/* Whether an NSN of length n fits the code's plan. */
static bool fits(const cc_info_t *ci, size_t n)
{
	return (int)n >= ci->min && (int)n <= ci->max;
}

/* The +1 rules for a 10-digit NSN: NXX area code (not N11), NXX exchange. */
static outbound_phone_err_t check_nanp(const char *nsn, size_t n, char *why, size_t whysz)
{
	if (n < 10)
		return fail(OUTBOUND_PHONE_TOO_SHORT, why, whysz,
			    "is too short for +1: 10 digits (area code and number) expected");
	if (n > 10)
		return fail(OUTBOUND_PHONE_TOO_LONG, why, whysz,
			    "is too long for +1: 10 digits (area code and number) expected");
	if (nsn[0] == '0' || nsn[0] == '1')
		return fail(OUTBOUND_PHONE_NANP_AREA, why, whysz,
			    "has an invalid +1 area code (it cannot start with 0 or 1)");
	if (nsn[1] == '1' && nsn[2] == '1')
		return fail(OUTBOUND_PHONE_NANP_AREA, why, whysz,
			    "has an invalid +1 area code (%.3s is a service code)", nsn);
	if (nsn[3] == '0' || nsn[3] == '1')
		return fail(OUTBOUND_PHONE_NANP_EXCHANGE, why, whysz,
			    "has an invalid +1 exchange code (it cannot start with 0 or 1)");
	return OUTBOUND_PHONE_OK;
}

/* Judge NSN nsn[0..n) of code ci and write "+<cc><nsn>". */
static outbound_phone_err_t finish(const cc_info_t *ci, const char *label, const char *nsn,
				   size_t n, char *out, char *why, size_t whysz)
{
	char ccs[8];
	size_t cclen = (size_t)snprintf(ccs, sizeof(ccs), "%d", ci->cc);
	outbound_phone_err_t e;

	if (ci->nanp) {
		e = check_nanp(nsn, n, why, whysz);
		if (e != OUTBOUND_PHONE_OK)
			return e;
	}
	if (cclen + n > E164_MAX_DIGITS)
		return fail(OUTBOUND_PHONE_TOO_LONG, why, whysz,
			    "has more than 15 digits with its country code (the E.164 limit)");
	if ((int)n < ci->min || cclen + n < E164_MIN_DIGITS)
		return fail(OUTBOUND_PHONE_TOO_SHORT, why, whysz,
			    "is too short for %s (+%d): %d to %d digits after the country code",
			    label, ci->cc, ci->min, ci->max);
	if ((int)n > ci->max)
		return fail(OUTBOUND_PHONE_TOO_LONG, why, whysz,
			    "is too long for %s (+%d): %d to %d digits after the country code",
			    label, ci->cc, ci->min, ci->max);
	out[0] = '+';
	memcpy(out + 1, ccs, cclen);
	memcpy(out + 1 + cclen, nsn, n);
	out[1 + cclen + n] = '\0';
	return OUTBOUND_PHONE_OK;
}

/* digits[0..n) follow an international prefix: split off the calling code. */
static outbound_phone_err_t international(const char *d, size_t n, char *out, char *why,
					  size_t whysz)
{
	cc_info_t ci;
	char label[8];
	size_t k;

	if (n == 0)
		return fail(OUTBOUND_PHONE_TOO_SHORT, why, whysz,
			    "has no digits after the international prefix");
	if (d[0] == '0')
		return fail(OUTBOUND_PHONE_UNKNOWN_CC, why, whysz,
			    "has no country calling code (it cannot start with 0)");
	/* Calling codes are a prefix code (ITU-T E.164): at most one length matches. */
	for (k = 1; k <= 3 && k <= n; k++) {
		int cc = 0;

		for (size_t i = 0; i < k; i++)
			cc = cc * 10 + (d[i] - '0');
		if (cc_lookup(cc, &ci))
			break;
	}
	if (k > 3 || k > n)
		return fail(OUTBOUND_PHONE_UNKNOWN_CC, why, whysz,
			    "has an unknown country calling code (+%.3s)", d);
	d += k;
	n -= k;
	/* "+44 (0)20 ...": the national trunk 0 never belongs in E.164 there. */
	if (ci.trunk0 && n > 0 && d[0] == '0' && fits(&ci, n - 1)) {
		d++;
		n--;
	}
	snprintf(label, sizeof(label), "+%d", ci.cc);
	return finish(&ci, label, d, n, out, why, whysz);
}

/*
 * Argentina writes a mobile number nationally as 0 + area code (2 to 4
 * digits) + "15" + the subscriber number, 10 digits without the 0 and the 15;
 * internationally it is +54 9 + area code + number.
 */
static bool argentine_mobile(const char *d, size_t n, char *out)
{
	if (n == 13 && d[0] == '0') {
		d++;
		n--;
	}
	if (n != 12 || d[0] == '0')
		return false;
	for (size_t at = 2; at <= 4; at++) {
		if (d[at] != '1' || d[at + 1] != '5')
			continue;
		memcpy(out, "+549", 4);
		memcpy(out + 4, d, at);
		memcpy(out + 4 + at, d + at + 2, n - at - 2);
		out[4 + n - 2] = '\0';
		return true;
	}
	return false;
}

/* digits[0..n) in the national form of country c. */
static outbound_phone_err_t national(const country_t *c, const char *d, size_t n, char *out,
				     char *why, size_t whysz)
{
	cc_info_t ci;
	char ccs[8];
	size_t cclen;
	const char *t;

	cc_lookup(c->cc, &ci);
	ci.min = c->min;
	ci.max = c->max;
	if (ci.nanp) {
		ci.min = ci.max = 10;
		if (n == 11 && d[0] == '1') {
			d++;
			n--;
		}
		return finish(&ci, c->iso, d, n, out, why, whysz);
	}
	if (strcmp(c->iso, "AR") == 0 && argentine_mobile(d, n, out))
		return OUTBOUND_PHONE_OK;
	/* A trunk prefix, when what follows it fits the plan ("050..." in IL). */
	for (t = c->trunk; *t != '\0';) {
		size_t tl = strcspn(t, "|");
		char tp[8];

		snprintf(tp, sizeof(tp), "%.*s", (int)tl, t);
		if (tl > 0 && has_prefix(d, n, tp) && fits(&ci, n - tl))
			return finish(&ci, c->iso, d + tl, n - tl, out, why, whysz);
		t += tl;
		if (*t == '|')
			t++;
	}
	/*
	 * The country code without its '+' or "00", as spreadsheets export
	 * numbers ("972501234567"). Where the plan has a trunk prefix a national
	 * number is written with it, so the code is recognised whenever the rest
	 * fits; elsewhere only when the number is too long to be national.
	 */
	cclen = (size_t)snprintf(ccs, sizeof(ccs), "%d", c->cc);
	if (has_prefix(d, n, ccs) && (c->trunk[0] != '\0' || n > c->tmax)) {
		const char *r = d + cclen;
		size_t rn = n - cclen;

		if (ci.trunk0 && rn > 0 && r[0] == '0' && fits(&ci, rn - 1)) {
			r++;
			rn--;
		}
		if (fits(&ci, rn))
			return finish(&ci, c->iso, r, rn, out, why, whysz);
	}
	return finish(&ci, c->iso, d, n, out, why, whysz);
}

outbound_phone_err_t outbound_phone_normalize(const char *in, const char *default_country,
					      char out[OUTBOUND_PHONE_BUFSZ], char *why,
					      size_t whysz)
{
	const unsigned char *s = (const unsigned char *)in;
	char d[MAX_DIGITS];
	size_t n = 0, len;
	bool plus = false, seen = false;
	const country_t *c;

	out[0] = '\0';
	if (why != NULL && whysz > 0)
		why[0] = '\0';
	if (in == NULL)
		return fail(OUTBOUND_PHONE_EMPTY, why, whysz, "is empty");
	len = strlen(in);
	if (len > OUTBOUND_PHONE_INPUT_MAX)
		return fail(OUTBOUND_PHONE_INPUT_TOO_LONG, why, whysz,
			    "is too long (more than %d characters)", OUTBOUND_PHONE_INPUT_MAX);
	while (*s != '\0') {
		size_t sl;

		if (*s >= '0' && *s <= '9') {
			d[n++] = (char)*s++;
			seen = true;
			continue;
		}
		if (*s == '+') {
			if (seen || plus)
				return fail(OUTBOUND_PHONE_BAD_PLUS, why, whysz,
					    "has a '+' that is not at the start");
			plus = true;
			seen = true;
			s++;
			continue;
		}
		sl = separator_len(s);
		if (sl > 0) {
			s += sl;
			continue;
		}
		if (*s == '#' || *s == ',' || *s == ';')
			return fail(
			    OUTBOUND_PHONE_EXTENSION, why, whysz,
			    "has an extension or dial pause ('%c'), which cannot be dialled", *s);
		if (is_alpha(*s)) {
			if (n > 0 && is_extension(s))
				return fail(OUTBOUND_PHONE_EXTENSION, why, whysz,
					    "has an extension, which cannot be dialled");
			return fail(OUTBOUND_PHONE_LETTERS, why, whysz, "contains letters");
		}
		if (*s >= 0x20 && *s < 0x7f)
			return fail(OUTBOUND_PHONE_BAD_CHAR, why, whysz,
				    "contains an invalid character ('%c')", *s);
		return fail(OUTBOUND_PHONE_BAD_CHAR, why, whysz, "contains an invalid character");
	}
	if (!seen)
		return fail(OUTBOUND_PHONE_EMPTY, why, whysz, "is empty");
	if (plus)
		return international(d, n, out, why, whysz);
	c = country_find(default_country);
	/* International dialling prefixes: the country's own, then the common "00". */
	if (c != NULL && c->cc == 1 && has_prefix(d, n, "011"))
		return international(d + 3, n - 3, out, why, whysz);
	if (c != NULL &&
	    (strcmp(c->iso, "AU") == 0 || strcmp(c->iso, "CX") == 0 || strcmp(c->iso, "CC") == 0) &&
	    has_prefix(d, n, "0011"))
		return international(d + 4, n - 4, out, why, whysz);
	if (c != NULL && strcmp(c->iso, "JP") == 0 && has_prefix(d, n, "010"))
		return international(d + 3, n - 3, out, why, whysz);
	if (c != NULL && strchr(c->trunk, '8') != NULL && c->trunk[0] == '8' &&
	    has_prefix(d, n, "810"))
		return international(d + 3, n - 3, out, why, whysz);
	if (has_prefix(d, n, "00"))
		return international(d + 2, n - 2, out, why, whysz);
	if (c == NULL)
		return fail(OUTBOUND_PHONE_NO_COUNTRY, why, whysz,
			    default_country != NULL && default_country[0] != '\0'
				? "has no country code, and the default country is unknown"
				: "has no country code (start it with '+'), and there is no "
				  "default country");
	return national(c, d, n, out, why, whysz);
}
