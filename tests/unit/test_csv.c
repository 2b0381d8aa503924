/*
 * test_csv.c - the RFC 4180 reader (csv.h) and the lead import built on it
 * (leadimport.h): quoting, "" escapes, line breaks inside quotes, CRLF / LF /
 * CR, the byte order mark, the final line break, per-record errors that never
 * hide the next record (invalid UTF-8, NUL, stray quotes, limits), header
 * mapping, and the import's per-row errors, duplicates and 5000-row cap.
 */
#include "../unit/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/csv.h"
#include "dialflow/leadimport.h"

static arena_t *A;

static int setup(void **state)
{
	(void)state;
	A = arena_new(1 << 16);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	arena_free(A);
	A = NULL;
	return 0;
}

/* Read every record of s (NUL-terminated) into recs (max n); returns the count. */
static size_t read_all(const char *s, size_t len, const outbound_csv_limits_t *lim,
		       outbound_csv_record_t *recs, size_t n)
{
	outbound_csv_t p;
	size_t k = 0;

	outbound_csv_init(&p, A, s, len, lim);
	while (k < n && outbound_csv_next(&p, &recs[k]) == 1)
		k++;
	return k;
}
#define READ(s, recs) read_all((s), strlen(s), NULL, (recs), sizeof(recs) / sizeof((recs)[0]))

