/*
 * fake_provider.h - an in-process telephony provider for the worker tests.
 *
 * It implements provider_ops_t with zero latency (or a set latency), answers
 * place_call with scriptable outcomes, records every call it placed and every
 * hang-up, and answers fetch_status as told. Its state lives in one
 * MAP_SHARED mapping made before fork(), so worker children (which dial
 * through it) and the test parent (which inspects it) share one record; the
 * record is updated with atomics only, so a child killed with SIGKILL never
 * leaves it locked.
 *
 * Calls "end" when the test says so: fake_provider_emit() applies a status
 * event through outbound_call_event(), exactly as the status webhook would.
 */
#ifndef DIALFLOW_FAKE_PROVIDER_H
#define DIALFLOW_FAKE_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "dialflow/db.h"
#include "dialflow/provider.h"

#define FAKE_MAX_CALLS 4096

typedef struct fake_call {
	char sid[48];
	char to[24];
	char from[24];
	char answer_url[128];
	char status_url[128];
	int64_t job_id;
	int64_t placed_us; /* CLOCK_MONOTONIC, microseconds */
	pid_t pid;	   /* the process that placed it */
	int hangups;
	bool amd;		/* answering-machine detection was asked for */
	char amd_url[128];	/* its callback URL                           */
	int redirects;		/* redirect requests for this call           */
	char redirect_url[160]; /* the last redirect's URL                    */
} fake_call_t;

typedef struct fake_provider fake_provider_t;

/* A fresh fake (all calls succeed). Call before fork(). Free with fake_provider_free(). */
fake_provider_t *fake_provider_new(void);
void fake_provider_free(fake_provider_t *fp);
/* The provider_t to pass to worker_run_with(). */
provider_t *fake_provider_get(fake_provider_t *fp);

/*
 * place_call answers `rc` (PROVIDER_OK, PROVIDER_ERR_*) for calls to `to`
 * (NULL: any number) the next `times` times (-1: always). Rules are tried in
 * the order they were added; later calls fall back to PROVIDER_OK.
 */
void fake_provider_script(fake_provider_t *fp, const char *to, int rc, int times);
/* Every provider request takes this long (default 0). */
void fake_provider_set_latency(fake_provider_t *fp, int ms);
/* What fetch_status answers (default: PROVIDER_OK "completed", 12 s). */
void fake_provider_set_fetch(fake_provider_t *fp, int rc, int http_status, const char *status,
			     int duration);

/* Records. */
int fake_provider_ncalls(fake_provider_t *fp);
/* Copy call i (0-based, in placing order); false when i is out of range. */
bool fake_provider_call(fake_provider_t *fp, int i, fake_call_t *out);
/* How many calls were placed to `to`. */
int fake_provider_calls_to(fake_provider_t *fp, const char *to);
int fake_provider_nhangups(fake_provider_t *fp);
/* Redirect requests, in all, and for call sid (its last URL into url when not NULL). */
int fake_provider_nredirects(fake_provider_t *fp);
int fake_provider_redirects_of(fake_provider_t *fp, const char *sid, char *url, size_t urlsz);
/* Hang-ups asked for call sid (0 for an unknown sid). */
int fake_provider_hangups_of(fake_provider_t *fp, const char *sid);
int fake_provider_nfetches(fake_provider_t *fp);
/* place_call requests currently inside the provider. */
int fake_provider_in_flight(fake_provider_t *fp);

/*
 * Apply a provider status event for sid on db (a worker-role or owner
 * handle), in its own transaction, as the webhook would. Returns 0 or ERR_*;
 * *changed (may be NULL) as outbound_call_event().
 */
int fake_provider_emit(db_t *db, const char *sid, const char *status, int duration, bool *changed);

#endif
