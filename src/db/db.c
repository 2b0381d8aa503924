/*
 * db.c - the process's PostgreSQL connection (DESIGN §5 "Connections").
 *
 * Open lazily after fork, prepare every registered statement on every
 * (re)connect, classify failures by connection status first and SQLSTATE
 * second, and throttle reconnect attempts so a dead database answers
 * ERR_UNAVAIL in microseconds instead of blocking a request.
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"

#define MAX_TABLES 64

static struct {
	const db_stmt_t *stmts;
	size_t n;
} registry[MAX_TABLES];
static size_t nregistry;

static const db_stmt_t db_internal[] = {
    {"db_set_tenant", "SELECT set_config('app.business_id', $1, true), "
		      "set_config('app.system_admin', $2, true)"},
    {"db_set_role", "SELECT set_config('role', $1, false)"},
};

struct db {
	char *conninfo;
	char *app_name;
	char *role;
	int connect_timeout;
	int statement_timeout;
	PGconn *conn;
	bool up;
	int64_t last_attempt_ms;
	int reconnect_ms;
	unsigned connects;
	db_connect_hook_fn hook;
	void *hook_arg;
};

void db_register(const db_stmt_t *stmts, size_t n)
{
	for (size_t i = 0; i < nregistry; i++)
		if (registry[i].stmts == stmts)
			return;
	if (nregistry >= MAX_TABLES) {
		log_error("db", "statement registry full");
		abort();
	}
	registry[nregistry].stmts = stmts;
	registry[nregistry].n = n;
	nregistry++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void notice_cb(void *arg, const char *msg)
{
	char clean[512];

	(void)arg;
	log_debug("db", "notice=%s", log_sanitize(msg, clean, sizeof(clean)));
}

db_t *db_new(const char *conninfo, const char *application_name, const char *role,
	     int connect_timeout_s, int statement_timeout_ms)
{
	db_t *db = calloc(1, sizeof(*db));

	if (db == NULL) {
		log_error("db", "out of memory");
		abort();
	}
	db->conninfo = strdup(conninfo);
	db->app_name = strdup(application_name ? application_name : "dialflow");
	db->role = strdup(role ? role : "");
	if (db->conninfo == NULL || db->app_name == NULL || db->role == NULL) {
		log_error("db", "out of memory");
		abort();
	}
	db->connect_timeout = connect_timeout_s > 0 ? connect_timeout_s : 2;
	db->statement_timeout = statement_timeout_ms;
	db->reconnect_ms = 250;
	db->last_attempt_ms = INT64_MIN / 2;
	db_register(db_internal, sizeof(db_internal) / sizeof(db_internal[0]));
	return db;
}

void db_free(db_t *db)
{
	if (db == NULL)
		return;
	PQfinish(db->conn);
	free(db->conninfo);
	free(db->app_name);
	free(db->role);
	free(db);
}

void db_set_connect_hook(db_t *db, db_connect_hook_fn fn, void *arg)
{
	db->hook = fn;
	db->hook_arg = arg;
}

void db_set_reconnect_interval(db_t *db, int ms)
{
	db->reconnect_ms = ms;
}

PGconn *db_conn(db_t *db)
{
	return db->conn;
}

bool db_is_up(const db_t *db)
{
	return db->up && db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

unsigned db_connect_count(const db_t *db)
{
	return db->connects;
}

static void mark_down(db_t *db)
{
	if (db->up)
		log_warn("db", "connection lost");
	db->up = false;
}

/* Log a failed result's SQLSTATE and primary message; never the parameters. */
static void log_failure(const char *what, const PGconn *conn, const PGresult *r)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	char clean[300];

	if (msg == NULL)
		msg = PQerrorMessage(conn);
	log_warn("db", "stmt=%s sqlstate=%s error=\"%s\"", what, state ? state : "-",
		 log_sanitize(msg, clean, sizeof(clean)));
}

static int prepare_all(db_t *db)
{
	for (size_t t = 0; t < nregistry; t++) {
		for (size_t i = 0; i < registry[t].n; i++) {
			const db_stmt_t *s = &registry[t].stmts[i];
			PGresult *r = PQprepare(db->conn, s->name, s->sql, 0, NULL);

			if (PQresultStatus(r) != PGRES_COMMAND_OK) {
				log_failure(s->name, db->conn, r);
				PQclear(r);
				return -1;
			}
			PQclear(r);
		}
	}
	return 0;
}

