/*
 * phone.h - E.164 normalisation of the phone numbers people type, paste and
 * export from spreadsheets, with a business's default country (ISO 3166-1
 * alpha-2) for numbers written in national form.
 *
 * Accepted: "+972 50-123-4567", "00972501234567", "(415) 555-0123" (US),
 * "050-1234567" (IL: the national trunk prefix 0 is dropped), "8 912 345-67-89"
 * (RU: trunk 8), "972501234567" (IL: the country code without '+', as
 * spreadsheets export it), "+44 (0)20 7946 0958". Separators are spaces,
 * '-', '.', '/', parentheses and their Unicode look-alikes. Letters, extensions,
 * numbers that are too short or too long for their country, and unknown
 * country calling codes are refused with a reason meant for the person who
 * typed the number. The country table covers every ISO 3166-1 country and
 * the non-geographic codes (+800, +882, ...); lengths are those of the
 * national significant number, as assigned by each numbering plan.
 */
#ifndef DIALFLOW_PHONE_H
#define DIALFLOW_PHONE_H

#include <stdbool.h>
#include <stddef.h>

/* "+" and at most 15 digits (ITU-T E.164), and the NUL. */
#define OUTBOUND_PHONE_BUFSZ 17
/* Longer input is refused before it is looked at. */
#define OUTBOUND_PHONE_INPUT_MAX 64

typedef enum {
	OUTBOUND_PHONE_OK = 0,
	OUTBOUND_PHONE_EMPTY,	       /* nothing but spaces                          */
	OUTBOUND_PHONE_INPUT_TOO_LONG, /* more than OUTBOUND_PHONE_INPUT_MAX bytes   */
	OUTBOUND_PHONE_LETTERS,	       /* letters (vanity numbers, words)             */
	OUTBOUND_PHONE_EXTENSION,      /* "x12", "ext. 12", '#', ',' or ';'           */
	OUTBOUND_PHONE_BAD_CHAR,       /* any other character                         */
	OUTBOUND_PHONE_BAD_PLUS,       /* a '+' that is not the first character       */
	OUTBOUND_PHONE_NO_COUNTRY,     /* national form, and no known default country */
	OUTBOUND_PHONE_UNKNOWN_CC,     /* no such country calling code                */
	OUTBOUND_PHONE_TOO_SHORT,      /* for the country's numbering plan            */
	OUTBOUND_PHONE_TOO_LONG,       /* for the country, or over 15 digits          */
	OUTBOUND_PHONE_NANP_AREA,      /* +1: area code starts with 0/1, or is N11    */
	OUTBOUND_PHONE_NANP_EXCHANGE,  /* +1: exchange code starts with 0 or 1        */
} outbound_phone_err_t;

/*
 * Normalise `in` (UTF-8, NUL-terminated) to E.164 into out. default_country
 * (may be NULL) is an upper-case ISO alpha-2 code, used only when the number
 * has no international prefix. On failure out is "" and, when why is not
 * NULL, it receives a short reason without a subject ("is too short for IL
 * (+972): 7 to 12 digits after the country code"). Pure and thread-safe.
 */
outbound_phone_err_t outbound_phone_normalize(const char *in, const char *default_country,
					      char out[OUTBOUND_PHONE_BUFSZ], char *why,
					      size_t whysz);

/* The country calling code of an ISO alpha-2 country (upper case), or 0 when unknown. */
int outbound_phone_country_code(const char *iso2);

/* Whether s is already in E.164 form: '+', a first digit 1-9, 7 to 15 digits. */
bool outbound_phone_is_e164(const char *s);

#endif
