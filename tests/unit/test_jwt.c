/*
 * test_jwt.c - unit tests for src/auth/jwt.c against the real libjwt 1.10.2.
 *
 * Tokens are crafted byte by byte (our own base64url + OpenSSL HMAC) so each
 * test controls exactly what the verifier sees. Every rejection asserts the
 * reason string, because the checks are layered: removing one check usually
 * lets a later layer reject the token for another reason, and the reason is
 * what shows that the check under test is the one that fired.
 *
 * Two checks can't be reached with real libjwt (it never reports an
 * algorithm other than the header's when given a key, and jwt_get_grants_json
 * always reflects the payload). To test that they exist, this file defines
 * jwt_get_alg() and jwt_get_grants_json() itself. The executable's
 * definitions take precedence over libjwt.so's, and they forward to the
 * real ones through dlsym(RTLD_NEXT) unless a fault is switched on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "dialflow/auth_jwt.h"

#define NOW ((time_t)1700000000)
#define ISS "https://dialflow.test"
#define AUD "dialflow-api"

static const char HS1[] = "hs1-test-secret-0123456789abcdefgh"; /* 34 bytes */
static const char HS2[] = "hs2-test-secret-ZYXWVUTSRQPONMLKJI"; /* 34 bytes */
static const char HDR_HS1[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"hs1\"}";

static const auth_jwt_policy_t POLICY = {ISS, AUD, 60};

static struct {
	auth_jwt_keyring_t *kr; /* hs1 (default), hs2, idp (RS256), ec (ES256) */
	char *rsa_priv;
	char *rsa_pub;
	char *rsa2_priv; /* a different RSA key, for "wrong key" */
	char *ec_priv;
	char *ec_pub;
	char *rsa1024_pub;
	char *rsapss_pub; /* RSA-PSS: 2048 bits, but not an RS256 key */
} fx;

/* ---- fault injection (see the file comment) ---- */

static int force_alg_none;
static const char *fake_grants;

jwt_alg_t jwt_get_alg(jwt_t *jwt)
{
	jwt_alg_t (*real)(jwt_t *) = (jwt_alg_t(*)(jwt_t *))dlsym(RTLD_NEXT, "jwt_get_alg");

	if (force_alg_none)
		return JWT_ALG_NONE;
	return real(jwt);
}

char *jwt_get_grants_json(jwt_t *jwt, const char *grant)
{
	char *(*real)(jwt_t *, const char *) =
	    (char *(*)(jwt_t *, const char *))dlsym(RTLD_NEXT, "jwt_get_grants_json");

	if (fake_grants != NULL)
		return strdup(fake_grants);
	return real(jwt, grant);
}

/* ---- token crafting ---- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url(const void *in, size_t n)
{
	const unsigned char *p = in;
	char *out = malloc(n / 3 * 4 + 5);
	uint32_t acc = 0;
	int bits = 0;
	size_t i, o = 0;

	assert_non_null(out);
	for (i = 0; i < n; i++) {
		acc = ((acc << 8) | p[i]) & 0xffffu;
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = B64URL[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		out[o++] = B64URL[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return out;
}

/* A malloc'd string: printf into a fresh buffer. */
static char *str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	assert_true(n >= 0);
	return s;
}

/* h64 "." p64 "." b64(HMAC-SHA256(key, h64 "." p64)), segments taken as given. */
static char *sign_segments(const char *h64, const char *p64, const void *key, size_t klen)
{
	char *input = str("%s.%s", h64, p64);
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int mlen = 0;
	char *sig, *tok;

	assert_non_null(HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)input,
			     strlen(input), mac, &mlen));
	sig = b64url(mac, mlen);
	tok = str("%s.%s", input, sig);
	free(input);
	free(sig);
	return tok;
}

/* b64(hdr) "." b64(pay) "." b64(HMAC-SHA256(key, signing input)). */
static char *sign_raw(const char *hdr, size_t hlen, const char *pay, size_t plen, const void *key,
		      size_t klen)
{
	char *h = b64url(hdr, hlen);
	char *p = b64url(pay, plen);
	char *tok = sign_segments(h, p, key, klen);

	free(h);
	free(p);
	return tok;
}

/* Set the unused low bits of the last character of a base64url string. */
static void set_spare_bits(char *b64)
{
	size_t n = strlen(b64);
	const char *at = strchr(B64URL, b64[n - 1]);

	assert_int_not_equal(n % 4, 0);
	assert_non_null(at);
	b64[n - 1] = B64URL[(at - B64URL) | 1];
}

static char *sign_hs(const char *hdr, const char *pay, const char *key)
{
	return sign_raw(hdr, strlen(hdr), pay, strlen(pay), key, strlen(key));
}

/* An unsigned token: b64(hdr) "." b64(pay) "." sig (sig given verbatim). */
static char *unsigned_tok(const char *hdr, const char *pay, const char *sig)
{
	char *h = b64url(hdr, strlen(hdr));
	char *p = b64url(pay, strlen(pay));
	char *tok = str("%s.%s.%s", h, p, sig);

	free(h);
	free(p);
	return tok;
}

/*
 * The default claims (all valid at NOW under POLICY) with `patch`, a JSON
 * object text, merged over them; a null value deletes the claim.
 */
static char *claims(const char *patch)
{
	json_t *c = json_pack("{s:s, s:i, s:I, s:I, s:I, s:s, s:s, s:s}", "sub", "42", "ver", 3,
			      "exp", (json_int_t)NOW + 900, "iat", (json_int_t)NOW, "nbf",
			      (json_int_t)NOW, "token_use", "access", "iss", ISS, "aud", AUD);
	char *s;

	assert_non_null(c);
	if (patch != NULL) {
		json_t *p = json_loads(patch, 0, NULL);
		json_t *v;
		const char *k;

		assert_non_null(p);
		json_object_foreach(p, k, v)
		{
			if (json_is_null(v))
				json_object_del(c, k);
			else
				json_object_set(c, k, v);
		}
		json_decref(p);
	}
	s = json_dumps(c, JSON_COMPACT);
	json_decref(c);
	assert_non_null(s);
	return s;
}

