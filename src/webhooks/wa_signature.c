/*
 * wa_signature.c - X-Hub-Signature-256 of the WhatsApp Cloud API webhooks:
 * "sha256=" + hex(HMAC-SHA256(app secret, raw body)), over the exact bytes
 * received (a proxy that re-encodes the body breaks it, by design).
 */
#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

#include "dialflow/whatsapp.h"

#define PREFIX	   "sha256="
#define PREFIX_LEN 7
#define MD_LEN	   32

int wa_signature(const char *app_secret, const char *body, size_t len, char *out, size_t outsz)
{
	static char digest[] = "SHA256";
	static const char hex[] = "0123456789abcdef";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
			       OSSL_PARAM_construct_end()};
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	int rc = -1;

	if (app_secret == NULL || app_secret[0] == '\0' || (body == NULL && len > 0) ||
	    out == NULL || outsz < WA_SIGNATURE_LEN + 1)
		goto out;
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	if (ctx == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)app_secret, strlen(app_secret), params) ||
	    (len > 0 && !EVP_MAC_update(ctx, (const unsigned char *)body, len)) ||
	    !EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) || mdlen != MD_LEN)
		goto out;
	memcpy(out, PREFIX, PREFIX_LEN);
	for (size_t i = 0; i < MD_LEN; i++) {
		out[PREFIX_LEN + 2 * i] = hex[md[i] >> 4];
		out[PREFIX_LEN + 2 * i + 1] = hex[md[i] & 0xf];
	}
	out[WA_SIGNATURE_LEN] = '\0';
	rc = 0;
out:
	OPENSSL_cleanse(md, sizeof(md));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

bool wa_signature_check(const char *app_secret, const char *body, size_t len, const char *header)
{
	char want[WA_SIGNATURE_LEN + 1], got[WA_SIGNATURE_LEN + 1];
	bool ok = false;

	if (header == NULL || strlen(header) != WA_SIGNATURE_LEN ||
	    strncmp(header, PREFIX, PREFIX_LEN) != 0)
		return false;
	/* Normalise the case of the (public) header only; then one constant-time compare. */
	for (size_t i = 0; i < WA_SIGNATURE_LEN; i++) {
		unsigned char c = (unsigned char)header[i];

		if (i >= PREFIX_LEN && !isxdigit(c))
			return false;
		got[i] = (char)tolower(c);
	}
	got[WA_SIGNATURE_LEN] = '\0';
	if (wa_signature(app_secret, body, len, want, sizeof(want)) == 0)
		ok = CRYPTO_memcmp(want, got, WA_SIGNATURE_LEN) == 0;
	OPENSSL_cleanse(want, sizeof(want));
	return ok;
}
