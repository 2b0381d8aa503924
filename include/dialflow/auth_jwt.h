/*
 * auth_jwt.h - bearer token verification and issuance around libjwt 1.10.2.
 *
 * libjwt 1.10.2 trusts the header's `alg`, accepts `none` with an empty key,
 * never checks `exp`, and alloca()s the token length. This module makes it
 * safe: the key (found by `kid` in an in-memory key ring) pins the algorithm,
 * the token is capped at 8 KiB and charset-checked before libjwt sees it, the
 * header is parsed by us with duplicate keys rejected, and every claim is read
 * through jansson with type checks (see docs/security.md).
 */
#ifndef DIALFLOW_AUTH_JWT_H
#define DIALFLOW_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define AUTH_JWT_MAX_LEN    8192
#define AUTH_JWT_LEEWAY	    60
#define AUTH_JWT_MIN_HS_KEY 32

typedef struct auth_jwt_keyring auth_jwt_keyring_t;

/* Verification policy. issuer/audience NULL or "" = not checked (and not issued). */
typedef struct auth_jwt_policy {
	const char *issuer;
	const char *audience;
	long leeway; /* seconds, capped at AUTH_JWT_LEEWAY */
} auth_jwt_policy_t;

/* The claims a verified access token carries. */
typedef struct auth_claims {
	int64_t user_id; /* `sub`, a positive decimal string                  */
	int64_t ver;	 /* `ver`, the user's token_version when issued        */
	int64_t exp;
	int64_t iat; /* 0 when absent */
	int64_t nbf; /* 0 when absent */
	char kid[64];
} auth_claims_t;

/* An empty key ring; caller frees with auth_jwt_keyring_free(). */
auth_jwt_keyring_t *auth_jwt_keyring_new(void);
void auth_jwt_keyring_free(auth_jwt_keyring_t *kr);
/*
 * Add a key. alg is "HS256" (secret of >= 32 bytes), "RS256" or "ES256"
 * (public key PEM; verification only). The first key added is the default
 * used for tokens without `kid`. Refuses NULL/empty keys, short HS secrets,
 * unknown algorithms and duplicate kids. Returns 0 or -1. Copies the key.
 */
int auth_jwt_keyring_add(auth_jwt_keyring_t *kr, const char *kid, const char *alg,
			 const unsigned char *key, size_t key_len);

/*
 * Extract the token from an Authorization header value "Bearer <token>".
 * Returns 0 and points *tok and *len into `header`, or -1 (missing, wrong scheme,
 * longer than 8 KiB, bad charset, not three parts).
 */
int auth_jwt_from_header(const char *header, const char **tok, size_t *len);

/*
 * Verify `tok` (len bytes) at time `now`. Returns 0 and fills *out, or -1
 * with *why set to a static, log-safe reason ("expired", "bad_signature", ...).
 * Never logs the token.
 */
int auth_jwt_verify(const auth_jwt_keyring_t *kr, const auth_jwt_policy_t *pol, const char *tok,
		    size_t len, time_t now, auth_claims_t *out, const char **why);

/*
 * Mint an access token for user_id/ver with `kid` (an HS256 key of the ring),
 * valid `ttl` seconds from `now`: claims sub, ver, iat, nbf, exp, jti,
 * token_use="access", iss and aud from the policy. Returns a malloc'd string
 * (caller frees) or NULL.
 */
char *auth_jwt_issue(const auth_jwt_keyring_t *kr, const auth_jwt_policy_t *pol, const char *kid,
		     int64_t user_id, int64_t ver, long ttl, time_t now);

#endif