/* An HS256 token for hs1 with the default claims patched. */
static char *tok_with(const char *patch)
{
	char *pay = claims(patch);
	char *tok = sign_hs(HDR_HS1, pay, HS1);

	free(pay);
	return tok;
}

/* A token signed by libjwt itself with a private key PEM (RS256/ES256). */
static char *libjwt_tok(jwt_alg_t alg, const char *priv, const char *kid, const char *pay)
{
	jwt_t *j = NULL;
	char *tok;

	assert_int_equal(jwt_new(&j), 0);
	assert_int_equal(jwt_set_alg(j, alg, (const unsigned char *)priv, (int)strlen(priv)), 0);
	if (kid != NULL)
		assert_int_equal(jwt_add_header(j, "kid", kid), 0);
	assert_int_equal(jwt_add_grants_json(j, pay), 0);
	tok = jwt_encode_str(j);
	jwt_free(j);
	assert_non_null(tok);
	return tok;
}

/*
 * Verify tok (freed here) with pol at now and check the outcome: reason NULL
 * means accepted. Returns the claims for further checks.
 */
static auth_claims_t expect_at(char *tok, size_t len, const auth_jwt_policy_t *pol, time_t now,
			       const char *reason)
{
	auth_claims_t out;
	const char *why = "unset";
	int rc = auth_jwt_verify(fx.kr, pol, tok, len, now, &out, &why);

	free(tok);
	if (reason == NULL) {
		if (rc != 0)
			fail_msg("rejected: %s", why);
		assert_null(why);
	} else {
		assert_int_equal(rc, -1);
		assert_non_null(why);
		assert_string_equal(why, reason);
		assert_int_equal(out.user_id, 0);
	}
	return out;
}

static auth_claims_t expect(char *tok, const char *reason)
{
	return expect_at(tok, strlen(tok), &POLICY, NOW, reason);
}

/* Replace the one occurrence of `from` in tok (freed) by `to`. */
static char *replace(char *tok, const char *from, const char *to)
{
	char *at = strstr(tok, from);
	char *r;

	assert_non_null(at);
	r = str("%.*s%s%s", (int)(at - tok), tok, to, at + strlen(from));
	free(tok);
	return r;
}

/* ---- fixture ---- */

static char *pem_of(EVP_PKEY *k, int private)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data = NULL;
	char *r;
	long n;

	assert_non_null(b);
	if (private)
		assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
	else
		assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	n = BIO_get_mem_data(b, &data);
	r = str("%.*s", (int)n, data);
	BIO_free(b);
	return r;
}

static int add_pem(auth_jwt_keyring_t *kr, const char *kid, const char *alg, const char *pem)
{
	return auth_jwt_keyring_add(kr, kid, alg, (const unsigned char *)pem, strlen(pem));
}

static int add_str(auth_jwt_keyring_t *kr, const char *kid, const char *alg, const char *key)
{
	return auth_jwt_keyring_add(kr, kid, alg, (const unsigned char *)key, strlen(key));
}

static int group_setup(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	EVP_PKEY *rsa2 = EVP_RSA_gen(2048);
	EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
	EVP_PKEY *ec = EVP_EC_gen("P-256");
	EVP_PKEY *pss = NULL;
	EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA-PSS", NULL);

	(void)state;
	if (pctx == NULL || EVP_PKEY_keygen_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_rsa_keygen_bits(pctx, 2048) != 1 || EVP_PKEY_keygen(pctx, &pss) != 1)
		return -1;
	EVP_PKEY_CTX_free(pctx);
	if (rsa == NULL || rsa2 == NULL || rsa1024 == NULL || ec == NULL)
		return -1;
	fx.rsapss_pub = pem_of(pss, 0);
	EVP_PKEY_free(pss);
	fx.rsa_priv = pem_of(rsa, 1);
	fx.rsa_pub = pem_of(rsa, 0);
	fx.rsa2_priv = pem_of(rsa2, 1);
	fx.rsa1024_pub = pem_of(rsa1024, 0);
	fx.ec_priv = pem_of(ec, 1);
	fx.ec_pub = pem_of(ec, 0);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(ec);

	fx.kr = auth_jwt_keyring_new();
	if (fx.kr == NULL || add_str(fx.kr, "hs1", "HS256", HS1) != 0 ||
	    add_str(fx.kr, "hs2", "HS256", HS2) != 0 ||
	    add_pem(fx.kr, "idp", "RS256", fx.rsa_pub) != 0 ||
	    add_pem(fx.kr, "ec", "ES256", fx.ec_pub) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	auth_jwt_keyring_free(fx.kr);
	free(fx.rsa_priv);
	free(fx.rsa_pub);
	free(fx.rsa2_priv);
	free(fx.rsa1024_pub);
	free(fx.rsapss_pub);
	free(fx.ec_priv);
	free(fx.ec_pub);
	return 0;
}

/* ---- key ring ---- */

static void test_keyring_refuses_bad_keys(void **state)
{
	auth_jwt_keyring_t *kr = auth_jwt_keyring_new();
	const unsigned char *k = (const unsigned char *)HS1;

	(void)state;
	assert_non_null(kr);
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "HS256", NULL, 32), -1);
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "HS256", k, 0), -1);
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "RS256", NULL, 100), -1);
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "RS256", (const unsigned char *)"", 0), -1);
	/* Short HS secrets: 31 bytes refused, 32 accepted. */
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "HS256", k, AUTH_JWT_MIN_HS_KEY - 1), -1);
	assert_int_equal(auth_jwt_keyring_add(kr, "a", "HS256", k, AUTH_JWT_MIN_HS_KEY), 0);
	auth_jwt_keyring_free(kr);
	auth_jwt_keyring_free(NULL);
	assert_int_equal(auth_jwt_keyring_add(NULL, "a", "HS256", k, 32), -1);

	/* At most 16 KiB of key, and at most 16 keys. */
	{
		unsigned char *huge = malloc(16385);
		char kid[8];
		int i;

		assert_non_null(huge);
		memset(huge, 'k', 16385);
		kr = auth_jwt_keyring_new();
		assert_int_equal(auth_jwt_keyring_add(kr, "big", "HS256", huge, 16385), -1);
		assert_int_equal(auth_jwt_keyring_add(kr, "big", "HS256", huge, 16384), 0);
		for (i = 1; i < 16; i++) {
			snprintf(kid, sizeof(kid), "k%d", i);
			assert_int_equal(auth_jwt_keyring_add(kr, kid, "HS256", huge, 32), 0);
		}
		assert_int_equal(auth_jwt_keyring_add(kr, "k16", "HS256", huge, 32), -1);
		auth_jwt_keyring_free(kr);
		free(huge);
	}
}

