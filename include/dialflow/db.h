/*
 * db.h - one PostgreSQL connection per process, prepared statements,
 * transactions, SQLSTATE mapping and tenant scoping.
 *
 * Modules register their statements (a static {name, sql} table) before the
 * first connect; every (re)connect prepares them all again, so a database
 * restart is invisible to callers except as ERR_UNAVAIL while it lasts.
 * Reconnect attempts are throttled so a dead database costs a request
 * microseconds, not the connect timeout, and the API answers 503 at once.
 */
#ifndef DIALFLOW_DB_H
#define DIALFLOW_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/config.h"

typedef struct db db_t;

typedef struct db_stmt {
	const char *name;
	const char *sql;
} db_stmt_t;

/* Hook run after every successful (re)connect, after the statements are prepared. */
typedef int (*db_connect_hook_fn)(db_t *db, void *arg);

/*
 * Register `n` statements (kept by pointer: use static tables). Call before
 * db_connect(); later calls prepare on the next reconnect.
 */
void db_register(const db_stmt_t *stmts, size_t n);

/*
 * A handle for `conninfo`. application_name names the process in
 * pg_stat_activity; role (may be NULL or "") is taken with SET ROLE at every
 * connect. Does not connect yet. Caller frees with db_free().
 */
db_t *db_new(const char *conninfo, const char *application_name, const char *role,
	     int connect_timeout_s, int statement_timeout_ms);
void db_free(db_t *db);
void db_set_connect_hook(db_t *db, db_connect_hook_fn fn, void *arg);
/* Minimum milliseconds between two reconnect attempts (default 250). */
void db_set_reconnect_interval(db_t *db, int ms);

/*
 * Make sure the connection is up: reconnect (throttled) when it is bad,
 * roll back a leftover failed transaction. Returns 0 or ERR_UNAVAIL.
 */
int db_ensure(db_t *db);
/* The raw connection (for LISTEN/NOTIFY loops); may be NULL or bad. */
PGconn *db_conn(db_t *db);
/* Whether the connection is currently believed usable. */
bool db_is_up(const db_t *db);
/* Count of successful connects so far (tests observe reconnects). */
unsigned db_connect_count(const db_t *db);

/*
 * Execute registered statement `name` with text parameters (NULL = SQL NULL).
 * Returns a result tied to the arena (cleared at reset), or NULL with *err set
 * to an ERR_* code. SQLSTATE mapping: 23505/23503 -> ERR_CONFLICT,
 * 22xxx/23514/23502 -> ERR_INVAL, 40001/40P01 -> ERR_RETRY,
 * 57014/57P0x/08xxx/lost connection -> ERR_UNAVAIL, else ERR_INTERNAL.
 * The server's message is logged with the SQLSTATE, never returned.
 */
PGresult *db_exec(db_t *db, arena_t *a, const char *name, int nparams, const char *const *params,
		  int *err);
/* Execute ad-hoc SQL with parameters (admin CLI, migrations, tests). Same contract as db_exec. */
PGresult *db_exec_sql(db_t *db, arena_t *a, const char *sql, int nparams, const char *const *params,
		      int *err);

#define DB_NARGS(...) ((int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))
/* db_exec with an inline parameter list: DB_EXEC(db, a, &err, "stmt", p1, p2). */
#define DB_EXEC(db, a, err, name, ...)                                                             \
	db_exec((db), (a), (name), DB_NARGS(__VA_ARGS__), (const char *[]){__VA_ARGS__}, (err))

/*
 * BEGIN, retried once on a fresh connection when the old one turns out to be
 * dead (the common case right after a database restart). Returns 0 or ERR_*.
 */
int db_begin(db_t *db);
int db_commit(db_t *db);
/* Roll back if a transaction is open; never fails loudly. */
void db_rollback(db_t *db);

/*
 * Scope the current transaction to tenant `business_id` (set_config(...,
 * true)) for row-level security; 0 scopes it to no tenant. system_admin
 * makes every tenant visible (the system_admin's own cross-tenant views).
 */
int db_set_tenant(db_t *db, arena_t *a, int64_t business_id, bool system_admin);

/* Value helpers for results: NULL-aware. */
const char *db_str(const PGresult *r, int row, int col); /* NULL for SQL NULL */
int64_t db_i64(const PGresult *r, int row, int col);	 /* 0 for SQL NULL    */
bool db_bool(const PGresult *r, int row, int col);	 /* 't' -> true       */
bool db_isnull(const PGresult *r, int row, int col);
/* Format an int64 into the arena, for parameters. */
const char *db_i64s(arena_t *a, int64_t v);

#endif
