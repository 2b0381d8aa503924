/*
 * auth.h - roles, the page registry, passwords and the request principal.
 *
 * The database decides: a verified token only names a user; role, activity,
 * token_version and the tenant come from the database on every request.
 */
#ifndef DIALFLOW_AUTH_H
#define DIALFLOW_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dialflow/auth_jwt.h"

typedef enum {
	ROLE_NONE = 0,
	ROLE_AGENT = 1,
	ROLE_ADMIN = 2,
	ROLE_OWNER = 3,
	ROLE_SYSTEM_ADMIN = 4,
} auth_role_t;

/* "agent" -> ROLE_AGENT ...; ROLE_NONE for anything else. */
auth_role_t auth_role_parse(const char *name);
const char *auth_role_name(auth_role_t r);

/* A page a business can enable, and the least role that may use it. */
typedef struct auth_page {
	const char *key;
	auth_role_t min_role;
	const char *label;
} auth_page_t;

/* The registry, terminated by a {NULL} entry. */
extern const auth_page_t auth_pages[];
/* The page of that key, or NULL when unknown. */
const auth_page_t *auth_page_find(const char *key);

/* Hash `password` with yescrypt into a malloc'd string; NULL on failure. */
char *auth_password_hash(const char *password);
/* 0 when `password` matches `hash` (constant-time compare), -1 otherwise. */
int auth_password_verify(const char *password, const char *hash);
/* Spend the same time as a verification, for unknown emails (no user enumeration). */
void auth_password_dummy_verify(const char *password);
/* Password policy for new passwords: 10..256 bytes. Returns NULL or a reason. */
const char *auth_password_weak(const char *password);

/* The authenticated caller of a request. Strings live in the request arena. */
typedef struct auth_principal {
	int64_t user_id;
	int64_t home_business_id; /* the user's own business, 0 for a system_admin */
	int64_t business_id;	  /* the tenant in effect, 0 for none              */
	auth_role_t role;
	const char *email;
	const char *name;
	const char *business_name; /* NULL when no tenant                         */
	bool impersonating;	   /* a system_admin acting with X-Business-Id     */
	const char **pages;	   /* enabled page keys of the tenant             */
	size_t npages;
} auth_principal_t;

/* The user row as auth_principal() returns it; input to auth_principal_check(). */
typedef struct auth_user_row {
	bool found;
	bool is_active;
	int64_t token_version;
	auth_role_t role;
	int64_t business_id;  /* 0 for a system_admin */
	bool business_active; /* of the effective business; true when none */
	bool business_found;  /* false when X-Business-Id named no business */
} auth_user_row_t;

/*
 * Decide whether verified claims and the user's row admit the request.
 * acting_business: X-Business-Id (0 when absent). Returns 0, or -1 with a
 * log-safe reason in *why ("user_not_found", "inactive", "token_version",
 * "business_inactive", "impersonation_denied", "no_such_business").
 */
int auth_principal_check(const auth_claims_t *c, const auth_user_row_t *u, int64_t acting_business,
			 const char **why);

/* Whether principal p has page `key` enabled. */
bool auth_has_page(const auth_principal_t *p, const char *key);

/* sha256 of `s` as 64 lowercase hex characters into out[65]. */
void auth_sha256_hex(const char *s, size_t len, char out[65]);
/* Fill `out` with `bytes` random bytes as lowercase hex; out needs 2*bytes+1 chars. Returns 0/-1.
 */
int auth_random_token(char *out, size_t outsz, size_t bytes);

#endif