static void test_keyring_refuses_bad_alg_and_kid(void **state)
{
	auth_jwt_keyring_t *kr = auth_jwt_keyring_new();
	static const char *const bad_algs[] = {"none",	"NONE",	 "hs256", "HS384", "HS512",
					       "RS512", "PS256", "EdDSA", ""};
	char kid64[65];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_algs) / sizeof(bad_algs[0]); i++)
		assert_int_equal(add_str(kr, "a", bad_algs[i], HS1), -1);
	assert_int_equal(add_str(kr, "a", NULL, HS1), -1);

	assert_int_equal(add_str(kr, NULL, "HS256", HS1), -1);
	assert_int_equal(add_str(kr, "", "HS256", HS1), -1);
	assert_int_equal(add_str(kr, "a b", "HS256", HS1), -1);
	assert_int_equal(add_str(kr, "a\n", "HS256", HS1), -1);
	memset(kid64, 'k', 64);
	kid64[64] = '\0';
	assert_int_equal(add_str(kr, kid64, "HS256", HS1), -1);
	kid64[63] = '\0';
	assert_int_equal(add_str(kr, kid64, "HS256", HS1), 0);

	/* Duplicate kids, same or different algorithm. */
	assert_int_equal(add_str(kr, "dup", "HS256", HS1), 0);
	assert_int_equal(add_str(kr, "dup", "HS256", HS2), -1);
	assert_int_equal(add_pem(kr, "dup", "RS256", fx.rsa_pub), -1);
	auth_jwt_keyring_free(kr);
}

static void test_keyring_checks_public_pems(void **state)
{
	auth_jwt_keyring_t *kr = auth_jwt_keyring_new();

	(void)state;
	assert_int_equal(add_str(kr, "r", "RS256", "not a pem at all, but long enough to pass"),
			 -1);
	assert_int_equal(add_pem(kr, "r", "RS256", fx.rsa_priv), -1); /* verification only */
	assert_int_equal(add_pem(kr, "r", "RS256", fx.ec_pub), -1);
	assert_int_equal(add_pem(kr, "r", "RS256", fx.rsa1024_pub), -1);
	assert_int_equal(add_pem(kr, "r", "RS256", fx.rsapss_pub), -1);
	assert_int_equal(add_pem(kr, "e", "ES256", fx.rsa_pub), -1);
	assert_int_equal(add_pem(kr, "e", "ES256", fx.ec_priv), -1);
	assert_int_equal(add_pem(kr, "r", "RS256", fx.rsa_pub), 0);
	assert_int_equal(add_pem(kr, "e", "ES256", fx.ec_pub), 0);
	auth_jwt_keyring_free(kr);
}

/* ---- accepted tokens ---- */

static void test_valid_hs256(void **state)
{
	auth_claims_t c;

	(void)state;
	c = expect(tok_with(NULL), NULL);
	assert_int_equal(c.user_id, 42);
	assert_int_equal(c.ver, 3);
	assert_int_equal(c.exp, NOW + 900);
	assert_int_equal(c.iat, NOW);
	assert_int_equal(c.nbf, NOW);
	assert_string_equal(c.kid, "hs1");

	c = expect(tok_with("{\"iat\":null,\"nbf\":null,\"sub\":\"9223372036854775807\"}"), NULL);
	assert_int_equal(c.user_id, INT64_MAX);
	assert_int_equal(c.iat, 0);
	assert_int_equal(c.nbf, 0);
	/* typ is optional. */
	{
		char *pay = claims(NULL);

		expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", pay, HS1), NULL);
		free(pay);
	}
}

static void test_kid_selects_key(void **state)
{
	char *pay = claims(NULL);
	auth_claims_t c;

	(void)state;
	c = expect(sign_hs("{\"alg\":\"HS256\"}", pay, HS1), NULL);
	assert_string_equal(c.kid, "hs1"); /* no kid: the first key */
	c = expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"hs2\"}", pay, HS2), NULL);
	assert_string_equal(c.kid, "hs2");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\"}", pay, HS2), "bad_signature");
	expect(sign_hs("{\"alg\":\"HS256\"}", pay, HS2), "bad_signature");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"nope\"}", pay, HS1), "unknown_kid");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"\"}", pay, HS1), "unknown_kid");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"HS1\"}", pay, HS1), "unknown_kid");
	free(pay);
}

static void test_rs256_and_es256_accepted(void **state)
{
	char *pay = claims(NULL);
	auth_claims_t c;
	char *tok;

	(void)state;
	c = expect(libjwt_tok(JWT_ALG_RS256, fx.rsa_priv, "idp", pay), NULL);
	assert_string_equal(c.kid, "idp");
	assert_int_equal(c.user_id, 42);
	c = expect(libjwt_tok(JWT_ALG_ES256, fx.ec_priv, "ec", pay), NULL);
	assert_string_equal(c.kid, "ec");

	expect(libjwt_tok(JWT_ALG_RS256, fx.rsa2_priv, "idp", pay), "bad_signature");
	/* No kid means the default key, which is HS256. */
	expect(libjwt_tok(JWT_ALG_RS256, fx.rsa_priv, NULL, pay), "alg_mismatch");
	/* An RS256 token presented under an HS kid, and across RS/ES. */
	expect(libjwt_tok(JWT_ALG_RS256, fx.rsa_priv, "hs1", pay), "alg_mismatch");
	expect(libjwt_tok(JWT_ALG_ES256, fx.ec_priv, "idp", pay), "alg_mismatch");

	/*
	 * libjwt ignores the unused low bits of the last signature character,
	 * so this respelling of a valid RS256 token verifies in libjwt; we
	 * insist on the canonical encoding.
	 */
	tok = libjwt_tok(JWT_ALG_RS256, fx.rsa_priv, "idp", pay);
	assert_int_equal(strlen(strrchr(tok, '.') + 1) % 4, 2); /* 256 bytes: 4 spare bits */
	set_spare_bits(tok);
	expect(tok, "bad_signature");
	free(pay);
}