static int do_connect(db_t *db)
{
	char ct[16], opts[160];
	const char *keys[] = {"dbname", "application_name", "connect_timeout", "options", NULL};
	const char *vals[] = {db->conninfo, db->app_name, ct, opts, NULL};
	PGresult *r;

	db->last_attempt_ms = now_ms();
	PQfinish(db->conn);
	db->conn = NULL;
	db->up = false;
	snprintf(ct, sizeof(ct), "%d", db->connect_timeout);
	snprintf(opts, sizeof(opts),
		 "-c statement_timeout=%d -c idle_in_transaction_session_timeout=%d",
		 db->statement_timeout, db->statement_timeout * 2);
	db->conn = PQconnectdbParams(keys, vals, 1);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		char clean[300];

		log_warn("db", "connect failed error=\"%s\"",
			 log_sanitize(db->conn ? PQerrorMessage(db->conn) : "out of memory", clean,
				      sizeof(clean)));
		goto fail;
	}
	PQsetNoticeProcessor(db->conn, notice_cb, NULL);
	if (db->role[0] != '\0') {
		const char *p[1] = {db->role};

		r = PQexecParams(db->conn, "SELECT set_config('role', $1, false)", 1, NULL, p, NULL,
				 NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_failure("set_role", db->conn, r);
			PQclear(r);
			goto fail;
		}
		PQclear(r);
	}
	if (prepare_all(db) < 0)
		goto fail;
	db->up = true;
	db->connects++;
	if (db->hook != NULL && db->hook(db, db->hook_arg) < 0) {
		db->up = false;
		goto fail;
	}
	if (db->connects > 1)
		log_info("db", "reconnected, statements prepared again (connects=%u)",
			 db->connects);
	return 0;
fail:
	PQfinish(db->conn);
	db->conn = NULL;
	db->up = false;
	return ERR_UNAVAIL;
}

/* Reconnect unless the last attempt was too recent (force bypasses the throttle). */
static int reconnect(db_t *db, bool force)
{
	if (!force && now_ms() - db->last_attempt_ms < db->reconnect_ms)
		return ERR_UNAVAIL;
	return do_connect(db);
}

/* Whether the server closed our idle session: read what waits on the socket
 * without blocking (a terminated backend leaves a FATAL message, then EOF). */
static bool idle_conn_dead(PGconn *c)
{
	struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};

	for (int i = 0; i < 4 && poll(&p, 1, 0) > 0; i++)
		if (PQconsumeInput(c) == 0 || PQstatus(c) != CONNECTION_OK)
			return true;
	return false;
}

int db_ensure(db_t *db)
{
	/*
	 * A session the server ended (restart, pg_terminate_backend, a timeout)
	 * left its FATAL message and EOF on the socket. Reading them, which
	 * never blocks, shows the connection dead here rather than to the
	 * caller's first statement.
	 */
	bool lost = db->conn != NULL && db->up &&
		    (PQstatus(db->conn) != CONNECTION_OK ||
		     (PQtransactionStatus(db->conn) == PQTRANS_IDLE && idle_conn_dead(db->conn)));

	if (lost)
		mark_down(db);
	if (db->conn == NULL || !db->up || PQstatus(db->conn) != CONNECTION_OK) {
		/* a connection that was up gets one immediate try; retries are throttled */
		if (reconnect(db, lost) < 0)
			return ERR_UNAVAIL;
	}
	switch (PQtransactionStatus(db->conn)) {
	case PQTRANS_IDLE:
		return 0;
	case PQTRANS_INTRANS:
	case PQTRANS_INERROR:
		db_rollback(db);
		/* the ROLLBACK is what finds a session that died inside its transaction */
		return db_is_up(db) ? 0 : reconnect(db, true);
	default:
		/* ACTIVE or UNKNOWN: the connection is in no state to reuse. */
		mark_down(db);
		return reconnect(db, true);
	}
}

