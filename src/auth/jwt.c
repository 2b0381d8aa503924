/*
 * jwt.c - bearer token verification and issuance around libjwt 1.10.2.
 *
 * libjwt 1.10.2 is used for exactly one thing: checking the signature with a
 * key we chose. Everything else is done here, before or after it:
 *
 *   - length (<= 8 KiB, libjwt alloca()s it) and charset are checked first;
 *   - the header is base64url-decoded and parsed by us, duplicate keys
 *     rejected, so `alg`/`kid`/`typ` are read from the same bytes libjwt sees;
 *   - the key is found by `kid` in an in-memory ring and pins the algorithm:
 *     the header `alg` must equal the key's exactly (libjwt trusts the header
 *     and compares case-insensitively), so `none`, HS/RS confusion and "hs256"
 *     never reach jwt_decode(); after decoding, jwt_get_alg() is re-checked;
 *   - jwt_decode() is always given a non-empty key (a NULL or empty key makes
 *     libjwt skip the signature);
 *   - the payload is decoded by us with duplicate keys rejected (libjwt lets
 *     the last one win) and must equal what libjwt verified; every claim is
 *     then read through jansson with explicit types, because
 *     jwt_get_grant_int() returns 0 with errno 0 for a real or a string.
 *
 * The token is never logged or copied anywhere except one scrubbed,
 * NUL-terminated buffer handed to libjwt. Failure reasons are static strings.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "dialflow/auth_jwt.h"

#define KID_MAX	     63	   /* bytes, so it fits auth_claims_t.kid with its NUL */
#define KEY_MAX_LEN  16384 /* an RSA-8192 public PEM is ~1.5 KiB */
#define RING_MAX     16	   /* current + next + an IdP key or two, with room */
#define RSA_MIN_BITS 2048
#define TTL_MAX	     (7L * 24 * 3600) /* access tokens are minutes; a week is a bug */

struct ring_key {
	char kid[KID_MAX + 1];
	jwt_alg_t alg;
	unsigned char *key; /* HS: the secret; RS/ES: a public key PEM */
	size_t len;
	size_t sig_len; /* decoded signature bytes: 32, 64 (ES256 R||S), or the RSA modulus */
};

struct auth_jwt_keyring {
	struct ring_key keys[RING_MAX];
	size_t n; /* keys[0] is the default for tokens without `kid` */
};

/* Where the two dots are; filled by check_shape(). */
struct token_shape {
	size_t dot1;
	size_t dot2;
};

auth_jwt_keyring_t *auth_jwt_keyring_new(void)
{
	return calloc(1, sizeof(auth_jwt_keyring_t));
}

void auth_jwt_keyring_free(auth_jwt_keyring_t *kr)
{
	size_t i;

	if (kr == NULL)
		return;
	for (i = 0; i < kr->n; i++) {
		OPENSSL_cleanse(kr->keys[i].key, kr->keys[i].len);
		free(kr->keys[i].key);
	}
	OPENSSL_cleanse(kr, sizeof(*kr));
	free(kr);
}

/* The only algorithms a key may carry; anything else (none, HS384, PS256, ...) is refused. */
static jwt_alg_t alg_from_name(const char *alg)
{
	if (alg == NULL)
		return JWT_ALG_INVAL;
	if (strcmp(alg, "HS256") == 0)
		return JWT_ALG_HS256;
	if (strcmp(alg, "RS256") == 0)
		return JWT_ALG_RS256;
	if (strcmp(alg, "ES256") == 0)
		return JWT_ALG_ES256;
	return JWT_ALG_INVAL;
}

/* The exact spelling a header must carry for alg. */
static const char *alg_name(jwt_alg_t alg)
{
	switch (alg) {
	case JWT_ALG_HS256:
		return "HS256";
	case JWT_ALG_RS256:
		return "RS256";
	case JWT_ALG_ES256:
		return "ES256";
	default:
		return NULL;
	}
}

/* kid: 1..63 printable ASCII bytes, no spaces (it ends up in log lines). */
static int kid_ok(const char *kid)
{
	size_t i, n;

	if (kid == NULL)
		return 0;
	n = strnlen(kid, KID_MAX + 1);
	if (n == 0 || n > KID_MAX)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)kid[i];

		if (c < 0x21 || c > 0x7e)
			return 0;
	}
	return 1;
}

