/*
 * fuzz_jwt.c - libFuzzer target for src/auth/jwt.c.
 *
 * The first input byte picks what the rest is:
 *   0  an Authorization header value: auth_jwt_from_header, then verify;
 *   1  a token handed straight to auth_jwt_verify (exact-size buffer, no NUL,
 *      so ASan sees any over-read);
 *   2  a claims payload, signed here with the HS256 key, so the claim checks
 *      behind the signature get fuzzed too;
 *   3  a JOSE header, signed here with the HS256 key.
 * The key ring is fixed: an HS256 secret (kid "hs", the default) and an
 * RS256 public key (kid "idp") whose private half was thrown away.
 *
 *   clang -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude \
 *     src/auth/jwt.c tests/fuzz/fuzz_jwt.c \
 *     $(pkg-config --cflags --libs libjwt jansson libcrypto) -o /tmp/fuzz_jwt
 *   /tmp/fuzz_jwt -max_total_time=60 tests/fuzz/corpus-run tests/fuzz/corpus/jwt
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dialflow/auth_jwt.h"

#define NOW ((time_t)1700000000)

static const char HS_KEY[] = "fuzz-hs256-secret-0123456789abcdef";

static const char RS_PUB[] = "-----BEGIN PUBLIC KEY-----\n"
			     "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxqkA7rW4L9L5OcQlclZD\n"
			     "775maujHHjBku+GAW77mnuGDbN7P04JC+s84MejUcsxHoochBJl/E6s3yv5yXnM1\n"
			     "7CN93kd3TjA5M8EiZRAq/ASmH37XEEoFmoE1+xU9xzf+OPNaeYmsSOD9qX0ldC+Z\n"
			     "k0QZCVFkf7e8nEJLP3FZx2la/I8Wk83pvpmXSL/spQNl/f2XPWbV663YSUBIgEVO\n"
			     "Nc9zqkfdEHj5FgDeMpLM9JD0vjyrfoupNUqWFSyYU/SD5K49PS36HpIfszs/jGG6\n"
			     "2WQgF1SIscXybfXIghfYr098v4DbJSfjLYBnRvd2TvGUj/kKUYHgJlMvughTKOGU\n"
			     "GQIDAQAB\n"
			     "-----END PUBLIC KEY-----\n";

static const char *const REASONS[] = {
    "malformed",    "too_long",	      "bad_charset",	 "bad_header",
    "unknown_kid",  "alg_mismatch",   "bad_signature",	 "decoded_alg_mismatch",
    "bad_claims",   "expired",	      "not_yet_valid",	 "issued_in_future",
    "wrong_issuer", "wrong_audience", "wrong_token_use", "internal",
};

static auth_jwt_keyring_t *ring;
static const auth_jwt_policy_t policy = {"https://dialflow.test", "dialflow-api", 60};

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	ring = auth_jwt_keyring_new();
	if (ring == NULL ||
	    auth_jwt_keyring_add(ring, "hs", "HS256", (const unsigned char *)HS_KEY,
				 strlen(HS_KEY)) != 0 ||
	    auth_jwt_keyring_add(ring, "idp", "RS256", (const unsigned char *)RS_PUB,
				 strlen(RS_PUB)) != 0)
		abort();
	return 0;
}

static char *b64url(const uint8_t *in, size_t n, size_t *out_len)
{
	static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	char *out = malloc(n / 3 * 4 + 5);
	uint32_t acc = 0;
	int bits = 0;
	size_t i, o = 0;

	if (out == NULL)
		abort();
	for (i = 0; i < n; i++) {
		acc = ((acc << 8) | in[i]) & 0xffffu;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = al[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = al[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	*out_len = o;
	return out;
}

/* b64(hdr) "." b64(pay) "." HMAC, as a malloc'd string of *len bytes. */
static char *sign(const uint8_t *hdr, size_t hlen, const uint8_t *pay, size_t plen, size_t *len)
{
	size_t h64n, p64n, s64n;
	char *h64 = b64url(hdr, hlen, &h64n);
	char *p64 = b64url(pay, plen, &p64n);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	char *tok = malloc(h64n + p64n + 64);
	char *s64;

	if (tok == NULL)
		abort();
	memcpy(tok, h64, h64n);
	tok[h64n] = '.';
	memcpy(tok + h64n + 1, p64, p64n);
	if (HMAC(EVP_sha256(), HS_KEY, (int)strlen(HS_KEY), (const unsigned char *)tok,
		 h64n + 1 + p64n, mac, &mlen) == NULL)
		abort();
	s64 = b64url(mac, mlen, &s64n);
	tok[h64n + 1 + p64n] = '.';
	memcpy(tok + h64n + 2 + p64n, s64, s64n);
	*len = h64n + 2 + p64n + s64n;
	free(h64);
	free(p64);
	free(s64);
	return tok;
}

static void check(int rc, const auth_claims_t *out, const char *why)
{
	size_t i;

	if (rc == 0) {
		if (why != NULL || out->user_id <= 0 || out->ver < 0 ||
		    (strcmp(out->kid, "hs") != 0 && strcmp(out->kid, "idp") != 0) ||
		    out->exp <= (int64_t)NOW - AUTH_JWT_LEEWAY ||
		    out->nbf > (int64_t)NOW + AUTH_JWT_LEEWAY ||
		    out->iat > (int64_t)NOW + AUTH_JWT_LEEWAY)
			abort();
		return;
	}
	if (rc != -1 || why == NULL || out->user_id != 0)
		abort();
	for (i = 0; i < sizeof(REASONS) / sizeof(REASONS[0]); i++) {
		if (why == REASONS[i] || strcmp(why, REASONS[i]) == 0)
			return;
	}
	abort(); /* a reason nobody documented */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t default_hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"hs\"}";
	static const uint8_t default_pay[] =
	    "{\"sub\":\"42\",\"ver\":1,\"exp\":1700000900,\"token_use\":\"access\","
	    "\"iss\":\"https://dialflow.test\",\"aud\":\"dialflow-api\"}";
	auth_claims_t out;
	const char *why = NULL;
	const char *tok = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (size == 0)
		return 0;
	switch (data[0] & 3) {
	case 0: /* header value: a C string */
		buf = malloc(size);
		if (buf == NULL)
			abort();
		memcpy(buf, data + 1, size - 1);
		buf[size - 1] = '\0';
		if (auth_jwt_from_header(buf, &tok, &len) == 0) {
			if (len == 0 || len > AUTH_JWT_MAX_LEN || tok != buf + 7)
				abort();
			rc = auth_jwt_verify(ring, &policy, tok, len, NOW, &out, &why);
			check(rc, &out, why);
		}
		break;
	case 1: /* raw token bytes, exact size */
		buf = malloc(size - 1 > 0 ? size - 1 : 1);
		if (buf == NULL)
			abort();
		memcpy(buf, data + 1, size - 1);
		rc = auth_jwt_verify(ring, &policy, buf, size - 1, NOW, &out, &why);
		check(rc, &out, why);
		break;
	case 2: /* claims, validly signed */
		buf = sign(default_hdr, sizeof(default_hdr) - 1, data + 1, size - 1, &len);
		rc = auth_jwt_verify(ring, &policy, buf, len, NOW, &out, &why);
		check(rc, &out, why);
		break;
	default: /* JOSE header, validly signed */
		buf = sign(data + 1, size - 1, default_pay, sizeof(default_pay) - 1, &len);
		rc = auth_jwt_verify(ring, &policy, buf, len, NOW, &out, &why);
		check(rc, &out, why);
		break;
	}
	free(buf);
	return 0;
}
