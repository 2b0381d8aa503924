/*
 * ratelimit.h - app-level rate limits, kept in PostgreSQL so that they hold
 * across every API process and host (migration 0004).
 *
 * A limit is "at most max_hits in any window of window_s seconds" for one
 * bucket: the rule's name, the business and a subject (the business itself,
 * a contact, ...). rate_limit_take() in the database keeps a sliding log of
 * the bucket's hits and takes one with a single upsert; concurrent takers of
 * one bucket serialise on its row. A business may have its own max_hits and
 * window for a rule (business_rate_limits; PUT /api/admin/businesses/{id}/
 * rate_limits); the defaults below apply otherwise.
 *
 * A hit taken inside a transaction that rolls back is given back.
 */
#ifndef DIALFLOW_RATELIMIT_H
#define DIALFLOW_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "dialflow/arena.h"
#include "dialflow/db.h"
#include "dialflow/http.h"

typedef struct ratelimit_rule {
	const char *name; /* [a-z][a-z0-9_]*, the key of a business's override */
	int max_hits;	  /* default */
	int window_s;	  /* default */
} ratelimit_rule_t;

/* The rules of the product (defaults; see docs/operations.md). */
extern const ratelimit_rule_t RATELIMIT_RUN_CREATE;   /* 2 a minute per business        */
extern const ratelimit_rule_t RATELIMIT_LEAD_IMPORT;  /* 5 a minute per business        */
extern const ratelimit_rule_t RATELIMIT_FLOW_START;   /* 1 per 10 s per contact         */
extern const ratelimit_rule_t RATELIMIT_FLOW_INBOUND; /* 30 a minute per contact       */
/* Every rule, NULL-terminated (validation of overrides, listings). */
extern const ratelimit_rule_t *const ratelimit_rules[];

/* The rule called name, or NULL. */
const ratelimit_rule_t *ratelimit_rule_find(const char *name);

typedef struct ratelimit_result {
	bool allowed;
	int retry_after_s; /* when refused: seconds until a hit frees (>= 1) */
	int max_hits;	   /* the limit in force (the business's or the default) */
	int window_s;
} ratelimit_result_t;

/*
 * Take one hit from (rule, business_id, subject) on db, in the caller's
 * transaction (or autocommit). Returns 0 with *out filled, or ERR_*.
 */
int ratelimit_take(db_t *db, arena_t *a, const ratelimit_rule_t *rule, int64_t business_id,
		   const char *subject, ratelimit_result_t *out);

/*
 * For API handlers: take a hit for the request's business. Returns 0 when
 * allowed; 1 after answering 429 `rate_limited` with Retry-After (and a
 * RATE_LIMIT audit row); or ERR_*.
 */
int ratelimit_guard(http_request_t *req, const ratelimit_rule_t *rule, const char *subject);

/* Register the module's statements. */
void ratelimit_register(void);

#endif
