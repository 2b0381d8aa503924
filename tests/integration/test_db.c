/*
 * test_db.c - the db layer (src/db/db.c) against a real server: SQLSTATE
 * mapping, reconnect with re-prepared statements, the reconnect throttle and
 * transaction hygiene (DESIGN §5 "Connections").
 *
 * Every mapping case also reads the raw SQLSTATE of the same statement, so a
 * case proves the mapping of the code it names and not of some other error.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dialflow/err.h"

static const db_stmt_t stmts[] = {
    {"itest_ping", "SELECT 42"},
    {"itest_add", "SELECT $1::integer + 1"},
};

static struct {
	PGconn *owner;
	PGconn *super;
	db_t *db; /* the owner, through the db layer */
	char app[96];
	char parent[96], child[96]; /* per-run tables */
	int next_id;
	/* what one test creates, released by test_teardown even when it fails */
	db_t *tmp;
	char *tmp_conninfo;
	char tmp_dir[64], tmp_link[128];
	arena_t *tmp_arena;
} fx;

static int hook_calls;

static int count_hook(db_t *db, void *arg)
{
	(void)db;
	(*(int *)arg)++;
	return 0;
}

static int group_setup(void **state)
{
	char u[64], sql[512];

	(void)state;
	fx.owner = itest_owner_pg();
	fx.super = itest_super_pg();
	itest_unique(u, sizeof(u));
	snprintf(fx.parent, sizeof(fx.parent), "itest_db_%s", u);
	snprintf(fx.child, sizeof(fx.child), "itest_dbc_%s", u);
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s (id integer PRIMARY KEY, v integer NOT NULL DEFAULT 0 "
		 "CHECK (v >= 0), note text NOT NULL DEFAULT '')",
		 fx.parent);
	itest_exec(fx.owner, sql, 0, NULL);
	snprintf(sql, sizeof(sql),
		 "CREATE TABLE %s (id integer PRIMARY KEY, parent integer REFERENCES %s (id))",
		 fx.child, fx.parent);
	itest_exec(fx.owner, sql, 0, NULL);
	snprintf(fx.app, sizeof(fx.app), "itest_db_%s", u);
	fx.db = itest_owner_db(fx.app);
	fx.next_id = 1;
	return 0;
}

static int group_teardown(void **state)
{
	char sql[256];

	(void)state;
	db_free(fx.db);
	snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s, %s", fx.child, fx.parent);
	itest_exec(fx.owner, sql, 0, NULL);
	PQfinish(fx.owner);
	PQfinish(fx.super);
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	assert_int_equal(db_ensure(fx.db), 0);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	db_rollback(fx.db);
	db_free(fx.tmp);
	fx.tmp = NULL;
	free(fx.tmp_conninfo);
	fx.tmp_conninfo = NULL;
	arena_free(fx.tmp_arena);
	fx.tmp_arena = NULL;
	if (fx.tmp_link[0] != '\0')
		unlink(fx.tmp_link);
	if (fx.tmp_dir[0] != '\0')
		rmdir(fx.tmp_dir);
	fx.tmp_link[0] = fx.tmp_dir[0] = '\0';
	return 0;
}

/* `tmpl` with $T replaced by the per-run parent table and $C by the child table. */
static const char *tsql(char *buf, size_t bufsz, const char *tmpl)
{
	size_t n = 0;

	for (const char *p = tmpl; *p != '\0'; p++) {
		const char *rep = NULL;

		if (p[0] == '$' && p[1] == 'T')
			rep = fx.parent;
		else if (p[0] == '$' && p[1] == 'C')
			rep = fx.child;
		if (rep != NULL) {
			size_t l = strlen(rep);

			assert_true(n + l < bufsz);
			memcpy(buf + n, rep, l);
			n += l;
			p++;
			continue;
		}
		assert_true(n + 1 < bufsz);
		buf[n++] = *p;
	}
	buf[n] = '\0';
	return buf;
}

static int ping(db_t *db)
{
	arena_t *a = arena_new(256);
	int err = 0, v = -1;
	PGresult *r = db_exec(db, a, "itest_ping", 0, NULL, &err);

	if (r != NULL)
		v = (int)db_i64(r, 0, 0);
	arena_free(a);
	return r != NULL ? v : err;
}

typedef struct mapping_case {
	const char *what;
	const char *sql; /* $T: the parent table, $C: the child table */
	const char *params[2];
	int nparams;
	const char *sqlstate;
	int err;
} mapping_case_t;