/*
 * An RS256/ES256 key must be a public key PEM of the right type: RSA of at
 * least 2048 bits, or EC on P-256. A private key PEM is refused (this ring
 * only verifies). Returns the signature size in bytes, or 0 if unusable.
 */
static size_t public_pem_sig_len(jwt_alg_t alg, const unsigned char *key, size_t len)
{
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	char group[64];
	size_t glen = 0;
	size_t sig_len = 0;

	bio = BIO_new_mem_buf(key, (int)len);
	if (bio == NULL)
		goto out;
	pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	if (pkey == NULL)
		goto out;
	if (alg == JWT_ALG_RS256 && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_RSA &&
	    EVP_PKEY_get_bits(pkey) >= RSA_MIN_BITS && EVP_PKEY_get_size(pkey) > 0)
		sig_len = (size_t)EVP_PKEY_get_size(pkey);
	if (alg == JWT_ALG_ES256 && EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
	    (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0))
		sig_len = 64;
out:
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return sig_len;
}

static const struct ring_key *ring_find(const auth_jwt_keyring_t *kr, const char *kid, size_t len)
{
	size_t i;

	for (i = 0; i < kr->n; i++) {
		if (strlen(kr->keys[i].kid) == len && memcmp(kr->keys[i].kid, kid, len) == 0)
			return &kr->keys[i];
	}
	return NULL;
}

int auth_jwt_keyring_add(auth_jwt_keyring_t *kr, const char *kid, const char *alg,
			 const unsigned char *key, size_t key_len)
{
	struct ring_key *k;
	size_t sig_len = 32;
	jwt_alg_t a;
	int rc = -1;

	if (kr == NULL || kr->n >= RING_MAX || !kid_ok(kid))
		goto out;
	if (key == NULL || key_len == 0 || key_len > KEY_MAX_LEN)
		goto out;
	a = alg_from_name(alg);
	if (a == JWT_ALG_INVAL)
		goto out;
	if (a == JWT_ALG_HS256 && key_len < AUTH_JWT_MIN_HS_KEY)
		goto out;
	if (a != JWT_ALG_HS256) {
		sig_len = public_pem_sig_len(a, key, key_len);
		if (sig_len == 0)
			goto out;
	}
	if (ring_find(kr, kid, strlen(kid)) != NULL)
		goto out;

	k = &kr->keys[kr->n];
	k->key = malloc(key_len);
	if (k->key == NULL)
		goto out;
	memcpy(k->key, key, key_len);
	k->len = key_len;
	k->sig_len = sig_len;
	k->alg = a;
	memcpy(k->kid, kid, strlen(kid) + 1);
	kr->n++;
	rc = 0;
out:
	return rc;
}

static int b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict unpadded base64url: rejects padding, foreign bytes, a length of 1
 * mod 4 and non-zero trailing bits (one token, one encoding). Returns a
 * malloc'd, NUL-terminated buffer and its length in *out_len, or NULL.
 */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *out_len)
{
	unsigned char *buf = NULL;
	unsigned char *ret = NULL;
	uint32_t acc = 0;
	int bits = 0;
	size_t i, o = 0;

	if (n == 0 || n % 4 == 1)
		goto out;
	buf = malloc(n / 4 * 3 + 3);
	if (buf == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		int v = b64url_value((unsigned char)s[i]);

		if (v < 0)
			goto out;
		acc = ((acc << 6) | (uint32_t)v) & 0xffffu;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			buf[o++] = (unsigned char)(acc >> bits);
		}
	}
	if ((acc & ((1u << bits) - 1)) != 0)
		goto out;
	buf[o] = '\0';
	*out_len = o;
	ret = buf;
	buf = NULL;
out:
	free(buf);
	return ret;
}

/*
 * Length, charset [A-Za-z0-9_.-], exactly two dots, non-empty header and
 * payload. The signature may be empty here; no pinned algorithm accepts that.
 */
static int check_shape(const char *tok, size_t len, struct token_shape *sh, const char **why)
{
	size_t i, dots = 0;

	if (tok == NULL || len == 0) {
		*why = "malformed";
		return -1;
	}
	if (len > AUTH_JWT_MAX_LEN) {
		*why = "too_long";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)tok[i];

		if (c == '.') {
			if (dots == 0)
				sh->dot1 = i;
			else if (dots == 1)
				sh->dot2 = i;
			dots++;
		} else if (b64url_value(c) < 0) {
			*why = "bad_charset";
			return -1;
		}
	}
	if (dots != 2 || sh->dot1 == 0 || sh->dot2 == sh->dot1 + 1) {
		*why = "malformed";
		return -1;
	}
	return 0;
}