/* ---- algorithm pinning ---- */

static void test_alg_none_rejected(void **state)
{
	static const char *const hdrs[] = {
	    "{\"alg\":\"none\"}",
	    "{\"alg\":\"none\",\"typ\":\"JWT\"}",
	    "{\"alg\":\"none\",\"kid\":\"hs1\"}",
	    "{\"alg\":\"NONE\"}",
	    "{\"alg\":\"None\",\"kid\":\"hs1\"}",
	    "{\"alg\":\"none\",\"kid\":\"idp\"}",
	};
	char *pay = claims(NULL);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		/* Without a signature, with a garbage one, and with a real HMAC. */
		expect(unsigned_tok(hdrs[i], pay, ""), "alg_mismatch");
		expect(unsigned_tok(hdrs[i], pay, "c2lnbmF0dXJl"), "alg_mismatch");
		expect(sign_hs(hdrs[i], pay, HS1), "alg_mismatch");
	}
	free(pay);
}

static void test_alg_case_games(void **state)
{
	char *pay = claims(NULL);

	(void)state;
	/* libjwt 1.10.2 compares alg with strcasecmp: "hs256" verifies there. */
	expect(sign_hs("{\"alg\":\"hs256\",\"kid\":\"hs1\"}", pay, HS1), "alg_mismatch");
	expect(sign_hs("{\"alg\":\"Hs256\"}", pay, HS1), "alg_mismatch");
	expect(sign_hs("{\"alg\":\"HS256 \",\"kid\":\"hs1\"}", pay, HS1), "alg_mismatch");
	expect(sign_hs("{\"alg\":\"HS384\",\"kid\":\"hs1\"}", pay, HS1), "alg_mismatch");
	free(pay);
}

static void test_hs_rs_confusion(void **state)
{
	char *pay = claims(NULL);

	(void)state;
	/*
	 * HS256 HMAC'd with the RSA public key PEM as the secret, under the RS
	 * key's kid: libjwt's jwt_decode(tok, pem) accepts exactly this.
	 */
	expect(sign_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"idp\"}", pay, fx.rsa_pub),
	       "alg_mismatch");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"ec\"}", pay, fx.ec_pub), "alg_mismatch");
	free(pay);
}

static void test_decoded_alg_rechecked(void **state)
{
	(void)state;
	force_alg_none = 1;
	expect(tok_with(NULL), "decoded_alg_mismatch");
	force_alg_none = 0;
	expect(tok_with(NULL), NULL);
}

/* ---- signature and shape ---- */

static void test_tampered_payload(void **state)
{
	char *tok = tok_with(NULL);
	char *good = claims(NULL);
	char *evil = claims("{\"sub\":\"1\"}");
	char *g = b64url(good, strlen(good));
	char *e = b64url(evil, strlen(evil));

	(void)state;
	expect(replace(tok, g, e), "bad_signature");
	free(good);
	free(evil);
	free(g);
	free(e);
}

static void test_tampered_signature(void **state)
{
	char *tok = tok_with(NULL);
	char *sig = strrchr(tok, '.') + 1;

	(void)state;
	sig[5] = sig[5] == 'A' ? 'B' : 'A';
	expect(tok, "bad_signature");

	tok = tok_with(NULL);
	sig = strrchr(tok, '.') + 1;
	sig[0] = sig[0] == 'A' ? 'B' : 'A';
	expect(tok, "bad_signature");

	tok = tok_with(NULL);
	expect(str("%sAAAA", tok), "bad_signature");
	free(tok);
}

static void test_truncated_token(void **state)
{
	char *tok;
	char *dot;

	(void)state;
	tok = tok_with(NULL);
	tok[strlen(tok) - 1] = '\0';
	expect(tok, "bad_signature");

	tok = tok_with(NULL);
	tok[strlen(tok) - 4] = '\0';
	expect(tok, "bad_signature");

	tok = tok_with(NULL);
	dot = strrchr(tok, '.');
	dot[1] = '\0';
	expect(tok, "bad_signature"); /* "h.p." */

	tok = tok_with(NULL);
	dot = strrchr(tok, '.');
	dot[0] = '\0';
	expect(tok, "malformed"); /* "h.p" */

	tok = tok_with(NULL);
	dot = strchr(tok, '.');
	dot[1] = '\0';
	expect(tok, "malformed"); /* "h." */

	expect(strdup(""), "malformed");
}

static void test_malformed_shapes(void **state)
{
	static const char *const bad[] = {"abc",  "a.b", "a.b.c.d", ".b.c",
					  "a..c", "..",	 "...",	    "."};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(str("%s", bad[i]), "malformed");
}

static void test_bad_charset(void **state)
{
	static const char bad[] = {'+', '/', '=', ' ', '\t', '"', '\x80', '\xff', '%'};
	char *tok;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad); i++) {
		tok = tok_with(NULL);
		tok[10] = bad[i]; /* in the header */
		expect(tok, "bad_charset");
		tok = tok_with(NULL);
		tok[strlen(tok) - 3] = bad[i]; /* in the signature */
		expect(tok, "bad_charset");
	}
	/* An embedded NUL inside the given length. */
	tok = tok_with(NULL);
	n = strlen(tok);
	tok[n - 3] = '\0';
	expect_at(tok, n, &POLICY, NOW, "bad_charset");
}

