/*
 * loop.c - the worker daemon's main loop (see worker.h, worker_internal.h).
 *
 * One thread and one connection. Each turn of the loop: make sure the
 * connection is up (the connect hook registers the worker and LISTENs again),
 * read NOTIFY hints into flags, write provider outcomes kept while the
 * database was away, heartbeat, hang up force-cancelled calls, claim runs,
 * fill free call slots, finish runs, drain a batch of background jobs, and
 * every dispatch_poll_ms run the sweeps and treat everything as due (the
 * fallback for lost notifications). Then sleep on the socket until the next
 * timer or notification.
 *
 * NOTIFY payloads on QUEUE_CHANNEL are hints only: 'jobs' (background jobs),
 * 'run:<id>' (a new run), 'slot:<business>' (a call ended),
 * 'force_cancel:<run>' (hang-ups requested), 'amd:<job>' (an answering-machine
 * action requested), 'outbox' (WhatsApp messages queued).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/outbound.h"
#include "dialflow/queue.h"
#include "dialflow/strnum.h"
#include "dialflow/worker.h"
#include "worker_internal.h"

volatile sig_atomic_t worker_stopping;

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

static void on_term(int sig)
{
	(void)sig;
	worker_stopping = 1;
}

int64_t worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void mark_all_due(worker_t *w)
{
	w->want_claim = true;
	w->want_hangup = true;
	w->want_amd = true;
	w->want_queue = true;
	w->want_outbox = true;
	for (int i = 0; i < w->nleases; i++)
		w->leases[i].dirty = true;
}

/* After every (re)connect: register (again), listen, and assume every hint was missed. */
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
	if (db_exec_sql(db, w->arena, "LISTEN " QUEUE_CHANNEL, 0, NULL, &err) == NULL)
		return -1;
	(void)db_exec(db, w->arena, "worker_prune", 0, NULL, &err);
	mark_all_due(w);
	log_info(WORKER_COMPONENT, "registered id=%lld name=%s", (long long)w->id, w->name);
	return 0;
}

static void heartbeat_worker(worker_t *w)
{
	int err;
	PGresult *r = DB_EXEC(w->db, w->arena, &err, "worker_heartbeat", db_i64s(w->arena, w->id));

	if (r != NULL && PQntuples(r) == 0)
		(void)on_connect(w->db, w); /* our row was marked stopped or pruned */
}

/* One hint. Unknown payloads are ignored: the poll covers whatever they meant. */
static void hint(worker_t *w, const char *payload)
{
	int64_t id;

	if (strcmp(payload, "jobs") == 0) {
		w->want_queue = true;
	} else if (strncmp(payload, "run:", 4) == 0) {
		w->want_claim = true;
	} else if (strcmp(payload, "outbox") == 0) {
		w->want_outbox = true;
	} else if (strncmp(payload, "force_cancel:", 13) == 0) {
		w->want_hangup = true;
	} else if (strncmp(payload, "amd:", 4) == 0) {
		w->want_amd = true;
	} else if (strncmp(payload, "slot:", 5) == 0 &&
		   strnum_i64(payload + 5, 1, INT64_MAX, &id) == 0) {
		for (int i = 0; i < w->nleases; i++)
			if (w->leases[i].business_id == id)
				w->leases[i].dirty = true;
	}
}

int worker_drain_notifies(worker_t *w)
{
	PGconn *c = db_conn(w->db);
	PGnotify *n;
	int count = 0;

	if (c == NULL)
		return 0;
	while ((n = PQnotifies(c)) != NULL) {
		hint(w, n->extra != NULL ? n->extra : "");
		PQfreemem(n);
		count++;
	}
	return count;
}

/* Sleep until the deadline, a notification, or a signal. */
static void wait_until(worker_t *w, int64_t deadline)
{
	PGconn *c = db_conn(w->db);
	int64_t left = deadline - worker_now_ms();
	struct pollfd pfd;

	if (worker_drain_notifies(w) > 0 || left <= 0 || worker_stopping)
		return;
	if (c == NULL || PQsocket(c) < 0 || !db_is_up(w->db)) {
		struct timespec ts = {left / 1000, (left % 1000) * 1000000L};

		nanosleep(&ts, NULL); /* EINTR on SIGTERM is what we want */
		return;
	}
	pfd.fd = PQsocket(c);
	pfd.events = POLLIN;
	if (poll(&pfd, 1, (int)(left > 60000 ? 60000 : left)) > 0) {
		if (PQconsumeInput(c) == 0)
			return; /* broken: the next db_ensure reconnects */
		(void)worker_drain_notifies(w);
	}
}