static void test_sqlstate_mapping(void **state)
{
	char sql[512];
	const mapping_case_t cases[] = {
	    {"unique violation",
	     "INSERT INTO $T (id) VALUES (1)",
	     {NULL},
	     0,
	     "23505",
	     ERR_CONFLICT},
	    {"foreign key violation",
	     "INSERT INTO $C (id, parent) VALUES (1, 999999)",
	     {NULL},
	     0,
	     "23503",
	     ERR_CONFLICT},
	    {"invalid text representation", "SELECT $1::integer", {"abc"}, 1, "22P02", ERR_INVAL},
	    {"numeric out of range", "SELECT $1::integer", {"99999999999"}, 1, "22003", ERR_INVAL},
	    {"division by zero", "SELECT 1 / $1::integer", {"0"}, 1, "22012", ERR_INVAL},
	    {"check violation",
	     "INSERT INTO $T (id, v) VALUES (2, -1)",
	     {NULL},
	     0,
	     "23514",
	     ERR_INVAL},
	    {"not null violation",
	     "INSERT INTO $T (id, note) VALUES (3, NULL)",
	     {NULL},
	     0,
	     "23502",
	     ERR_INVAL},
	    {"syntax error", "SELEC 1", {NULL}, 0, "42601", ERR_INTERNAL},
	    {"undefined table",
	     "SELECT * FROM itest_no_such_table",
	     {NULL},
	     0,
	     "42P01",
	     ERR_INTERNAL},
	};
	arena_t *a = fx.tmp_arena = arena_new(1024);
	unsigned connects = db_connect_count(fx.db);
	int err = 0;

	(void)state;
	snprintf(sql, sizeof(sql), "INSERT INTO %s (id) VALUES (1)", fx.parent);
	itest_exec(fx.owner, sql, 0, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const mapping_case_t *c = &cases[i];

		tsql(sql, sizeof(sql), c->sql);
		err = 0;
		if (db_exec_sql(fx.db, a, sql, c->nparams, c->params, &err) != NULL)
			fail_msg("%s: succeeded: %s", c->what, sql);
		if (err != c->err)
			fail_msg("%s: err %d, want %d", c->what, err, c->err);
		/* the raw SQLSTATE is the one the case is about */
		if (strcmp(itest_sqlstate(db_conn(fx.db), sql, c->nparams, c->params),
			   c->sqlstate) != 0)
			fail_msg("%s: SQLSTATE %s, want %s", c->what,
				 itest_sqlstate(db_conn(fx.db), sql, c->nparams, c->params),
				 c->sqlstate);
		/* a statement error is not a connection error */
		assert_true(db_is_up(fx.db));
	}
	/* an unknown prepared statement is a bug of ours: 500, not 4xx */
	assert_null(db_exec(fx.db, a, "itest_not_registered", 0, NULL, &err));
	assert_int_equal(err, ERR_INTERNAL);
	assert_int_equal(db_connect_count(fx.db), connects);
	assert_int_equal(ping(fx.db), 42);
}

static void test_statement_timeout_is_unavailable(void **state)
{
	arena_t *a = fx.tmp_arena = arena_new(256);
	unsigned connects = db_connect_count(fx.db);
	int err = 0;

	(void)state;
	assert_int_equal(db_begin(fx.db), 0);
	assert_non_null(db_exec_sql(fx.db, a, "SET LOCAL statement_timeout = 50", 0, NULL, &err));
	assert_null(db_exec_sql(fx.db, a, "SELECT pg_sleep(1)", 0, NULL, &err));
	assert_int_equal(err, ERR_UNAVAIL);
	/* the server is fine: the connection stays, nothing reconnects */
	assert_true(db_is_up(fx.db));
	db_rollback(fx.db);
	assert_int_equal(PQtransactionStatus(db_conn(fx.db)), PQTRANS_IDLE);
	assert_int_equal(ping(fx.db), 42);
	assert_int_equal(db_connect_count(fx.db), connects);
	/* and the raw code was 57014 */
	assert_int_equal(db_begin(fx.db), 0);
	assert_non_null(db_exec_sql(fx.db, a, "SET LOCAL statement_timeout = 50", 0, NULL, &err));
	assert_string_equal(itest_sqlstate(db_conn(fx.db), "SELECT pg_sleep(1)", 0, NULL), "57014");
	db_rollback(fx.db);
}