static void test_too_long(void **state)
{
	const size_t big = 20u * 1024 * 1024;
	char *under = NULL;
	char *over = NULL;
	char *hdr;
	const char *tok = NULL;
	size_t len = 0, pad;
	auth_claims_t out;
	const char *why = NULL;

	(void)state;
	/* Validly signed tokens right under and right over the 8 KiB cap. */
	for (pad = 5500; over == NULL; pad++) {
		char *patch = str("{\"pad\":\"%0*d\"}", (int)pad, 0);
		char *t = tok_with(patch);

		free(patch);
		if (strlen(t) <= AUTH_JWT_MAX_LEN) {
			free(under);
			under = t;
		} else {
			over = t;
		}
	}
	assert_true(strlen(under) >= AUTH_JWT_MAX_LEN - 3);
	assert_true(strlen(over) <= AUTH_JWT_MAX_LEN + 3);

	hdr = str("Bearer %s", under);
	assert_int_equal(auth_jwt_from_header(hdr, &tok, &len), 0);
	assert_int_equal(len, strlen(under));
	free(hdr);
	hdr = str("Bearer %s", over);
	assert_int_equal(auth_jwt_from_header(hdr, &tok, &len), -1);
	free(hdr);
	expect(under, NULL);
	expect(over, "too_long");

	/* 20 MB: must be refused before anything walks or decodes it. */
	hdr = malloc(big + 1);
	assert_non_null(hdr);
	memcpy(hdr, "Bearer ", 7);
	memset(hdr + 7, 'e', big - 7);
	hdr[1000] = '.';
	hdr[big - 100] = '.';
	hdr[big] = '\0';
	assert_int_equal(auth_jwt_from_header(hdr, &tok, &len), -1);
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, hdr + 7, big - 7, NOW, &out, &why), -1);
	assert_string_equal(why, "too_long");
	free(hdr);
}

/* ---- header rules ---- */

static void test_duplicate_header_keys(void **state)
{
	char *pay = claims(NULL);

	(void)state;
	/* With last-wins parsing this is a valid HS256 token. */
	expect(sign_hs("{\"alg\":\"none\",\"alg\":\"HS256\",\"kid\":\"hs1\"}", pay, HS1),
	       "bad_header");
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"idp\",\"kid\":\"hs1\"}", pay, HS1),
	       "bad_header");
	free(pay);
}

static void test_header_types(void **state)
{
	static const char *const bad[] = {
	    "{\"kid\":\"hs1\"}",
	    "{\"alg\":256,\"kid\":\"hs1\"}",
	    "{\"alg\":null,\"kid\":\"hs1\"}",
	    "{\"alg\":[\"HS256\"],\"kid\":\"hs1\"}",
	    "{\"alg\":\"HS256\",\"kid\":1}",
	    "{\"alg\":\"HS256\",\"kid\":[\"hs1\"]}",
	    "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":5}",
	    "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"at+jwt\"}",
	    "{\"alg\":\"HS256\",\"kid\":\"hs1\",\"crit\":[\"exp\"]}",
	    "[\"HS256\"]",
	    "\"HS256\"",
	    "not json",
	    "{\"alg\":\"HS256\",\"kid\":\"hs1\"",
	};
	char *pay = claims(NULL);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(sign_hs(bad[i], pay, HS1), "bad_header");
	/* typ "jwt" in any case is fine (libjwt's rule). */
	expect(sign_hs("{\"alg\":\"HS256\",\"kid\":\"hs1\",\"typ\":\"jwt\"}", pay, HS1), NULL);

	/* Bytes after a NUL: libjwt's json_loads stops at the NUL, we don't. */
	{
		static const char nul_hdr[] = "{\"alg\":\"HS256\",\"kid\":\"hs1\"}\0{";

		expect(sign_raw(nul_hdr, sizeof(nul_hdr) - 1, pay, strlen(pay), HS1, strlen(HS1)),
		       "bad_header");
	}

	/* Non-canonical base64url (a spare bit set), validly signed. */
	{
		static const char odd_hdr[] = "{\"alg\":\"HS256\",\"kid\":\"hs1\" }"; /* 28 bytes */
		char *p64 = b64url(pay, strlen(pay));
		char *h = b64url(odd_hdr, strlen(odd_hdr));
		char *tok;

		tok = sign_segments(h, p64, HS1, strlen(HS1));
		expect(tok, NULL); /* canonical: fine */
		set_spare_bits(h);
		tok = sign_segments(h, p64, HS1, strlen(HS1));
		expect(tok, "bad_header");
		free(h);

		/* A segment of length 4k+1 (an extra zero sextet), validly signed. */
		h = b64url(HDR_HS1, strlen(HDR_HS1));
		assert_int_equal(strlen(h) % 4, 0);
		tok = str("%sA", h);
		free(h);
		h = tok;
		tok = sign_segments(h, p64, HS1, strlen(HS1));
		expect(tok, "bad_header");
		free(h);
		free(p64);
	}
	free(pay);
}

/* ---- claim rules ---- */

static void test_expiry_and_leeway(void **state)
{
	auth_jwt_policy_t p = POLICY;

	(void)state;
	expect(tok_with("{\"exp\":1699999941}"), NULL);		 /* exp = now-59 */
	expect(tok_with("{\"exp\":1699999970}"), NULL);		 /* exp = now-30 */
	expect(tok_with("{\"exp\":1699999940}"), "expired");	 /* exp = now-60 */
	expect(tok_with("{\"exp\":1699999939}"), "expired");	 /* exp = now-61 */
	expect(tok_with("{\"exp\":9223372036854775807}"), NULL); /* no overflow */
	expect(tok_with("{\"exp\":-9223372036854775807}"), "expired");

	p.leeway = 0;
	{
		char *t = tok_with("{\"exp\":1699999970}");

		expect_at(t, strlen(t), &p, NOW, "expired");
		t = tok_with("{\"exp\":1700000001}");
		expect_at(t, strlen(t), &p, NOW, NULL);
		t = tok_with("{\"exp\":1700000000}");
		expect_at(t, strlen(t), &p, NOW, "expired");
	}
	/* Leeway is capped at 60 s and a negative one counts as 0. */
	p.leeway = 3600;
	{
		char *t = tok_with("{\"exp\":1699999939}");

		expect_at(t, strlen(t), &p, NOW, "expired");
	}
	p.leeway = -100;
	{
		char *t = tok_with("{\"exp\":1700000000}");

		expect_at(t, strlen(t), &p, NOW, "expired");
	}
}