static void expect_fields(const outbound_csv_record_t *r, size_t n, ...)
{
	va_list ap;

	if (r->error != NULL)
		fail_msg("record %zu: unexpected error \"%s\"", r->number, r->error);
	assert_int_equal(r->nfields, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(r->fields[i], va_arg(ap, const char *));
	va_end(ap);
}

static void test_plain_records(void **state)
{
	outbound_csv_record_t r[8];

	(void)state;
	assert_int_equal(READ("a,b,c\r\n1,2,3\r\n", r), 2);
	expect_fields(&r[0], 3, "a", "b", "c");
	expect_fields(&r[1], 3, "1", "2", "3");
	assert_int_equal(r[0].number, 1);
	assert_int_equal(r[1].number, 2);
	assert_int_equal(r[1].line, 2);
	/* LF, a lone CR, and no final line break */
	assert_int_equal(READ("a,b\nc,d\re,f", r), 3);
	expect_fields(&r[2], 2, "e", "f");
	assert_int_equal(r[2].line, 3);
	/* empty fields, leading and trailing */
	assert_int_equal(READ(",x,\n", r), 1);
	expect_fields(&r[0], 3, "", "x", "");
	/* spaces are data (RFC 4180): nothing is trimmed here */
	assert_int_equal(READ(" a , b \n", r), 1);
	expect_fields(&r[0], 2, " a ", " b ");
	/* nothing at all */
	assert_int_equal(READ("", r), 0);
	assert_int_equal(read_all(NULL, 0, NULL, r, 8), 0);
}

static void test_quoting(void **state)
{
	outbound_csv_record_t r[8];

	(void)state;
	assert_int_equal(READ("\"a,b\",\"say \"\"hi\"\"\",\"\"\n", r), 1);
	expect_fields(&r[0], 3, "a,b", "say \"hi\"", "");
	/* line breaks inside quotes belong to the field; lines are still counted */
	assert_int_equal(READ("\"line1\r\nline2\",x\r\n\"a\nb\",y\nlast,z\n", r), 3);
	expect_fields(&r[0], 2, "line1\r\nline2", "x");
	expect_fields(&r[1], 2, "a\nb", "y");
	expect_fields(&r[2], 2, "last", "z");
	assert_int_equal(r[0].line, 1);
	assert_int_equal(r[1].line, 3);
	assert_int_equal(r[2].line, 5);
	/* a quoted field at the end of the input, without a line break */
	assert_int_equal(READ("a,\"b\"", r), 1);
	expect_fields(&r[0], 2, "a", "b");
}

static void test_bom_and_final_break(void **state)
{
	outbound_csv_record_t r[8];

	(void)state;
	assert_int_equal(READ("\xEF\xBB\xBFphone,name\r\n+14155550123,Ada\r\n", r), 2);
	expect_fields(&r[0], 2, "phone", "name");
	/* a BOM elsewhere is data */
	assert_int_equal(READ("a\n\xEF\xBB\xBF"
			      "b\n",
			      r),
			 2);
	expect_fields(&r[1], 1,
		      "\xEF\xBB\xBF"
		      "b");
	/* a final line break makes no empty record, an empty line does */
	assert_int_equal(READ("a\n", r), 1);
	assert_int_equal(READ("a\n\nb\n", r), 3);
	assert_true(r[1].blank);
	assert_int_equal(r[1].nfields, 1);
	assert_false(r[0].blank);
	/* only separators is blank too */
	assert_int_equal(READ(",,\n\"\",\"\"\n", r), 2);
	assert_true(r[0].blank);
	assert_true(r[1].blank);
}

static void test_bad_records_do_not_hide_the_next(void **state)
{
	outbound_csv_record_t r[8];

	(void)state;
	/* invalid UTF-8 (a lone continuation byte), then a good record */
	assert_int_equal(READ("ok,1\nbad\x80,2\nok,3\n", r), 3);
	expect_fields(&r[0], 2, "ok", "1");
	assert_non_null(r[1].error);
	assert_non_null(strstr(r[1].error, "UTF-8"));
	assert_null(r[1].fields);
	assert_int_equal(r[1].nfields, 0);
	expect_fields(&r[2], 2, "ok", "3");
	/* a NUL byte */
	assert_int_equal(read_all("a\0b,1\nc,2\n", 10, NULL, r, 8), 2);
	assert_non_null(strstr(r[0].error, "NUL"));
	expect_fields(&r[1], 2, "c", "2");
	/* a quote inside an unquoted field */
	assert_int_equal(READ("ab\"c,1\nd,2\n", r), 2);
	assert_non_null(strstr(r[0].error, "quote"));
	expect_fields(&r[1], 2, "d", "2");
	/* text after a closing quote; the bad record still ends at its line break */
	assert_int_equal(READ("\"ab\"c,1\nd,2\n", r), 2);
	assert_non_null(strstr(r[0].error, "closing quote"));
	expect_fields(&r[1], 2, "d", "2");
	/* a bad record whose quoted field spans lines: the reader resynchronises after it */
	assert_int_equal(READ("\"x\ny\"z,1\nok,2\n", r), 2);
	assert_non_null(r[0].error);
	expect_fields(&r[1], 2, "ok", "2");
	assert_int_equal(r[1].line, 3);
	/* a quote never closed swallows the rest, and says so */
	assert_int_equal(READ("a,1\n\"b,2\nc,3\n", r), 2);
	expect_fields(&r[0], 2, "a", "1");
	assert_non_null(strstr(r[1].error, "never closed"));
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(outbound_utf8_valid("", 0));
	assert_true(outbound_utf8_valid("plain", 5));
	assert_true(outbound_utf8_valid("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", 8)); /* shalom */
	assert_true(outbound_utf8_valid("\xE2\x82\xAC", 3));			 /* euro */
	assert_true(outbound_utf8_valid("\xF0\x9F\x93\x9E", 4));		 /* phone emoji */
	assert_true(outbound_utf8_valid("\xF4\x8F\xBF\xBF", 4));		 /* U+10FFFF */
	assert_false(outbound_utf8_valid("\x80", 1));				 /* continuation */
	assert_false(outbound_utf8_valid("\xC0\x80", 2));			 /* overlong NUL */
	assert_false(outbound_utf8_valid("\xC1\xBF", 2));			 /* overlong */
	assert_false(outbound_utf8_valid("\xE0\x80\xAF", 3));			 /* overlong '/' */
	assert_false(outbound_utf8_valid("\xED\xA0\x80", 3));			 /* surrogate */
	assert_false(outbound_utf8_valid("\xF4\x90\x80\x80", 4));		 /* > U+10FFFF */
	assert_false(outbound_utf8_valid("\xF5\x80\x80\x80", 4));
	assert_false(outbound_utf8_valid("\xE2\x82", 2)); /* cut short */
	assert_false(outbound_utf8_valid("\xE2\x28\xA1", 3));
	assert_false(outbound_utf8_valid("\xFF", 1));
}

static void test_limits(void **state)
{
	outbound_csv_limits_t lim = {.max_field = 4, .max_fields = 3, .max_record = 16};
	outbound_csv_record_t r[8];
	const char *s;

	(void)state;
	s = "abcd,1\nabcde,2\nok,3\n";
	assert_int_equal(read_all(s, strlen(s), &lim, r, 8), 3);
	expect_fields(&r[0], 2, "abcd", "1");
	assert_non_null(strstr(r[1].error, "too long"));
	expect_fields(&r[2], 2, "ok", "3");
	s = "a,b,c\na,b,c,d\nz\n";
	assert_int_equal(read_all(s, strlen(s), &lim, r, 8), 3);
	expect_fields(&r[0], 3, "a", "b", "c");
	assert_non_null(strstr(r[1].error, "too many fields"));
	expect_fields(&r[2], 1, "z");
	s = "1,2,3\n\"aaaa\",\"bbbb\",\"cccc\"\nz\n";
	assert_int_equal(read_all(s, strlen(s), &lim, r, 8), 3);
	assert_non_null(strstr(r[1].error, "is too long"));
	expect_fields(&r[2], 1, "z");
	/* the default limits */
	assert_int_equal(outbound_csv_default_limits.max_field, 4096);
	assert_int_equal(outbound_csv_default_limits.max_fields, 64);
}

static const outbound_csv_column_t cols[] = {
    {"phone|phone_number|mobile|number", true},
    {"name|full_name", false},
    {"email", false},
};

static int map(const char *header, int *idx, const char **why)
{
	outbound_csv_record_t r[1];

	assert_int_equal(READ(header, r), 1);
	return outbound_csv_map_header(A, &r[0], cols, 3, idx, why);
}

static void test_header_mapping(void **state)
{
	int idx[3];
	const char *why = NULL;

	(void)state;
	assert_int_equal(map("Name,PHONE,extra\n", idx, &why), 0);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 0);
	assert_int_equal(idx[2], -1);
	assert_int_equal(map(" Full Name , Phone Number ,E-mail\n", idx, &why), 0);
	assert_int_equal(idx[0], 1);
	assert_int_equal(idx[1], 0);
	assert_int_equal(idx[2], -1); /* "e_mail" is not an alias of this table */
	assert_int_equal(map("mobile,email\n", idx, &why), 0);
	assert_int_equal(idx[0], 0);
	assert_int_equal(idx[2], 1);
	assert_int_equal(map("number-\n", idx, &why), -1);
	assert_int_equal(map("name,email\n", idx, &why), -1);
	assert_non_null(strstr(why, "phone"));
	assert_int_equal(map("phone,mobile\n", idx, &why), -1);
	assert_non_null(strstr(why, "both"));
}