static void test_serialization_failure_is_retry(void **state)
{
	char u[64], app2[96], sql[256], id[16];
	arena_t *a = fx.tmp_arena = arena_new(1024);
	db_t *other;
	PGresult *r;
	int err = 0;

	(void)state;
	snprintf(app2, sizeof(app2), "itest_db2_%s", itest_unique(u, sizeof(u)));
	other = fx.tmp = itest_owner_db(app2);
	snprintf(id, sizeof(id), "%d", 100 + fx.next_id++);
	snprintf(sql, sizeof(sql), "INSERT INTO %s (id, v) VALUES ($1::integer, 0)", fx.parent);
	ITEST_X(fx.owner, sql, id);

	for (int serializable = 0; serializable <= 1; serializable++) {
		/* we take a snapshot, the other session changes the row, we write it */
		assert_int_equal(db_begin(fx.db), 0);
		assert_non_null(db_exec_sql(fx.db, a,
					    serializable ? "SET TRANSACTION ISOLATION LEVEL "
							   "SERIALIZABLE"
							 : "SET TRANSACTION ISOLATION LEVEL "
							   "REPEATABLE READ",
					    0, NULL, &err));
		r = db_exec_sql(fx.db, a,
				tsql(sql, sizeof(sql), "SELECT v FROM $T WHERE id = $1::integer"),
				1, (const char *[]){id}, &err);
		assert_non_null(r);
		r = db_exec_sql(
		    other, a,
		    tsql(sql, sizeof(sql), "UPDATE $T SET v = v + 1 WHERE id = $1::integer"), 1,
		    (const char *[]){id}, &err);
		assert_non_null(r);
		assert_string_equal(PQcmdTuples(r), "1");
		assert_null(db_exec_sql(
		    fx.db, a,
		    tsql(sql, sizeof(sql), "UPDATE $T SET v = v + 10 WHERE id = $1::integer"), 1,
		    (const char *[]){id}, &err));
		assert_int_equal(err, ERR_RETRY);
		assert_true(db_is_up(fx.db));
		db_rollback(fx.db);
	}
	/* the raw code, once: 40001 */
	assert_int_equal(db_begin(fx.db), 0);
	assert_non_null(db_exec_sql(fx.db, a, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", 0,
				    NULL, &err));
	assert_non_null(
	    db_exec_sql(fx.db, a, tsql(sql, sizeof(sql), "SELECT v FROM $T WHERE id = $1::integer"),
			1, (const char *[]){id}, &err));
	assert_non_null(db_exec_sql(
	    other, a, tsql(sql, sizeof(sql), "UPDATE $T SET v = v + 1 WHERE id = $1::integer"), 1,
	    (const char *[]){id}, &err));
	assert_string_equal(itest_sqlstate(db_conn(fx.db),
					   tsql(sql, sizeof(sql),
						"UPDATE $T SET v = v + 10 WHERE id = $1::integer"),
					   1, (const char *[]){id}),
			    "40001");
	db_rollback(fx.db);
	/* both retries lost their writes; the other session's three stayed */
	assert_int_equal(
	    ITEST_I64(fx.owner, tsql(sql, sizeof(sql), "SELECT v FROM $T WHERE id = $1::integer"),
		      id),
	    3);
}

static void test_two_statements_are_refused(void **state)
{
	arena_t *a = fx.tmp_arena = arena_new(256);
	char sql[256];
	PGresult *r;
	int err = 0;

	(void)state;
	snprintf(sql, sizeof(sql), "SELECT 1; DELETE FROM %s", fx.parent);
	assert_null(db_exec_sql(fx.db, a, sql, 0, NULL, &err));
	assert_int_equal(err, ERR_INTERNAL);
	assert_string_equal(itest_sqlstate(db_conn(fx.db), sql, 0, NULL), "42601");
	/* parameters are data: SQL in a parameter comes back as text */
	r = db_exec_sql(fx.db, a, "SELECT $1::text", 1,
			(const char *[]){"1'); DROP TABLE users; --"}, &err);
	assert_non_null(r);
	assert_string_equal(db_str(r, 0, 0), "1'); DROP TABLE users; --");
	assert_true(db_is_up(fx.db));
}