int auth_jwt_from_header(const char *header, const char **tok, size_t *len)
{
	static const char scheme[] = "Bearer ";
	const size_t slen = sizeof(scheme) - 1;
	struct token_shape sh;
	const char *why = NULL;
	size_t n;

	/* Nothing to clean up, so plain returns. */
	if (header == NULL || tok == NULL || len == NULL)
		return -1;
	/* Never walk past what could be valid: a 20 MB header costs 8 KiB of reading. */
	n = strnlen(header, slen + AUTH_JWT_MAX_LEN + 1);
	if (n <= slen || strncasecmp(header, "bearer", slen - 1) != 0 || header[slen - 1] != ' ')
		return -1;
	if (check_shape(header + slen, n - slen, &sh, &why) != 0)
		return -1;
	*tok = header + slen;
	*len = n - slen;
	return 0;
}

/* Equality of a JSON string with a C string, NUL-safe. */
static int json_str_eq(const json_t *v, const char *s)
{
	size_t n = strlen(s);

	return json_is_string(v) && json_string_length(v) == n &&
	       memcmp(json_string_value(v), s, n) == 0;
}

/* `sub`: a positive decimal int64, digits only, no sign, no leading zero. */
static int parse_sub(const json_t *v, int64_t *out)
{
	const char *s;
	size_t i, n;
	int64_t acc = 0;

	if (!json_is_string(v))
		return -1;
	s = json_string_value(v);
	n = json_string_length(v);
	if (n == 0 || n > 19 || s[0] < '1' || s[0] > '9')
		return -1;
	for (i = 0; i < n; i++) {
		int d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = s[i] - '0';
		if (acc > (INT64_MAX - d) / 10)
			return -1;
		acc = acc * 10 + d;
	}
	*out = acc;
	return 0;
}

/*
 * Optional integer claim. Returns 0 and sets *out when present as a JSON
 * integer, 1 when absent (leaves *out alone), -1 for any other type.
 */
static int claim_int(const json_t *claims, const char *name, int64_t *out)
{
	const json_t *v = json_object_get(claims, name);

	if (v == NULL)
		return 1;
	if (!json_is_integer(v))
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

/* `aud`: a string equal to ours, or an array of strings containing it. */
static int audience_ok(const json_t *aud, const char *want)
{
	size_t i;
	const json_t *e;
	int found = 0;

	if (json_is_string(aud))
		return json_str_eq(aud, want);
	if (!json_is_array(aud))
		return 0;
	json_array_foreach(aud, i, e)
	{
		if (!json_is_string(e))
			return 0;
		if (json_str_eq(e, want))
			found = 1;
	}
	return found;
}

/*
 * The claim rules, on the payload libjwt verified. Fills *c (not kid).
 * Returns 0, or -1 with *why set.
 */
static int check_claims(const json_t *claims, const auth_jwt_policy_t *pol, int64_t now,
			auth_claims_t *c, const char **why)
{
	int64_t leeway = 0;
	const char *issuer = pol != NULL ? pol->issuer : NULL;
	const char *audience = pol != NULL ? pol->audience : NULL;
	int r;

	if (pol != NULL && pol->leeway > 0)
		leeway = pol->leeway > AUTH_JWT_LEEWAY ? AUTH_JWT_LEEWAY : pol->leeway;

	*why = "bad_claims";
	if (parse_sub(json_object_get(claims, "sub"), &c->user_id) != 0)
		return -1;
	if (claim_int(claims, "ver", &c->ver) != 0 || c->ver < 0)
		return -1;
	if (claim_int(claims, "exp", &c->exp) != 0)
		return -1;
	r = claim_int(claims, "nbf", &c->nbf);
	if (r < 0)
		return -1;
	r = claim_int(claims, "iat", &c->iat);
	if (r < 0)
		return -1;

	/* now < exp + leeway, without overflowing on a huge exp. */
	if (c->exp <= INT64_MAX - leeway && now >= c->exp + leeway) {
		*why = "expired";
		return -1;
	}
	if (c->nbf > sat_add(now, leeway)) {
		*why = "not_yet_valid";
		return -1;
	}
	if (c->iat > sat_add(now, leeway)) {
		*why = "issued_in_future";
		return -1;
	}
	if (!json_str_eq(json_object_get(claims, "token_use"), "access")) {
		*why = "wrong_token_use";
		return -1;
	}
	if (issuer != NULL && issuer[0] != '\0' &&
	    !json_str_eq(json_object_get(claims, "iss"), issuer)) {
		*why = "wrong_issuer";
		return -1;
	}
	if (audience != NULL && audience[0] != '\0' &&
	    !audience_ok(json_object_get(claims, "aud"), audience)) {
		*why = "wrong_audience";
		return -1;
	}
	*why = NULL;
	return 0;
}

/*
 * Decode and parse one segment as a JSON object, duplicate keys rejected.
 * Embedded NULs fail too (json_loadb sees them; libjwt's json_loads would not).
 */
static json_t *segment_object(const char *s, size_t n)
{
	unsigned char *raw = NULL;
	size_t rlen = 0;
	json_t *obj = NULL;

	raw = b64url_decode(s, n, &rlen);
	if (raw == NULL)
		goto out;
	obj = json_loadb((const char *)raw, rlen, JSON_REJECT_DUPLICATES, NULL);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		obj = NULL;
	}
out:
	free(raw);
	return obj;
}