/* Dispatch and settle every held run that has something to do. */
static void drive_runs(worker_t *w)
{
	int64_t ids[WORKER_MAX_RUNS];
	int n = w->nleases;

	/* by id: dispatching may heartbeat, and a heartbeat may drop or move leases */
	for (int i = 0; i < n; i++)
		ids[i] = w->leases[i].run_id;
	for (int i = 0; i < n && !worker_stopping; i++) {
		worker_lease_t *l = lease_find(w, ids[i]);

		if (l == NULL || !l->dirty || worker_now_ms() < l->not_before)
			continue;
		(void)dispatch_run(w, l);
		l = lease_find(w, ids[i]);
		if (l != NULL && lease_settle(w, l) == 1)
			lease_drop(w, (int)(l - w->leases));
	}
}

/* When the loop next has something to do (now, if anything is pending). */
static int64_t next_deadline(const worker_t *w, int64_t t)
{
	if (w->want_hangup || w->want_amd || w->want_queue ||
	    (w->want_outbox && w->wa_graph != NULL))
		return 0;
	if (w->wa_graph != NULL && w->outbox_due > 0 && w->outbox_due < t)
		t = w->outbox_due; /* a send retry falls due */
	if (w->provider != NULL && w->want_claim && lease_claim_due(w) < t)
		t = lease_claim_due(w);
	for (int i = 0; i < w->nleases; i++) {
		const worker_lease_t *l = &w->leases[i];

		if (l->dirty && l->not_before < t)
			t = l->not_before;
	}
	return t;
}