static void test_nbf_and_iat(void **state)
{
	auth_jwt_policy_t p = POLICY;
	char *t;

	(void)state;
	expect(tok_with("{\"nbf\":1700000060}"), NULL);
	expect(tok_with("{\"nbf\":1700000061}"), "not_yet_valid");
	expect(tok_with("{\"iat\":1700000060}"), NULL);
	expect(tok_with("{\"iat\":1700000061}"), "issued_in_future");
	expect(tok_with("{\"nbf\":9223372036854775807}"), "not_yet_valid");

	/* now + leeway saturates instead of overflowing. */
	t = tok_with("{\"exp\":9223372036854775807,\"iat\":9223372036854775807}");
	expect_at(t, strlen(t), &p, (time_t)(INT64_MAX - 10), NULL);

	p.leeway = 3600;
	t = tok_with("{\"nbf\":1700000061}");
	expect_at(t, strlen(t), &p, NOW, "not_yet_valid");
	t = tok_with("{\"iat\":1700000061}");
	expect_at(t, strlen(t), &p, NOW, "issued_in_future");
	p.leeway = 0;
	t = tok_with("{\"nbf\":1700000001}");
	expect_at(t, strlen(t), &p, NOW, "not_yet_valid");
	t = tok_with("{\"iat\":1700000001}");
	expect_at(t, strlen(t), &p, NOW, "issued_in_future");
}

static void test_claim_types(void **state)
{
	static const char *const bad[] = {
	    "{\"exp\":\"1700000900\"}",
	    "{\"exp\":1700000900.0}",
	    "{\"exp\":1.7e9}",
	    "{\"exp\":null}",
	    "{\"exp\":true}",
	    "{\"exp\":[1700000900]}",
	    "{\"sub\":42}",
	    "{\"sub\":null}",
	    "{\"sub\":\"\"}",
	    "{\"sub\":\"0\"}",
	    "{\"sub\":\"-1\"}",
	    "{\"sub\":\"+1\"}",
	    "{\"sub\":\"042\"}",
	    "{\"sub\":\" 42\"}",
	    "{\"sub\":\"42 \"}",
	    "{\"sub\":\"4 2\"}",
	    "{\"sub\":\"42a\"}",
	    "{\"sub\":\"0x2a\"}",
	    "{\"sub\":\"9223372036854775808\"}",
	    "{\"sub\":\"99999999999999999999\"}",
	    "{\"sub\":\"user@example.com\"}",
	    "{\"ver\":\"3\"}",
	    "{\"ver\":3.0}",
	    "{\"ver\":-1}",
	    "{\"ver\":null}",
	    "{\"nbf\":\"1700000000\"}",
	    "{\"nbf\":1700000000.5}",
	    "{\"iat\":\"1700000000\"}",
	    "{\"iat\":1.7e9}",
	    "{\"iat\":false}",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect(tok_with(bad[i]), "bad_claims");
	expect(tok_with("{\"ver\":0}"), NULL);
}

static void test_payload_shape(void **state)
{
	char *pay = claims(NULL);
	char *dup;
	char *p;

	(void)state;
	/* Duplicate claim names: libjwt lets the last one win. */
	dup = str("{\"sub\":\"1\",%s", pay + 1);
	expect(sign_hs(HDR_HS1, dup, HS1), "bad_claims");
	free(dup);
	dup = str("{\"exp\":1,%s", pay + 1);
	expect(sign_hs(HDR_HS1, dup, HS1), "bad_claims");
	free(dup);

	/* libjwt 1.10.2 takes an array as the claim set. */
	expect(sign_hs(HDR_HS1, "[1,2]", HS1), "bad_claims");
	/* A NUL and more JSON: libjwt would read only the first part. */
	dup = str("%s#{\"sub\":\"1\"}", pay);
	dup[strlen(pay)] = '\0';
	expect(sign_raw(HDR_HS1, strlen(HDR_HS1), dup,
			strlen(pay) + 1 + strlen(dup + strlen(pay) + 1), HS1, strlen(HS1)),
	       "bad_claims");
	free(dup);

	/* Non-canonical base64url (a spare bit set) in the signed payload. */
	free(pay);
	pay = claims("{\"x\":\"\"}");
	if (strlen(pay) % 3 == 0) {
		free(pay);
		pay = claims("{\"x\":\"y\"}");
	}
	p = b64url(pay, strlen(pay));
	{
		char *h = b64url(HDR_HS1, strlen(HDR_HS1));
		char *tok = sign_segments(h, p, HS1, strlen(HS1));

		expect(tok, NULL);
		set_spare_bits(p);
		tok = sign_segments(h, p, HS1, strlen(HS1));
		expect(tok, "bad_claims");
		free(h);
	}
	free(p);
	free(pay);
}

static void test_libjwt_grants_must_match_payload(void **state)
{
	char *other = claims("{\"sub\":\"7\"}");

	(void)state;
	fake_grants = other;
	expect(tok_with(NULL), "bad_claims");
	fake_grants = NULL;
	free(other);
}

static void test_token_use(void **state)
{
	(void)state;
	expect(tok_with("{\"token_use\":null}"), "wrong_token_use");
	expect(tok_with("{\"token_use\":\"refresh\"}"), "wrong_token_use");
	expect(tok_with("{\"token_use\":\"Access\"}"), "wrong_token_use");
	expect(tok_with("{\"token_use\":\"access \"}"), "wrong_token_use");
	expect(tok_with("{\"token_use\":1}"), "wrong_token_use");
	expect(tok_with("{\"token_use\":[\"access\"]}"), "wrong_token_use");
}

static void test_issuer(void **state)
{
	auth_jwt_policy_t p = POLICY;
	char *t;

	(void)state;
	expect(tok_with("{\"iss\":null}"), "wrong_issuer");
	expect(tok_with("{\"iss\":\"https://evil.test\"}"), "wrong_issuer");
	expect(tok_with("{\"iss\":\"HTTPS://dialflow.test\"}"), "wrong_issuer");
	expect(tok_with("{\"iss\":\"https://dialflow.test/\"}"), "wrong_issuer");
	expect(tok_with("{\"iss\":123}"), "wrong_issuer");
	expect(tok_with("{\"iss\":[\"https://dialflow.test\"]}"), "wrong_issuer");

	p.issuer = NULL;
	t = tok_with("{\"iss\":\"https://evil.test\"}");
	expect_at(t, strlen(t), &p, NOW, NULL);
	p.issuer = "";
	t = tok_with("{\"iss\":null}");
	expect_at(t, strlen(t), &p, NOW, NULL);
}

static void test_audience(void **state)
{
	auth_jwt_policy_t p = POLICY;
	char *t;

	(void)state;
	expect(tok_with("{\"aud\":[\"web\",\"dialflow-api\"]}"), NULL);
	expect(tok_with("{\"aud\":[\"dialflow-api\"]}"), NULL);
	expect(tok_with("{\"aud\":\"web\"}"), "wrong_audience");
	expect(tok_with("{\"aud\":\"DIALFLOW-API\"}"), "wrong_audience");
	expect(tok_with("{\"aud\":[\"web\"]}"), "wrong_audience");
	expect(tok_with("{\"aud\":[]}"), "wrong_audience");
	expect(tok_with("{\"aud\":[\"dialflow-api\",5]}"), "wrong_audience");
	expect(tok_with("{\"aud\":[[\"dialflow-api\"]]}"), "wrong_audience");
	expect(tok_with("{\"aud\":{\"a\":\"dialflow-api\"}}"), "wrong_audience");
	expect(tok_with("{\"aud\":5}"), "wrong_audience");
	expect(tok_with("{\"aud\":null}"), "wrong_audience");

	p.audience = NULL;
	t = tok_with("{\"aud\":5}");
	expect_at(t, strlen(t), &p, NOW, NULL);
	p.audience = "";
	t = tok_with("{\"aud\":null}");
	expect_at(t, strlen(t), &p, NOW, NULL);
}

static void test_verify_arguments(void **state)
{
	auth_jwt_keyring_t *empty = auth_jwt_keyring_new();
	char *tok = tok_with(NULL);
	auth_claims_t out;
	const char *why = NULL;

	(void)state;
	/* An empty ring has no default key. */
	assert_int_equal(auth_jwt_verify(empty, &POLICY, tok, strlen(tok), NOW, &out, &why), -1);
	assert_string_equal(why, "unknown_kid");
	why = NULL;
	assert_int_equal(auth_jwt_verify(NULL, &POLICY, tok, strlen(tok), NOW, &out, &why), -1);
	assert_non_null(why);
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, tok, strlen(tok), NOW, NULL, &why), -1);
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, NULL, 10, NOW, &out, &why), -1);
	assert_string_equal(why, "malformed");
	/* NULL why and NULL policy are tolerated; no policy = no iss/aud, leeway 0. */
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, tok, strlen(tok), NOW, &out, NULL), 0);
	assert_int_equal(auth_jwt_verify(fx.kr, NULL, tok, strlen(tok), NOW, &out, &why), 0);
	assert_int_equal(auth_jwt_verify(fx.kr, NULL, tok, strlen(tok), NOW + 900, &out, &why), -1);
	assert_string_equal(why, "expired");
	auth_jwt_keyring_free(empty);
	free(tok);
}

