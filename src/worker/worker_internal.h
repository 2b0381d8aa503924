/*
 * worker_internal.h - the state the worker's modules share (src/worker/).
 *
 *   loop.c      worker_run_with(): signals, registration, LISTEN, wake-ups, shutdown
 *   worker.c    worker_run(): the Twilio provider from the configuration
 *   lease.c     run leases: claim, takeover recovery, heartbeat, completion, release
 *   dispatch.c  filling free call slots: the claim transaction, then the provider
 *   pace.c      the per-account calls-per-second pace, shared through the database
 *   cancel.c    force-cancel hang-ups
 *   amd.c       answering-machine actions: leave the voicemail (redirect) or hang up
 *   recovery.c  sweeps: call_log rows without a call id, reconciliation, queue rescue
 *
 * One thread, one database connection (which also LISTENs). Nothing here is
 * ever called from a signal handler; the handler only sets worker_stopping.
 */
#ifndef DIALFLOW_WORKER_INTERNAL_H
#define DIALFLOW_WORKER_INTERNAL_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/config.h"
#include "dialflow/db.h"
#include "dialflow/provider.h"

#define WORKER_COMPONENT "worker"
/* Runs one worker drives at once; more stay for other workers (or later). */
#define WORKER_MAX_RUNS 64
/* Provider outcomes kept in memory while the database is away. */
#define WORKER_MAX_PENDING 256
/* Delay before a job whose dial failed transiently (nothing was placed) is tried again. */
#define WORKER_TRANSIENT_RETRY_S 5
/* A hang-up attempt holds its call this long before another worker may retry it. */
#define WORKER_HANGUP_LEASE_S 5
/* Key space of the per-business dispatch lock, pg_advisory_xact_lock(NS, business): "dfdl". */
#define WORKER_DISPATCH_LOCK_NS 1684431980

/* A run this worker drives under its lease. */
typedef struct worker_lease {
	int64_t run_id;
	int64_t business_id;
	char token[40];	    /* lease_token (uuid text)                      */
	int64_t beat_ok_ms; /* last heartbeat that found the lease ours     */
	int64_t not_before; /* no dispatch before (pace), monotonic ms      */
	bool dirty;	    /* dispatch and completion check due            */
	bool dnc_checked;   /* do-not-call jobs closed since the claim      */
} worker_lease_t;

/* A provider outcome not yet written (the database was down), or a claim to undo. */
typedef enum {
	PENDING_PLACED,	   /* call placed: record its sid                     */
	PENDING_REJECTED,  /* provider refused: fail the job                  */
	PENDING_TRANSIENT, /* nothing placed: re-queue                        */
	PENDING_REVERT,	   /* claimed, never sent: give it back to the queue */
} worker_pending_kind_t;

typedef struct worker_pending {
	worker_pending_kind_t kind;
	int64_t job_id;
	int64_t log_id;
	int64_t business_id;
	char call_sid[64];
	char error_code[32];
	char error_message[256];
} worker_pending_t;

typedef struct worker {
	const config_t *cfg;
	provider_t *provider; /* borrowed; NULL: runs are not dispatched */
	db_t *db;
	arena_t *arena;
	char name[256];	 /* workers.name: host:pid:start                        */
	char owner[200]; /* locked_by_worker / background_jobs.locked_by: host:pid */
	char host[128];
	int64_t id; /* workers.id */
	char answer_url[512];
	char status_url[512];
	char amd_url[512];	 /* POST /webhooks/twilio/amd: the AMD verdicts      */
	char voicemail_url[512]; /* the voice webhook's ?mode=voicemail              */
	char account[128];	 /* pace key: the provider account */
	int run_beat_ms; /* run heartbeat: run_heartbeat_ms, at most a third of run_stale_s */

	worker_lease_t leases[WORKER_MAX_RUNS];
	int nleases;
	worker_pending_t pending[WORKER_MAX_PENDING];
	int npending;

	bool want_claim;    /* look for runs to claim                 */
	int64_t last_claim; /* when this worker last took a run (ms)  */
	bool want_hangup;   /* look for calls to hang up              */
	bool want_amd;	    /* look for AMD actions (voicemail, hang-up) */
	bool want_queue;    /* drain background jobs                  */
	bool want_outbox;   /* send the WhatsApp outbox (outbox.c)    */
	/* outbox.c: the Graph client (NULL: no Graph URL, the outbox is not sent),
	 * and when the next send retry falls due (monotonic ms; 0: none known) */
	struct wa_graph *wa_graph;
	int64_t outbox_due;
	unsigned connects;
	int64_t next_maintenance; /* monotonic ms of the next maintenance.c pass */
} worker_t;

