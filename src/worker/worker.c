/* worker.c - the worker daemon's main loop: connect, register, heartbeat, stop. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/worker.h"

#define WAKEUP_CHANNEL "dialflow_worker"

static const db_stmt_t stmts[] = {
    {"worker_register",
     "INSERT INTO workers (name, hostname, pid, version) VALUES ($1, $2, $3::integer, $4) "
     "ON CONFLICT (name) DO UPDATE SET last_heartbeat_at = now(), stopped_at = NULL "
     "RETURNING id"},
    {"worker_heartbeat", "UPDATE workers SET last_heartbeat_at = now() "
			 "WHERE id = $1::bigint AND stopped_at IS NULL RETURNING id"},
    {"worker_stop", "UPDATE workers SET stopped_at = now() WHERE id = $1::bigint"},
    {"worker_prune", "DELETE FROM workers WHERE coalesce(stopped_at, last_heartbeat_at) "
		     "< now() - interval '1 day'"},
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

typedef struct worker {
	const config_t *cfg;
	db_t *db;
	arena_t *arena;
	char name[256];
	char host[128];
	int64_t id;
} worker_t;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After every (re)connect: register (again) and listen for wake-ups. */
static int on_connect(db_t *db, void *arg)
{
	worker_t *w = arg;
	char pid[16];
	PGresult *r;
	int err;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	r = DB_EXEC(db, w->arena, &err, "worker_register", w->name, w->host, pid, PACKAGE_VERSION);
	if (r == NULL)
		return -1;
	w->id = db_i64(r, 0, 0);
	if (db_exec_sql(db, w->arena, "LISTEN " WAKEUP_CHANNEL, 0, NULL, &err) == NULL)
		return -1;
	(void)db_exec(db, w->arena, "worker_prune", 0, NULL, &err);
	log_info("worker", "registered id=%lld name=%s", (long long)w->id, w->name);
	return 0;
}

static void heartbeat(worker_t *w)
{
	int err;
	PGresult *r;

	if (db_ensure(w->db) < 0)
		return;
	r = DB_EXEC(w->db, w->arena, &err, "worker_heartbeat", db_i64s(w->arena, w->id));
	if (r != NULL && PQntuples(r) == 0) {
		/* Our row was marked stopped or pruned: register again. */
		(void)on_connect(w->db, w);
	}
}

/* Consume queued notifications (wake-up hints carry no data). Returns how many. */
static int drain_notifies(PGconn *c)
{
	PGnotify *n;
	int count = 0;

	while ((n = PQnotifies(c)) != NULL) {
		PQfreemem(n);
		count++;
	}
	return count;
}

/* Sleep until the deadline, a notification, or a signal. */
static void wait_until(worker_t *w, int64_t deadline)
{
	PGconn *c = db_conn(w->db);
	int64_t left = deadline - now_ms();
	struct pollfd pfd;

	if (left <= 0)
		return;
	/* db_ensure() may already have read a notification off the socket. */
	if (c != NULL && drain_notifies(c) > 0)
		return;
	if (c == NULL || PQsocket(c) < 0 || !db_is_up(w->db)) {
		struct timespec ts = {left / 1000, (left % 1000) * 1000000L};

		nanosleep(&ts, NULL); /* EINTR on SIGTERM is what we want */
		return;
	}
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)left) > 0) {
		if (PQconsumeInput(c) == 0)
			return; /* broken: the next db_ensure reconnects */
		(void)drain_notifies(c);
	}
}

int worker_run(const config_t *cfg)
{
	worker_t w;
	struct sigaction sa;
	int64_t next_beat = 0;
	int rc = -1;

	memset(&w, 0, sizeof(w));
	w.cfg = cfg;
	w.arena = arena_new(16384);
	if (gethostname(w.host, sizeof(w.host) - 1) != 0)
		snprintf(w.host, sizeof(w.host), "unknown");
	snprintf(w.name, sizeof(w.name), "%s:%d:%lld", w.host, (int)getpid(),
		 (long long)time(NULL));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	w.db = db_new(cfg->database_url, "dialflow-worker", cfg->db_role, cfg->db_connect_timeout,
		      cfg->db_statement_timeout_ms);
	db_set_connect_hook(w.db, on_connect, &w);
	db_set_reconnect_interval(w.db, 1000);
	log_info("worker", "starting name=%s heartbeat_ms=%d", w.name, cfg->worker_heartbeat_ms);

	while (!stopping) {
		if (now_ms() >= next_beat) {
			heartbeat(&w);
			next_beat = now_ms() + cfg->worker_heartbeat_ms;
		}
		arena_reset(w.arena);
		wait_until(&w, next_beat);
	}
	log_info("worker", "stopping name=%s", w.name);
	if (w.id > 0 && db_ensure(w.db) == 0) {
		int err;

		(void)DB_EXEC(w.db, w.arena, &err, "worker_stop", db_i64s(w.arena, w.id));
	}
	rc = 0;
	db_free(w.db);
	arena_free(w.arena);
	return rc;
}