/*
 * Header rules: an object; `alg` a string; `kid` and `typ`, when present,
 * strings; `typ` "JWT" (libjwt 1.10.2 refuses anything else; say why here);
 * no `crit`, since we understand no extension. Returns the key or NULL.
 */
static const struct ring_key *header_key(const auth_jwt_keyring_t *kr, const json_t *hdr,
					 const char **why)
{
	const json_t *alg = json_object_get(hdr, "alg");
	const json_t *kid = json_object_get(hdr, "kid");
	const json_t *typ = json_object_get(hdr, "typ");
	const struct ring_key *k = NULL;

	*why = "bad_header";
	if (!json_is_string(alg) || (kid != NULL && !json_is_string(kid)))
		return NULL;
	if (typ != NULL && !(json_is_string(typ) && strcasecmp(json_string_value(typ), "JWT") == 0))
		return NULL;
	if (json_object_get(hdr, "crit") != NULL)
		return NULL;

	if (kid != NULL)
		k = ring_find(kr, json_string_value(kid), json_string_length(kid));
	else if (kr->n > 0)
		k = &kr->keys[0];
	if (k == NULL) {
		*why = "unknown_kid";
		return NULL;
	}
	/* Exact and case-sensitive: no none/NONE, no HS256 against an RSA PEM, no "hs256". */
	if (!json_str_eq(alg, alg_name(k->alg))) {
		*why = "alg_mismatch";
		return NULL;
	}
	*why = NULL;
	return k;
}

/* The signature segment is canonical base64url of exactly `want` bytes. */
static int signature_ok(const char *s, size_t n, size_t want)
{
	unsigned char *raw = NULL;
	size_t rlen = 0;
	int ok;

	raw = b64url_decode(s, n, &rlen);
	ok = raw != NULL && rlen == want;
	free(raw);
	return ok;
}