/* ---- Authorization header ---- */

static void test_bearer_parsing(void **state)
{
	static const char *const bad[] = {
	    "",
	    "Bearer",
	    "Bearer ",
	    "Bearer  a.b.c",
	    "Bearer\ta.b.c",
	    "Bearera.b.c",
	    " Bearer a.b.c",
	    "Bearer a.b.c ",
	    "Bearer a.b.c\n",
	    "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
	    "Bearer: a.b.c",
	    "Token a.b.c",
	    "Bearor a.b.c",
	    "Bearer\240a.b.c", /* NBSP */
	    "MAC123 a.b.c",
	    "Bearer a.b",
	    "Bearer a.b.c.d",
	    "Bearer .b.c",
	    "Bearer a..c",
	    "Bearer a.b+c.d",
	    "Bearer a.b/c",
	    "Bearer a.b.c=",
	    "Bearer a.b.c,Bearer d.e.f",
	};
	const char *tok = NULL;
	size_t len = 0, i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (auth_jwt_from_header(bad[i], &tok, &len) != -1)
			fail_msg("accepted header #%zu", i);
	}
	assert_int_equal(auth_jwt_from_header(NULL, &tok, &len), -1);
	assert_int_equal(auth_jwt_from_header("Bearer a.b.c", NULL, &len), -1);
	assert_int_equal(auth_jwt_from_header("Bearer a.b.c", &tok, NULL), -1);

	{
		static const char *const good[] = {"Bearer eyJ.eyJ.sig", "bearer eyJ.eyJ.sig",
						   "BEARER eyJ.eyJ.sig", "BeArEr eyJ.eyJ.sig"};

		for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
			tok = NULL;
			assert_int_equal(auth_jwt_from_header(good[i], &tok, &len), 0);
			assert_ptr_equal(tok, good[i] + 7);
			assert_int_equal(len, 11);
		}
	}
	/* The signature may be empty at this stage; verification refuses it. */
	assert_int_equal(auth_jwt_from_header("Bearer a-_0.Z9.", &tok, &len), 0);
	assert_int_equal(len, 8);
}

static void test_header_then_verify(void **state)
{
	char *tok = tok_with(NULL);
	char *hdr = str("bearer %s", tok);
	const char *t = NULL;
	size_t len = 0;
	auth_claims_t out;
	const char *why = NULL;

	(void)state;
	assert_int_equal(auth_jwt_from_header(hdr, &t, &len), 0);
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, t, len, NOW, &out, &why), 0);
	assert_int_equal(out.user_id, 42);
	free(hdr);
	free(tok);
}

