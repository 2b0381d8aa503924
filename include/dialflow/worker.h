/*
 * worker.h - the worker daemon: registration, heartbeats, clean shutdown.
 *
 * A worker registers a row in `workers` (name host:pid:start), heartbeats it
 * every cfg->worker_heartbeat_ms, reconnects by itself when the database
 * goes away, and on SIGTERM/SIGINT marks itself stopped and returns 0. The
 * queue loops of later issues hang off worker_run()'s wake-ups.
 */
#ifndef DIALFLOW_WORKER_H
#define DIALFLOW_WORKER_H

#include "dialflow/config.h"

/* Run until SIGTERM/SIGINT. Returns 0 on a clean stop, -1 on a fatal setup error. */
int worker_run(const config_t *cfg);

#endif