static void test_reconnect_prepares_statements_again(void **state)
{
	char u[64], app[96];
	int before_pid, after_pid;
	db_t *db;
	char *s;

	(void)state;
	snprintf(app, sizeof(app), "itest_reconnect_%s", itest_unique(u, sizeof(u)));
	hook_calls = 0;
	db = fx.tmp = db_new(itest_db_url(), app, NULL, 2, ITEST_STMT_TIMEOUT);
	db_set_connect_hook(db, count_hook, &hook_calls);
	assert_int_equal(db_connect_count(db), 0);
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(db_connect_count(db), 1);
	assert_int_equal(hook_calls, 1);
	assert_int_equal(ping(db), 42);
	before_pid = itest_backend_pid(fx.super, app);
	assert_int_equal(before_pid, PQbackendPID(db_conn(db)));

	/* the server ends our session; we have not noticed yet */
	itest_kill_session(fx.super, app, db_conn(db));
	assert_int_equal(db_begin(db), 0);
	assert_int_equal(db_connect_count(db), 2);
	assert_int_equal(hook_calls, 2);
	after_pid = itest_backend_pid(fx.super, app);
	assert_int_not_equal(after_pid, 0);
	assert_int_not_equal(after_pid, before_pid);
	/* the statements were prepared again on the new session */
	assert_int_equal(ping(db), 42);
	{
		arena_t *a = arena_new(256);
		int err = 0;
		PGresult *r = DB_EXEC(db, a, &err, "itest_add", "41");

		assert_non_null(r);
		assert_int_equal(db_i64(r, 0, 0), 42);
		arena_free(a);
	}
	/* and the session settings were applied again */
	s = itest_db_str(db, "SELECT current_setting('statement_timeout')", 0, NULL);
	assert_string_equal(s, "5s");
	free(s);
	s = itest_db_str(db, "SELECT current_setting('application_name')", 0, NULL);
	assert_string_equal(s, app);
	free(s);
	assert_int_equal(db_commit(db), 0);
}

static void test_ensure_after_the_session_died(void **state)
{
	char u[64], app[96];
	db_t *db;

	(void)state;
	snprintf(app, sizeof(app), "itest_ensure_%s", itest_unique(u, sizeof(u)));
	db = fx.tmp = itest_owner_db(app);
	/* no throttle here: this test is about noticing and recovering */
	db_set_reconnect_interval(db, 0);
	assert_int_equal(ping(db), 42);
	itest_kill_session(fx.super, app, db_conn(db));

	/* the server is reachable but our socket is dead: db_ensure must recover */
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(ping(db), 42);
	assert_int_equal(db_connect_count(db), 2);

	/* a statement that finds the session dead fails as ERR_UNAVAIL, then ensure reconnects */
	itest_kill_session(fx.super, app, db_conn(db));
	assert_int_equal(ping(db), ERR_UNAVAIL);
	assert_false(db_is_up(db));
	assert_int_equal(ping(db), ERR_UNAVAIL); /* and does not touch the dead connection */
	assert_int_equal(db_ensure(db), 0);
	assert_true(db_is_up(db));
	assert_int_equal(ping(db), 42);
	assert_int_equal(db_connect_count(db), 3);
}

static void test_ensure_after_the_session_died_in_a_transaction(void **state)
{
	char u[64], app[96];
	db_t *db;

	(void)state;
	snprintf(app, sizeof(app), "itest_ensure_tx_%s", itest_unique(u, sizeof(u)));
	db = fx.tmp = itest_owner_db(app);
	db_set_reconnect_interval(db, 0);
	/* a caller left a transaction open, and the server ended the session meanwhile
	 * (idle_in_transaction_session_timeout does exactly this) */
	assert_int_equal(db_begin(db), 0);
	itest_kill_session(fx.super, app, db_conn(db));
	assert_int_equal(db_ensure(db), 0);
	assert_true(db_is_up(db));
	assert_int_equal(PQtransactionStatus(db_conn(db)), PQTRANS_IDLE);
	assert_int_equal(ping(db), 42);
	assert_int_equal(db_connect_count(db), 2);
}