/* ---- issuance ---- */

static void test_issue_roundtrip(void **state)
{
	char *a = auth_jwt_issue(fx.kr, &POLICY, "hs2", 7, 5, 900, NOW);
	char *b = auth_jwt_issue(fx.kr, &POLICY, NULL, 7, 5, 900, NOW);
	char *pay;
	const char *bjti;
	jwt_t *j = NULL;
	json_t *c;
	auth_claims_t out;
	size_t i;

	(void)state;
	assert_non_null(a);
	assert_non_null(b);

	/* Claims as issued, read back through libjwt (signature checked with HS2). */
	assert_int_equal(jwt_decode(&j, a, (const unsigned char *)HS2, (int)strlen(HS2)), 0);
	assert_string_equal(jwt_get_header(j, "kid"), "hs2");
	pay = jwt_get_grants_json(j, NULL);
	c = json_loads(pay, 0, NULL);
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "7");
	assert_int_equal(json_integer_value(json_object_get(c, "ver")), 5);
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), NOW);
	assert_int_equal(json_integer_value(json_object_get(c, "nbf")), NOW);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), NOW + 900);
	assert_string_equal(json_string_value(json_object_get(c, "token_use")), "access");
	assert_string_equal(json_string_value(json_object_get(c, "iss")), ISS);
	assert_string_equal(json_string_value(json_object_get(c, "aud")), AUD);
	assert_int_equal(json_string_length(json_object_get(c, "jti")), 32);
	for (i = 0; i < 32; i++)
		assert_non_null(
		    strchr("0123456789abcdef", json_string_value(json_object_get(c, "jti"))[i]));
	jwt_free(j);
	j = NULL;
	free(pay);

	/* jti differs between tokens. */
	assert_int_equal(jwt_decode(&j, b, (const unsigned char *)HS1, (int)strlen(HS1)), 0);
	assert_string_equal(jwt_get_header(j, "kid"), "hs1");
	bjti = jwt_get_grant(j, "jti");
	assert_non_null(bjti);
	assert_string_not_equal(bjti, json_string_value(json_object_get(c, "jti")));
	jwt_free(j);
	j = NULL;
	json_decref(c);

	/* And our verifier accepts them, until exp + leeway. */
	assert_int_equal(auth_jwt_verify(fx.kr, &POLICY, a, strlen(a), NOW, &out, NULL), 0);
	assert_int_equal(out.user_id, 7);
	assert_int_equal(out.ver, 5);
	assert_int_equal(out.exp, NOW + 900);
	assert_string_equal(out.kid, "hs2");
	expect_at(str("%s", a), strlen(a), &POLICY, NOW + 959, NULL);
	expect_at(str("%s", a), strlen(a), &POLICY, NOW + 960, "expired");
	expect(b, NULL);

	/* No iss/aud in the policy: none issued. */
	{
		const auth_jwt_policy_t bare = {NULL, "", 60};
		char *t = auth_jwt_issue(fx.kr, &bare, "hs1", 7, 0, 60, NOW);

		assert_non_null(t);
		assert_int_equal(jwt_decode(&j, t, (const unsigned char *)HS1, (int)strlen(HS1)),
				 0);
		assert_null(jwt_get_grant(j, "iss"));
		assert_null(jwt_get_grant(j, "aud"));
		jwt_free(j);
		expect_at(t, strlen(t), &bare, NOW, NULL);
	}
	free(a);
}

static void test_issue_refuses(void **state)
{
	(void)state;
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "idp", 7, 0, 900, NOW)); /* RS: verify only */
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "ec", 7, 0, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "nope", 7, 0, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 0, 0, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", -7, 0, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, -1, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, 0, 0, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, 0, -5, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, 0, 365L * 86400, NOW));
	assert_null(auth_jwt_issue(NULL, &POLICY, "hs1", 7, 0, 900, NOW));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, 0, 900, 0));
	assert_null(auth_jwt_issue(fx.kr, &POLICY, "hs1", 7, 0, 900, (time_t)(INT64_MAX - 10)));
	/* The bounds themselves are fine. */
	{
		char *t = auth_jwt_issue(fx.kr, &POLICY, "hs1", 1, 0, 7L * 86400, NOW);

		assert_non_null(t);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keyring_refuses_bad_keys),
	    cmocka_unit_test(test_keyring_refuses_bad_alg_and_kid),
	    cmocka_unit_test(test_keyring_checks_public_pems),
	    cmocka_unit_test(test_valid_hs256),
	    cmocka_unit_test(test_kid_selects_key),
	    cmocka_unit_test(test_rs256_and_es256_accepted),
	    cmocka_unit_test(test_alg_none_rejected),
	    cmocka_unit_test(test_alg_case_games),
	    cmocka_unit_test(test_hs_rs_confusion),
	    cmocka_unit_test(test_decoded_alg_rechecked),
	    cmocka_unit_test(test_tampered_payload),
	    cmocka_unit_test(test_tampered_signature),
	    cmocka_unit_test(test_truncated_token),
	    cmocka_unit_test(test_malformed_shapes),
	    cmocka_unit_test(test_bad_charset),
	    cmocka_unit_test(test_too_long),
	    cmocka_unit_test(test_duplicate_header_keys),
	    cmocka_unit_test(test_header_types),
	    cmocka_unit_test(test_expiry_and_leeway),
	    cmocka_unit_test(test_nbf_and_iat),
	    cmocka_unit_test(test_claim_types),
	    cmocka_unit_test(test_payload_shape),
	    cmocka_unit_test(test_libjwt_grants_must_match_payload),
	    cmocka_unit_test(test_token_use),
	    cmocka_unit_test(test_issuer),
	    cmocka_unit_test(test_audience),
	    cmocka_unit_test(test_verify_arguments),
	    cmocka_unit_test(test_bearer_parsing),
	    cmocka_unit_test(test_header_then_verify),
	    cmocka_unit_test(test_issue_roundtrip),
	    cmocka_unit_test(test_issue_refuses),
	};

	return cmocka_run_group_tests_name("jwt", tests, group_setup, group_teardown);
}