/* --- the lead import ------------------------------------------------------ */

static int csv_import(const char *body, const char *country, outbound_import_t *out,
		      const char **field, const char **why)
{
	return outbound_import_csv(A, body, strlen(body), country, out, field, why);
}

static void expect_error(const outbound_import_t *imp, size_t i, size_t row, const char *part)
{
	assert_true(i < imp->nerrors);
	assert_int_equal(imp->errors[i].row, row);
	if (strstr(imp->errors[i].reason, part) == NULL)
		fail_msg("error %zu \"%s\" lacks \"%s\"", i, imp->errors[i].reason, part);
}

static void test_import_csv(void **state)
{
	outbound_import_t imp;
	const char *field = NULL, *why = NULL;
	const char *body = "\xEF\xBB\xBF"
			   "Phone,Name,Email,Notes,Source\r\n"
			   "050-1234567,Dana,dana@example.com,\"VIP, call after 5\",web\r\n"
			   "+1 (415) 555-0123,  Ada  ,,,\r\n"
			   "\r\n"
			   "not a phone,Bob,bob@,,\r\n"
			   "00972501234567,Dup,,,\r\n"
			   "+44 20 7946 0958,Grace,,\"two\nlines\",\r\n"
			   "bad\xff,x,,,\r\n"
			   ",NoPhone,,,\r\n"
			   "+33 6 12 34 56 78,Extra,,,web,surplus\r\n"
			   "+39 06 1234 5678,\"Multi\nline\",,,\r\n";

	(void)state;
	assert_int_equal(csv_import(body, "IL", &imp, &field, &why), 0);
	assert_int_equal(imp.total, 9); /* the blank line is not a row */
	assert_int_equal(imp.nrows, 3);
	assert_int_equal(imp.duplicates, 1);
	assert_int_equal(imp.nerrors, 5);
	assert_int_equal(imp.nrows + imp.duplicates + imp.nerrors, imp.total);
	assert_string_equal(imp.rows[0].phone, "+972501234567");
	assert_string_equal(imp.rows[0].name, "Dana");
	assert_string_equal(imp.rows[0].email, "dana@example.com");
	assert_string_equal(imp.rows[0].notes, "VIP, call after 5");
	assert_int_equal(imp.rows[0].row, 1);
	assert_string_equal(imp.rows[1].phone, "+14155550123");
	assert_string_equal(imp.rows[1].name, "Ada"); /* trimmed */
	assert_null(imp.rows[1].email);
	assert_null(imp.rows[1].notes);
	assert_string_equal(imp.rows[2].phone, "+442079460958");
	assert_string_equal(imp.rows[2].notes, "two\nlines"); /* notes may span lines */
	assert_int_equal(imp.rows[2].row, 6);
	/* row numbers count every record after the header, blank ones too */
	expect_error(&imp, 0, 4, "phone contains letters");
	expect_error(&imp, 0, 4, "email is not a valid address");
	expect_error(&imp, 1, 7, "UTF-8");
	expect_error(&imp, 2, 8, "phone is empty");
	expect_error(&imp, 3, 9, "6 fields, the header 5");
	expect_error(&imp, 4, 10, "name contains control characters");
	/* the physical line of the row, for the person with the file open */
	assert_int_equal(imp.errors[0].line, 5);
	assert_int_equal(imp.errors[1].line, 9);
	assert_int_equal(imp.errors[4].line, 12);
}