/* SIGTERM: nothing new starts; write what is pending (for up to the grace period), release. */
static void shut_down(worker_t *w)
{
	int64_t grace_end = worker_now_ms() + (int64_t)w->cfg->shutdown_grace_s * 1000;
	int err;

	log_info(WORKER_COMPONENT, "stopping name=%s runs=%d pending=%d", w->name, w->nleases,
		 w->npending);
	for (;;) {
		arena_reset(w->arena);
		if (db_ensure(w->db) == 0) {
			dispatch_flush_pending(w);
			if (w->npending == 0)
				break;
		}
		if (worker_now_ms() >= grace_end)
			break;
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (w->npending > 0)
		log_error(WORKER_COMPONENT,
			  "stopping with %d dial outcomes unwritten: the sweep fails those jobs",
			  w->npending);
	if (db_is_up(w->db)) {
		(void)cancel_hangups(w);
		lease_release_all(w);
		if (w->id > 0)
			(void)DB_EXEC(w->db, w->arena, &err, "worker_stop",
				      db_i64s(w->arena, w->id));
	}
	arena_reset(w->arena);
}

/* Returns 0, or -1 when the configuration cannot work (logged). */
static int setup(worker_t *w, const config_t *cfg, provider_t *provider)
{
	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	w->provider = provider;
	w->arena = arena_new(16384);
	if (gethostname(w->host, sizeof(w->host) - 1) != 0)
		snprintf(w->host, sizeof(w->host), "unknown");
	snprintf(w->name, sizeof(w->name), "%s:%d:%lld", w->host, (int)getpid(),
		 (long long)time(NULL));
	snprintf(w->owner, sizeof(w->owner), "%s:%d", w->host, (int)getpid());
	/* a heartbeat slower than the stale threshold would let live runs be taken over */
	w->run_beat_ms = cfg->run_heartbeat_ms;
	if (w->run_beat_ms > cfg->run_stale_s * 1000 / 3) {
		w->run_beat_ms = cfg->run_stale_s * 1000 / 3;
		log_warn(WORKER_COMPONENT,
			 "DIALFLOW_RUN_HEARTBEAT_MS=%d is too slow for DIALFLOW_RUN_STALE_S=%d: "
			 "heartbeating every %d ms",
			 cfg->run_heartbeat_ms, cfg->run_stale_s, w->run_beat_ms);
	}
	snprintf(w->account, sizeof(w->account), "%s",
		 cfg->twilio_account_sid && cfg->twilio_account_sid[0] ? cfg->twilio_account_sid
								       : "default");
	/* the very strings the webhooks verify Twilio's signatures against */
	if (twilio_webhook_url(cfg->public_url, TWILIO_VOICE_PATH, w->answer_url,
			       sizeof(w->answer_url)) < 0 ||
	    twilio_webhook_url(cfg->public_url, TWILIO_STATUS_PATH, w->status_url,
			       sizeof(w->status_url)) < 0 ||
	    twilio_webhook_url(cfg->public_url, TWILIO_AMD_PATH, w->amd_url, sizeof(w->amd_url)) <
		0 ||
	    twilio_webhook_url(cfg->public_url, TWILIO_VOICEMAIL_PATH, w->voicemail_url,
			       sizeof(w->voicemail_url)) < 0) {
		log_error(WORKER_COMPONENT, "DIALFLOW_PUBLIC_URL is missing or too long");
		return -1;
	}
	return 0;
}

int worker_run_with(const config_t *cfg, provider_t *provider)
{
	worker_t *w = calloc(1, sizeof(*w));
	struct sigaction sa;
	char app[64];
	int64_t next_beat = 0, next_run_beat = 0, next_poll = 0;
	unsigned connects = 0;

	if (w == NULL) {
		log_error(WORKER_COMPONENT, "out of memory");
		return -1;
	}
	if (setup(w, cfg, provider) < 0) {
		arena_free(w->arena);
		free(w);
		return -1;
	}
	(void)outbox_init(w); /* without a Graph client the outbox is left to other workers */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
	outbound_events_register(); /* and the queue's statements */
	lease_register();
	dispatch_register();
	pace_register();
	cancel_register();
	amd_register();
	recovery_register();
	outbox_register();
	maintenance_register();
	snprintf(app, sizeof(app), "dialflow-worker:%d", (int)getpid());
	w->db = db_new(cfg->database_url, app, cfg->db_role, cfg->db_connect_timeout,
		       cfg->db_statement_timeout_ms);
	db_set_connect_hook(w->db, on_connect, w);
	db_set_reconnect_interval(w->db, 500);
	if (provider == NULL)
		log_warn(WORKER_COMPONENT, "no telephony provider: runs are left to other workers");
	log_info(WORKER_COMPONENT,
		 "starting name=%s provider=%s run_heartbeat_ms=%d run_stale_s=%d "
		 "calls_per_second=%d",
		 w->name, provider ? provider->ops->name : "none", w->run_beat_ms, cfg->run_stale_s,
		 cfg->calls_per_second);

	while (!worker_stopping) {
		int64_t now;
		int claimed = 0;

		arena_reset(w->arena);
		if (db_ensure(w->db) < 0) {
			wait_until(w, worker_now_ms() + 250);
			continue;
		}
		if (db_connect_count(w->db) != connects) {
			connects = db_connect_count(w->db);
			next_poll = 0;
		}
		(void)worker_drain_notifies(w);
		dispatch_flush_pending(w);
		now = worker_now_ms();
		if (now >= next_beat) {
			heartbeat_worker(w);
			next_beat = now + cfg->worker_heartbeat_ms;
		}
		if (now >= next_run_beat) {
			(void)lease_heartbeat(w);
			next_run_beat = now + w->run_beat_ms;
		}
		if (now >= next_poll) {
			mark_all_due(w);
			recovery_sweep(w);
			outbox_sweep(w);
			next_poll = now + cfg->dispatch_poll_ms;
		}
		(void)cancel_hangups(w);
		if (w->want_amd)
			(void)amd_actions(w);
		/* without a provider, runs are left to the workers that can dial them */
		if (w->provider != NULL && w->want_claim && !worker_stopping &&
		    worker_now_ms() >= lease_claim_due(w))
			(void)lease_claim(w);
		drive_runs(w);
		if (w->want_queue && !worker_stopping) {
			w->want_queue = false;
			if (queue_run_batch(w->db, w->arena, w->owner, cfg->queue_batch,
					    cfg->queue_lease_s, &worker_stopping, &claimed) == 0)
				w->want_queue = claimed == cfg->queue_batch;
		}
		outbox_drain(w);
		now = worker_now_ms();
		{
			int64_t t = next_beat < next_run_beat ? next_beat : next_run_beat;

			t = t < next_poll ? t : next_poll;
			wait_until(w, next_deadline(w, t));
		}
	}
	shut_down(w);
	log_info(WORKER_COMPONENT, "stopped name=%s", w->name);
	db_free(w->db);
	outbox_free(w);
	arena_free(w->arena);
	free(w);
	return 0;
}
