/*
 * itest.h - helpers for the integration tier: cmocka tests against a real,
 * migrated PostgreSQL (DESIGN §9).
 *
 * Environment (set by ./dev test; never defaulted, never skipped):
 *   DIALFLOW_TEST_DATABASE_URL   the owner role `dialflow` on a migrated database
 *   DIALFLOW_TEST_SUPERUSER_URL  the superuser `postgres` (pg_terminate_backend,
 *                                scratch databases)
 *   DIALFLOW_MIGRATIONS_DIR      the migrations/ directory
 *
 * The database outlives each test binary, so every fixture carries a unique
 * suffix (pid, time, counter) and tests compare against their own fixtures,
 * never against global totals taken for granted.
 *
 * Every helper that "must" succeed fails the current cmocka test with the
 * server's message when it does not; call them only from inside a test or a
 * setup/teardown function.
 */
#ifndef DIALFLOW_ITEST_H
#define DIALFLOW_ITEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdbool.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"

#define ITEST_APP_ROLE	   "dialflow_app"
#define ITEST_PASSWORD	   "itest-password-0123"
#define ITEST_STMT_TIMEOUT 5000

/*
 * Check the environment before running any test: print why and exit(1)
 * when a variable is missing (CI must never pass by skipping). Also sets
 * the log level from DIALFLOW_TEST_LOG_LEVEL (default "warn").
 */
void itest_init(void);

const char *itest_db_url(void);
const char *itest_super_url(void);
const char *itest_migrations_dir(void);

/* A unique token for this process ("<pid>_<time>_<n>"), new on every call. */
const char *itest_unique(char *buf, size_t bufsz);

/*
 * The conninfo `url` with some keywords replaced, as a keyword=value string
 * (malloc'd, caller frees). Pass pairs of (keyword, value) ending with NULL;
 * a NULL value removes the keyword.
 */
char *itest_conninfo_with(const char *url, ...) __attribute__((sentinel));

/* Raw connections that must succeed; caller PQfinish()es. */
PGconn *itest_pg_connect(const char *conninfo);
PGconn *itest_owner_pg(void);
PGconn *itest_super_pg(void);

/*
 * db handles on DIALFLOW_TEST_DATABASE_URL, connected (db_ensure() == 0):
 * as the owner, or as the API's role dialflow_app (SET ROLE at connect).
 * application_name should be unique when a test looks the session up.
 * Caller db_free()s.
 */
db_t *itest_owner_db(const char *application_name);
db_t *itest_app_db(const char *application_name);

/* Run `sql` with text parameters; fail the test unless it succeeds. Caller PQclear()s. */
PGresult *itest_query(PGconn *c, const char *sql, int nparams, const char *const *params);
#define ITEST_Q(c, sql, ...)                                                                       \
	itest_query((c), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})
/* itest_query() for statements whose result is not needed. */
void itest_exec(PGconn *c, const char *sql, int nparams, const char *const *params);
#define ITEST_X(c, sql, ...)                                                                       \
	itest_exec((c), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})
/* The first column of the single row of `sql` as an integer (SQL NULL fails the test). */
int64_t itest_i64(PGconn *c, const char *sql, int nparams, const char *const *params);
#define ITEST_I64(c, sql, ...)                                                                     \
	itest_i64((c), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})
/* The same for a db handle (inside its current transaction); fails the test on error. */
int64_t itest_db_i64(db_t *db, const char *sql, int nparams, const char *const *params);
#define ITEST_DB_I64(db, sql, ...)                                                                 \
	itest_db_i64((db), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})
/* The first column of the single row as a malloc'd string (NULL for SQL NULL). */
char *itest_db_str(db_t *db, const char *sql, int nparams, const char *const *params);
#define ITEST_DB_STR(db, sql, ...)                                                                 \
	itest_db_str((db), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})

/*
 * Run `sql` on a raw connection expecting it to FAIL; returns the SQLSTATE
 * (static buffer, overwritten by the next call). Fails the test when the
 * statement succeeds.
 */
const char *itest_sqlstate(PGconn *c, const char *sql, int nparams, const char *const *params);
#define ITEST_STATE(c, sql, ...)                                                                   \
	itest_sqlstate((c), (sql), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__})

/* "123" into buf, for parameters. */
const char *itest_i64s(char *buf, size_t bufsz, int64_t v);

/* Fixtures, created through an owner connection (the owner is not subject to RLS). */
int64_t itest_create_business(PGconn *owner, const char *label, bool active);
/*
 * A user of business_id (0 with role "system_admin") whose password is
 * `password` (NULL: ITEST_PASSWORD) hashed with auth_password_hash(). The
 * unique email is written to email_out (may be NULL). Returns the id.
 */
int64_t itest_create_user(PGconn *owner, int64_t business_id, const char *role,
			  const char *password, char *email_out, size_t email_outsz);
/* Enable the NULL-terminated list of page keys for business_id. */
void itest_enable_pages(PGconn *owner, int64_t business_id, const char *const *keys);
/* An audit event of business_id (0: none) with the given action. Returns its id. */
int64_t itest_create_audit(PGconn *owner, int64_t business_id, const char *action);

/* The backend pid of the session named application_name (0 when none). */
int itest_backend_pid(PGconn *super, const char *application_name);
/*
 * Terminate that session and wait (bounded) until it is gone and, when
 * victim is not NULL, until victim's socket has seen the server close it
 * (the backend leaves pg_stat_activity a moment before it closes the
 * socket). Reads nothing from victim. Fails the test otherwise.
 */
void itest_kill_session(PGconn *super, const char *application_name, PGconn *victim);
/*
 * Poll (every 10 ms, up to timeout_ms) until `sql` with its parameters
 * yields the integer `want` on connection c. Returns true when it did.
 */
bool itest_wait_i64(PGconn *c, int64_t want, int timeout_ms, const char *sql, int nparams,
		    const char *const *params);

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t itest_now_ms(void);

#endif