int auth_jwt_verify(const auth_jwt_keyring_t *kr, const auth_jwt_policy_t *pol, const char *tok,
		    size_t len, time_t now, auth_claims_t *out, const char **why)
{
	const char *reason = "internal";
	const struct ring_key *k = NULL;
	struct token_shape sh = {0, 0};
	json_t *hdr = NULL;
	json_t *payload = NULL;
	json_t *grants = NULL;
	char *grants_s = NULL;
	char *tokz = NULL;
	jwt_t *j = NULL;
	auth_claims_t c;
	int rc = -1;

	memset(&c, 0, sizeof(c));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (kr == NULL || out == NULL)
		goto out;
	if (check_shape(tok, len, &sh, &reason) != 0)
		goto out;

	hdr = segment_object(tok, sh.dot1);
	if (hdr == NULL) {
		reason = "bad_header";
		goto out;
	}
	k = header_key(kr, hdr, &reason);
	if (k == NULL)
		goto out;

	/*
	 * libjwt decodes RS/ES signatures leniently (unused trailing bits are
	 * ignored, so one token has several valid spellings): insist on the one
	 * canonical encoding of a signature of the key's size.
	 */
	if (!signature_ok(tok + sh.dot2 + 1, len - sh.dot2 - 1, k->sig_len)) {
		reason = "bad_signature";
		goto out;
	}

	/* libjwt wants a C string; this copy is the only one, and it is scrubbed. */
	tokz = malloc(len + 1);
	if (tokz == NULL)
		goto out;
	memcpy(tokz, tok, len);
	tokz[len] = '\0';
	/* key_len > 0 always: with NULL or 0 libjwt skips the signature check. */
	if (jwt_decode(&j, tokz, k->key, (int)k->len) != 0 || j == NULL) {
		reason = "bad_signature";
		goto out;
	}
	if (jwt_get_alg(j) != k->alg) {
		reason = "decoded_alg_mismatch";
		goto out;
	}

	/* Our own parse (duplicates rejected) must agree with what libjwt verified. */
	payload = segment_object(tok + sh.dot1 + 1, sh.dot2 - sh.dot1 - 1);
	grants_s = jwt_get_grants_json(j, NULL);
	if (payload == NULL || grants_s == NULL) {
		reason = "bad_claims";
		goto out;
	}
	grants = json_loads(grants_s, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(grants) || !json_equal(grants, payload)) {
		reason = "bad_claims";
		goto out;
	}
	if (check_claims(grants, pol, (int64_t)now, &c, &reason) != 0)
		goto out;

	memcpy(c.kid, k->kid, strlen(k->kid) + 1);
	*out = c;
	reason = NULL;
	rc = 0;
out:
	if (tokz != NULL) {
		OPENSSL_cleanse(tokz, len);
		free(tokz);
	}
	free(grants_s);
	json_decref(grants);
	json_decref(payload);
	json_decref(hdr);
	jwt_free(j);
	if (why != NULL)
		*why = reason;
	return rc;
}

/* jti: 16 random bytes as 32 hex digits. Returns 0 or -1. */
static int random_jti(char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[16];
	size_t i;

	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	for (i = 0; i < sizeof(rnd); i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 0xf];
	}
	out[32] = '\0';
	return 0;
}

char *auth_jwt_issue(const auth_jwt_keyring_t *kr, const auth_jwt_policy_t *pol, const char *kid,
		     int64_t user_id, int64_t ver, long ttl, time_t now)
{
	const struct ring_key *k = NULL;
	json_t *claims = NULL;
	char *claims_s = NULL;
	char *tok = NULL;
	jwt_t *j = NULL;
	char sub[24];
	char jti[33];

	if (kr == NULL || user_id <= 0 || ver < 0 || ttl <= 0 || ttl > TTL_MAX || now <= 0)
		goto out;
	if ((int64_t)now > INT64_MAX - ttl)
		goto out;
	if (kid == NULL)
		k = kr->n > 0 ? &kr->keys[0] : NULL;
	else
		k = ring_find(kr, kid, strlen(kid));
	/* Only our own HS256 secret signs; RS/ES entries are an IdP's public keys. */
	if (k == NULL || k->alg != JWT_ALG_HS256)
		goto out;
	if (random_jti(jti) != 0)
		goto out;
	snprintf(sub, sizeof(sub), "%lld", (long long)user_id);

	claims = json_pack("{s:s, s:I, s:I, s:I, s:I, s:s, s:s}", "sub", sub, "ver",
			   (json_int_t)ver, "iat", (json_int_t)now, "nbf", (json_int_t)now, "exp",
			   (json_int_t)((int64_t)now + ttl), "jti", jti, "token_use", "access");
	if (claims == NULL)
		goto out;
	if (pol != NULL && pol->issuer != NULL && pol->issuer[0] != '\0' &&
	    json_object_set_new(claims, "iss", json_string(pol->issuer)) != 0)
		goto out;
	if (pol != NULL && pol->audience != NULL && pol->audience[0] != '\0' &&
	    json_object_set_new(claims, "aud", json_string(pol->audience)) != 0)
		goto out;
	claims_s = json_dumps(claims, JSON_COMPACT);
	if (claims_s == NULL)
		goto out;

	if (jwt_new(&j) != 0)
		goto out;
	if (jwt_set_alg(j, JWT_ALG_HS256, k->key, (int)k->len) != 0)
		goto out;
	if (jwt_add_header(j, "kid", k->kid) != 0)
		goto out;
	if (jwt_add_grants_json(j, claims_s) != 0)
		goto out;
	tok = jwt_encode_str(j);
out:
	free(claims_s);
	json_decref(claims);
	jwt_free(j);
	return tok;
}