static int classify(db_t *db, const PGresult *r)
{
	const char *s;

	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
		mark_down(db);
		return ERR_UNAVAIL;
	}
	s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	if (s == NULL)
		return ERR_INTERNAL;
	if (strcmp(s, "23505") == 0 || strcmp(s, "23503") == 0)
		return ERR_CONFLICT;
	if (strncmp(s, "22", 2) == 0 || strcmp(s, "23514") == 0 || strcmp(s, "23502") == 0)
		return ERR_INVAL;
	if (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0)
		return ERR_RETRY;
	if (strcmp(s, "57014") == 0 || strncmp(s, "57P", 3) == 0 || strncmp(s, "08", 2) == 0 ||
	    strcmp(s, "53300") == 0) {
		if (strncmp(s, "57P", 3) == 0 || strncmp(s, "08", 2) == 0)
			mark_down(db);
		return ERR_UNAVAIL;
	}
	return ERR_INTERNAL;
}

static void clear_cb(void *p)
{
	PQclear(p);
}

static PGresult *finish(db_t *db, arena_t *a, const char *what, PGresult *r, int *err)
{
	ExecStatusType st = PQresultStatus(r);

	if (r != NULL && (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)) {
		*err = 0;
		arena_on_reset(a, clear_cb, r);
		return r;
	}
	*err = classify(db, r);
	if (*err == ERR_INVAL || *err == ERR_CONFLICT)
		log_debug("db", "stmt=%s sqlstate=%s", what,
			  r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : "-");
	else
		log_failure(what, db->conn, r);
	PQclear(r);
	return NULL;
}

PGresult *db_exec(db_t *db, arena_t *a, const char *name, int nparams, const char *const *params,
		  int *err)
{
	if (db->conn == NULL || !db->up) {
		*err = ERR_UNAVAIL;
		return NULL;
	}
	return finish(db, a, name, PQexecPrepared(db->conn, name, nparams, params, NULL, NULL, 0),
		      err);
}

PGresult *db_exec_sql(db_t *db, arena_t *a, const char *sql, int nparams, const char *const *params,
		      int *err)
{
	if (db->conn == NULL || !db->up) {
		*err = ERR_UNAVAIL;
		return NULL;
	}
	return finish(db, a, "adhoc",
		      PQexecParams(db->conn, sql, nparams, NULL, params, NULL, NULL, 0), err);
}

static int simple(db_t *db, const char *sql)
{
	PGresult *r;
	int rc = 0;

	if (db->conn == NULL)
		return ERR_UNAVAIL;
	r = PQexec(db->conn, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = classify(db, r);
		log_failure(sql, db->conn, r);
	}
	PQclear(r);
	return rc;
}

int db_begin(db_t *db)
{
	int rc = db_ensure(db);

	if (rc < 0)
		return rc;
	rc = simple(db, "BEGIN");
	if (rc == ERR_UNAVAIL && !db_is_up(db)) {
		/* The server went away since our last query (a restart): one fresh try. */
		if (reconnect(db, true) < 0)
			return ERR_UNAVAIL;
		rc = simple(db, "BEGIN");
	}
	return rc;
}

int db_commit(db_t *db)
{
	return simple(db, "COMMIT");
}

void db_rollback(db_t *db)
{
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return;
	if (PQtransactionStatus(db->conn) == PQTRANS_IDLE)
		return;
	(void)simple(db, "ROLLBACK");
}

int db_set_tenant(db_t *db, arena_t *a, int64_t business_id, bool system_admin)
{
	int err;
	const char *bid = business_id > 0 ? db_i64s(a, business_id) : "";

	if (DB_EXEC(db, a, &err, "db_set_tenant", bid, system_admin ? "on" : "off") == NULL)
		return err;
	return 0;
}

bool db_isnull(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) != 0;
}

const char *db_str(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t db_i64(const PGresult *r, int row, int col)
{
	if (PQgetisnull(r, row, col))
		return 0;
	return (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

bool db_bool(const PGresult *r, int row, int col)
{
	return !PQgetisnull(r, row, col) && PQgetvalue(r, row, col)[0] == 't';
}

const char *db_i64s(arena_t *a, int64_t v)
{
	return arena_sprintf(a, "%" PRId64, v);
}
