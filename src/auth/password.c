/* password.c - yescrypt password hashing through libcrypt (DESIGN §6). */
#include <crypt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/auth.h"
#include "dialflow/log.h"

/* A yescrypt hash of a random password, made once per process and verified
 * against for unknown emails, so that a login with an unknown email costs the
 * same as a wrong password (no user enumeration by timing). */
static char *dummy_hash;

char *auth_password_hash(const char *password)
{
	char *setting = NULL, *hash = NULL;
	struct crypt_data *cd = NULL;
	const char *out;

	setting = crypt_gensalt_ra("$y$", 0, NULL, 0);
	if (setting == NULL) {
		log_error("auth", "crypt_gensalt failed");
		goto out;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		goto out;
	out = crypt_r(password, setting, cd);
	if (out == NULL || out[0] == '*') {
		log_error("auth", "crypt failed");
		goto out;
	}
	hash = strdup(out);
out:
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	free(setting);
	return hash;
}

int auth_password_verify(const char *password, const char *hash)
{
	struct crypt_data *cd;
	const char *out;
	size_t hlen;
	int rc = -1;

	if (password == NULL || hash == NULL || hash[0] != '$')
		return -1;
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -1;
	out = crypt_r(password, hash, cd);
	hlen = strlen(hash);
	if (out != NULL && out[0] != '*' && strlen(out) == hlen &&
	    CRYPTO_memcmp(out, hash, hlen) == 0)
		rc = 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
	return rc;
}

void auth_password_dummy_verify(const char *password)
{
	char rnd[33];

	if (dummy_hash == NULL && auth_random_token(rnd, sizeof(rnd), 16) == 0)
		dummy_hash = auth_password_hash(rnd);
	(void)auth_password_verify(password ? password : "", dummy_hash);
}

const char *auth_password_weak(const char *password)
{
	size_t len = password ? strlen(password) : 0;

	if (len < 10)
		return "must be at least 10 characters";
	if (len > 256)
		return "must be at most 256 characters";
	return NULL;
}