static void test_reconnect_is_throttled(void **state)
{
	char target[256], u[64], app[96];
	const char *host = PQhost(fx.owner), *port = PQport(fx.owner);
	arena_t *a = fx.tmp_arena = arena_new(256);
	char *dir = fx.tmp_dir, *link = fx.tmp_link;
	int64_t t0, dt;
	int err = 0;
	db_t *db;

	(void)state;
	if (host == NULL || host[0] != '/')
		fail_msg("this test needs the server's unix socket (host=%s)", host ? host : "");
	if (port == NULL || port[0] == '\0')
		port = "5432";
	snprintf(dir, sizeof(fx.tmp_dir), "/tmp/itest_sock.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(target, sizeof(target), "%s/.s.PGSQL.%s", host, port);
	/* a socket directory with no server in it (yet) */
	fx.tmp_conninfo =
	    itest_conninfo_with(itest_db_url(), "host", dir, "hostaddr", NULL, "port", port, NULL);
	snprintf(app, sizeof(app), "itest_throttle_%s", itest_unique(u, sizeof(u)));
	db = fx.tmp = db_new(fx.tmp_conninfo, app, NULL, 2, ITEST_STMT_TIMEOUT);
	db_set_reconnect_interval(db, 10000);

	/* never connected: everything answers ERR_UNAVAIL without crashing */
	assert_null(db_exec(db, a, "itest_ping", 0, NULL, &err));
	assert_int_equal(err, ERR_UNAVAIL);
	assert_false(db_is_up(db));
	db_rollback(db);

	t0 = itest_now_ms();
	assert_int_equal(db_ensure(db), ERR_UNAVAIL);
	dt = itest_now_ms() - t0;
	assert_true(dt < 200);
	assert_int_equal(db_connect_count(db), 0);

	/* the server becomes reachable at that address, but within the interval ensure
	 * does not even try: it still answers ERR_UNAVAIL, at once */
	snprintf(link, sizeof(fx.tmp_link), "%s/.s.PGSQL.%s", dir, port);
	assert_int_equal(symlink(target, link), 0);
	t0 = itest_now_ms();
	assert_int_equal(db_ensure(db), ERR_UNAVAIL);
	assert_int_equal(db_begin(db), ERR_UNAVAIL);
	dt = itest_now_ms() - t0;
	assert_true(dt < 200);
	assert_int_equal(db_connect_count(db), 0);

	/* once the interval allows it, the next call connects */
	db_set_reconnect_interval(db, 0);
	assert_int_equal(db_ensure(db), 0);
	assert_int_equal(db_connect_count(db), 1);
	assert_int_equal(ping(db), 42);
}

static void test_ensure_rolls_back_leftover_transactions(void **state)
{
	arena_t *a = fx.tmp_arena = arena_new(256);
	char sql[256], id[16];
	int err = 0;

	(void)state;
	/* a failed transaction (PQTRANS_INERROR) */
	assert_int_equal(db_begin(fx.db), 0);
	assert_null(db_exec_sql(fx.db, a, "SELEC 1", 0, NULL, &err));
	assert_int_equal(PQtransactionStatus(db_conn(fx.db)), PQTRANS_INERROR);
	/* 25P02: everything else fails until the rollback */
	assert_null(db_exec(fx.db, a, "itest_ping", 0, NULL, &err));
	assert_int_equal(err, ERR_INTERNAL);
	assert_int_equal(db_ensure(fx.db), 0);
	assert_int_equal(PQtransactionStatus(db_conn(fx.db)), PQTRANS_IDLE);
	assert_int_equal(ping(fx.db), 42);

	/* an open transaction a caller forgot (PQTRANS_INTRANS): rolled back, not committed */
	snprintf(id, sizeof(id), "%d", 200 + fx.next_id++);
	assert_int_equal(db_begin(fx.db), 0);
	assert_non_null(db_exec_sql(
	    fx.db, a, tsql(sql, sizeof(sql), "INSERT INTO $T (id) VALUES ($1::integer)"), 1,
	    (const char *[]){id}, &err));
	assert_int_equal(PQtransactionStatus(db_conn(fx.db)), PQTRANS_INTRANS);
	assert_int_equal(db_ensure(fx.db), 0);
	assert_int_equal(PQtransactionStatus(db_conn(fx.db)), PQTRANS_IDLE);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      tsql(sql, sizeof(sql), "SELECT count(*) FROM $T WHERE id = $1::integer"), id),
	    0);

	/* a committed one is kept */
	assert_int_equal(db_begin(fx.db), 0);
	assert_non_null(db_exec_sql(
	    fx.db, a, tsql(sql, sizeof(sql), "INSERT INTO $T (id) VALUES ($1::integer)"), 1,
	    (const char *[]){id}, &err));
	assert_int_equal(db_commit(fx.db), 0);
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      tsql(sql, sizeof(sql), "SELECT count(*) FROM $T WHERE id = $1::integer"), id),
	    1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_sqlstate_mapping),
	    T(test_statement_timeout_is_unavailable),
	    T(test_serialization_failure_is_retry),
	    T(test_two_statements_are_refused),
	    T(test_reconnect_prepares_statements_again),
	    T(test_ensure_after_the_session_died),
	    T(test_ensure_after_the_session_died_in_a_transaction),
	    T(test_reconnect_is_throttled),
	    T(test_ensure_rolls_back_leftover_transactions),
	};

	itest_init();
	/* before any connect, as every module does */
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	return cmocka_run_group_tests_name("db", tests, group_setup, group_teardown);
}
