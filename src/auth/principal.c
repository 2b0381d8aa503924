/* principal.c - the database decides: admit a verified token only for a live user. */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>

#include "dialflow/auth.h"

int auth_principal_check(const auth_claims_t *c, const auth_user_row_t *u, int64_t acting_business,
			 const char **why)
{
	if (!u->found) {
		*why = "user_not_found";
		return -1;
	}
	if (!u->is_active) {
		*why = "inactive";
		return -1;
	}
	/* logout, role change and deactivation bump token_version */
	if (c->ver != u->token_version) {
		*why = "token_version";
		return -1;
	}
	if (acting_business > 0 && u->role != ROLE_SYSTEM_ADMIN) {
		*why = "impersonation_denied";
		return -1;
	}
	if (!u->business_found) {
		*why = "no_such_business";
		return -1;
	}
	if (!u->business_active) {
		*why = "business_inactive";
		return -1;
	}
	return 0;
}

void auth_sha256_hex(const char *s, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(s, len, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int auth_random_token(char *out, size_t outsz, size_t bytes)
{
	unsigned char buf[64];

	if (bytes > sizeof(buf) || outsz < bytes * 2 + 1)
		return -1;
	if (RAND_bytes(buf, (int)bytes) != 1)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		snprintf(out + 2 * i, 3, "%02x", buf[i]);
	return 0;
}
