/*
 * worker.h - the worker daemon (DESIGN §1, §7): call runs, background jobs,
 * force-cancel hang-ups and the recovery sweeps.
 *
 * A worker registers a row in `workers` (name host:pid:start) and heartbeats
 * it every cfg->worker_heartbeat_ms. It drives outbound runs under leases
 * (host:pid + a random token, heartbeated every run_heartbeat_ms, taken over
 * when older than run_stale_s), keeps each business's in-flight calls within
 * min(run.concurrency, business.max_concurrent_calls) across any number of
 * workers, paces dials to calls_per_second per provider account (shared by
 * all workers through the database), drains background_jobs, and wakes on
 * NOTIFY with dispatch_poll_ms polling as the fallback. It reconnects by
 * itself when the database goes away. On SIGTERM/SIGINT it stops claiming,
 * writes what is pending (up to shutdown_grace_s), releases its run leases so
 * another worker resumes them at once, marks itself stopped and returns 0.
 */
#ifndef DIALFLOW_WORKER_H
#define DIALFLOW_WORKER_H

#include "dialflow/config.h"
#include "dialflow/provider.h"

/*
 * Run with the Twilio provider built from cfg (DIALFLOW_TWILIO_*; without an
 * account sid, runs are not dispatched but background jobs are). Returns 0 on
 * a clean stop, -1 on a fatal setup error.
 */
int worker_run(const config_t *cfg);

/*
 * Run with `provider` (borrowed; NULL: no dialling), e.g. a test double.
 * Installs SIGTERM/SIGINT handlers; call it in the process that should stop
 * on them. Same return values as worker_run().
 */
int worker_run_with(const config_t *cfg, provider_t *provider);

#endif