extern volatile sig_atomic_t worker_stopping;

int64_t worker_now_ms(void);
/* Read queued NOTIFYs into wake-up flags. Returns how many were read. */
int worker_drain_notifies(worker_t *w);

/* lease.c */
void lease_register(void);
/* Claim runs this worker can take (pending, released or stale), recovering taken-over ones. */
int lease_claim(worker_t *w);
/* When this worker may claim again: later the more runs it already drives (load spreading). */
int64_t lease_claim_due(const worker_t *w);
/* Heartbeat every held run; drop lost leases, release runs that ended elsewhere. */
int lease_heartbeat(worker_t *w);
/* Heartbeat now if the last one is older than the run heartbeat (long dispatch batches). */
void lease_heartbeat_if_late(worker_t *w);
/* Cancel requested: cancel queued jobs; no work left: finish the run and release it.
 * Returns 1 when the run ended (the lease is gone), 0 otherwise, or an ERR_* code. */
int lease_settle(worker_t *w, worker_lease_t *l);
/* Release every held lease (SIGTERM): another worker resumes at once. */
void lease_release_all(worker_t *w);
void lease_drop(worker_t *w, int idx);
worker_lease_t *lease_find(worker_t *w, int64_t run_id);

/* dispatch.c */
void dispatch_register(void);
/* Fill the run's free slots: claim queued jobs, then place their calls. */
int dispatch_run(worker_t *w, worker_lease_t *l);
/* Write provider outcomes kept while the database was down. */
void dispatch_flush_pending(worker_t *w);

/* pace.c */
void pace_register(void);
/*
 * Inside the dispatch transaction: reserve up to want call slots of the
 * account. *granted gets how many; *wait_ms how long until the next one.
 */
int pace_take(worker_t *w, int want, int *granted, int *wait_ms);

/* cancel.c */
void cancel_register(void);
/* Hang up live calls whose hang-up was requested (force-cancel). */
int cancel_hangups(worker_t *w);

/* amd.c */
void amd_register(void);
/*
 * Carry out the AMD actions the AMD webhook asked for (voicemail_requested_at):
 * redirect the call to the voicemail TwiML, or hang it up, per the business's
 * amd_action; then clear the request.
 */
int amd_actions(worker_t *w);

/* recovery.c */
void recovery_register(void);
/* The periodic sweeps: call_log rows without a sid, reconciliation, queue rescue. */
void recovery_sweep(worker_t *w);

/* maintenance.c */
void maintenance_register(void);
/*
 * Hourly housekeeping, due-checked here (recovery_sweep calls it every poll):
 * next months' audit partitions, and idle rate-limit buckets forgotten.
 */
void maintenance_run(worker_t *w);

/* outbox.c, wa_sweep.c: the WhatsApp outbox sender and sweeps (see whatsapp.h) */
void outbox_register(void);
void wa_sweep_register(void);
/* The Graph client from cfg (none without DIALFLOW_WHATSAPP_GRAPH_URL). Returns 0 or -1. */
int outbox_init(worker_t *w);
void outbox_free(worker_t *w);
/* One sender round when want_outbox; keeps want_outbox while there is more to send. */
void outbox_drain(worker_t *w);
/* Every poll: rescue expired outbox leases, the idle-session and handover-notice sweeps. */
void outbox_sweep(worker_t *w);

#endif
