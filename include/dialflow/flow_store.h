/*
 * flow_store.h - where the flow engine's inputs live in PostgreSQL
 * (migration 0005): flow versions, the active flows of a business, and a
 * contact's conversation state. Everything runs in the caller's transaction,
 * on a handle already scoped to the tenant (API) or as the worker role.
 *
 * Loaded definitions are jansson values owned by the arena (json_arena), so
 * they live exactly as long as the request.
 */
#ifndef DIALFLOW_FLOW_STORE_H
#define DIALFLOW_FLOW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"
#include "dialflow/flow.h"

/*
 * The ACTIVE flow `name` of business, at its current version. Returns 0 with
 * *out filled, ERR_NOTFOUND when there is none, or another ERR_*.
 */
int flow_store_active_by_name(db_t *db, arena_t *a, int64_t business_id, const char *name,
			      flow_def_ref_t *out);

/* Flow id (any state) at its current version: 0, ERR_NOTFOUND, or ERR_*. */
int flow_store_current(db_t *db, arena_t *a, int64_t business_id, int64_t flow_id,
		       flow_def_ref_t *out);

/* A stored version by id: 0, ERR_NOTFOUND, or ERR_*. */
int flow_store_version(db_t *db, arena_t *a, int64_t version_id, flow_def_ref_t *out);

/*
 * Every active flow of business as trigger candidates (arena array, names
 * from the flows table). Returns 0 (*n may be 0) or ERR_*.
 */
int flow_store_candidates(db_t *db, arena_t *a, int64_t business_id, flow_candidate_t **out,
			  size_t *n);

/*
 * A flow_env_t load_flow callback over flow_store_active_by_name(): ud must
 * point to a flow_store_env_t that outlives the engine call.
 */
typedef struct flow_store_env {
	db_t *db;
	arena_t *a;
	int64_t business_id;
	int err; /* the last database error seen by the callback, 0 if none */
} flow_store_env_t;
int flow_store_load_flow(void *ud, const char *name, flow_def_ref_t *out);

/* Register the module's statements. */
void flow_store_register(void);

#endif