static void test_import_csv_extra_fields(void **state)
{
	outbound_import_t imp;
	const char *field = NULL, *why = NULL;

	(void)state;
	/* surplus empty fields (a trailing comma) are fine, surplus data is not */
	assert_int_equal(
	    csv_import("phone\n+14155550123,\n+14155550124,oops\n", "US", &imp, &field, &why), 0);
	assert_int_equal(imp.nrows, 1);
	expect_error(&imp, 0, 2, "2 fields, the header 1");
	/* fewer fields than the header: the missing ones are empty */
	assert_int_equal(csv_import("name,email,phone\nAda\n", "US", &imp, &field, &why), 0);
	expect_error(&imp, 0, 1, "phone is empty");
}

static void test_import_csv_request_errors(void **state)
{
	outbound_import_t imp;
	const char *field = NULL, *why = NULL;

	(void)state;
	assert_int_equal(csv_import("", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "body");
	assert_int_equal(csv_import("\n\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "body");
	assert_int_equal(csv_import("name,email\nAda,a@b.c\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "header");
	assert_non_null(strstr(why, "phone"));
	assert_int_equal(csv_import("phone,Phone_Number\n1\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "header");
	assert_int_equal(csv_import("ph\xc3one\n1\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "header");
	assert_int_equal(csv_import("phone\r\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "rows");
	assert_int_equal(csv_import("phone\n\n\n", "US", &imp, &field, &why), -1);
	assert_string_equal(field, "rows");
}

/* A CSV of n rows of distinct valid numbers; blank lines between do not count. */
static char *many_rows(size_t n)
{
	char *s = malloc(32 + n * 24), *p = s;

	p += sprintf(p, "phone\n");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "+1415%07zu\n%s", 2000000 + i, i % 100 == 0 ? "\n" : "");
	return s;
}

static void test_import_cap(void **state)
{
	outbound_import_t imp;
	const char *field = NULL, *why = NULL;
	char *s;
	json_t *rows;

	(void)state;
	s = many_rows(OUTBOUND_IMPORT_MAX_ROWS);
	assert_int_equal(csv_import(s, "US", &imp, &field, &why), 0);
	assert_int_equal(imp.nrows, OUTBOUND_IMPORT_MAX_ROWS);
	assert_int_equal(imp.nerrors, 0);
	free(s);
	s = many_rows(OUTBOUND_IMPORT_MAX_ROWS + 1);
	assert_int_equal(csv_import(s, "US", &imp, &field, &why), -1);
	assert_string_equal(field, "rows");
	assert_non_null(strstr(why, "5000"));
	free(s);
	rows = json_array();
	for (size_t i = 0; i <= OUTBOUND_IMPORT_MAX_ROWS; i++)
		json_array_append_new(rows, json_pack("{s:s}", "phone", "+14155550123"));
	assert_int_equal(outbound_import_json(A, rows, "US", &imp, &field, &why), -1);
	assert_string_equal(field, "rows");
	json_array_remove(rows, 0);
	assert_int_equal(outbound_import_json(A, rows, "US", &imp, &field, &why), 0);
	assert_int_equal(imp.nrows, 1);
	assert_int_equal(imp.duplicates, OUTBOUND_IMPORT_MAX_ROWS - 1);
	json_decref(rows);
}

static void test_import_json(void **state)
{
	outbound_import_t imp;
	const char *field = NULL, *why = NULL;
	char longname[260];
	json_t *rows;

	(void)state;
	memset(longname, 'n', 201);
	longname[201] = '\0';
	rows = json_pack("[{s:s,s:s},{s:s},{s:I},{s:n},{},[],{s:s,s:i,s:n},{s:s,s:s},{s:s,s:s},"
			 "{s:s,s:s}]",
			 "phone", "+972 50 123 4567", "name", "Dana", /* 1 ok */
			 "phone", "050-1234567",		      /* 2 duplicate of 1 */
			 "phone", (json_int_t)972501234567LL,	      /* 3 a number */
			 "phone",				      /* 4 null */
			 /* 5 {} */				      /* 6 [] */
			 "phone", "+14155550123", "name", 7, "email", /* 7 wrong types */
			 "phone", "+14155550124", "name", longname,   /* 8 name too long */
			 "phone", "+14155550125", "email", "a@b.co",  /* 9 ok */
			 "phone", "+1 415 555 0126 x7", "notes", "");
	assert_non_null(rows);
	assert_int_equal(outbound_import_json(A, rows, "IL", &imp, &field, &why), 0);
	assert_int_equal(imp.total, 10);
	assert_int_equal(imp.nrows, 2);
	assert_int_equal(imp.duplicates, 1);
	assert_int_equal(imp.nerrors, 7);
	assert_int_equal(imp.errors[0].line, 0);
	expect_error(&imp, 0, 3, "phone must be a string");
	expect_error(&imp, 1, 4, "phone must be a string, not null");
	expect_error(&imp, 2, 5, "phone is required");
	expect_error(&imp, 3, 6, "not an object");
	expect_error(&imp, 4, 7, "name must be a string");
	expect_error(&imp, 4, 7, "email must be a string, not null");
	expect_error(&imp, 5, 8, "longer than 200");
	expect_error(&imp, 6, 10, "extension");
	assert_string_equal(imp.rows[1].email, "a@b.co");
	assert_int_equal(imp.rows[1].row, 9);
	json_decref(rows);

	assert_int_equal(outbound_import_json(A, NULL, "IL", &imp, &field, &why), -1);
	assert_string_equal(field, "rows");
	rows = json_array();
	assert_int_equal(outbound_import_json(A, rows, "IL", &imp, &field, &why), -1);
	assert_string_equal(why, "must not be empty");
	json_decref(rows);
	rows = json_object();
	assert_int_equal(outbound_import_json(A, rows, "IL", &imp, &field, &why), -1);
	json_decref(rows);
}

static void test_email(void **state)
{
	(void)state;
	assert_true(outbound_email_valid("ada@example.com"));
	assert_true(outbound_email_valid("a.b+c@sub.example.co.il"));
	assert_false(outbound_email_valid("ada@"));
	assert_false(outbound_email_valid("@example.com"));
	assert_false(outbound_email_valid("ada@example"));
	assert_false(outbound_email_valid("ada@@example.com"));
	assert_false(outbound_email_valid("a da@example.com"));
	assert_false(outbound_email_valid("ada@example.com."));
	assert_false(outbound_email_valid("ada@.example.com"));
	assert_false(outbound_email_valid("<ada@example.com>"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_plain_records, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_quoting, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bom_and_final_break, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_records_do_not_hide_the_next, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_utf8, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_header_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_csv, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_csv_extra_fields, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_csv_request_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_import_json, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_email, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
