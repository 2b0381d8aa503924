/* config.c - dialflow-sandbox settings from the environment (see sandbox.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "dialflow/config.h"
#include "dialflow/sandbox.h"
#include "dialflow/strnum.h"

#define MAX_MS (3600 * 1000)

/* An integer setting in [min, max]; def when unset. Returns -1 when malformed. */
static int env_int(const char *name, int64_t def, int64_t min, int64_t max, int *out)
{
	const char *v = getenv(name);
	int64_t x = def;

	if (v != NULL && v[0] != '\0' && strnum_i64(v, min, max, &x) < 0)
		return -1;
	*out = (int)x;
	return 0;
}

/* "MIN-MAX" or "N" milliseconds. */
static int env_range(const char *name, int def_min, int def_max, int *lo, int *hi)
{
	const char *v = getenv(name);
	const char *dash;
	int64_t a, b;

	*lo = def_min;
	*hi = def_max;
	if (v == NULL || v[0] == '\0')
		return 0;
	dash = strchr(v, '-');
	if (dash == NULL) {
		if (strnum_i64(v, 0, MAX_MS, &a) < 0)
			return -1;
		b = a;
	} else if (strnum_i64n(v, (size_t)(dash - v), 0, MAX_MS, &a) < 0 ||
		   strnum_i64(dash + 1, 0, MAX_MS, &b) < 0 || b < a) {
		return -1;
	}
	*lo = (int)a;
	*hi = (int)b;
	return 0;
}

int sandbox_digits_parse(const char *spec, sandbox_digit_choice_t *out, size_t max, size_t *n)
{
	const char *p = spec;
	int rc = -1;

	*n = 0;
	if (spec == NULL || spec[0] == '\0')
		goto out;
	for (;;) {
		const char *comma = strchr(p, ','), *colon;
		size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p), klen;
		sandbox_digit_choice_t c = {{0}, 0};
		int64_t w;

		colon = memchr(p, ':', len);
		if (colon == NULL || *n == max)
			goto out;
		klen = (size_t)(colon - p);
		if (strnum_i64n(colon + 1, len - klen - 1, 0, 100, &w) < 0)
			goto out;
		if (klen == 4 && memcmp(p, "none", 4) == 0) {
			c.keys[0] = '\0';
		} else {
			if (klen == 0 || klen > SANDBOX_MAX_KEYS)
				goto out;
			for (size_t i = 0; i < klen; i++)
				if (strchr("0123456789*#", p[i]) == NULL || p[i] == '\0')
					goto out;
			memcpy(c.keys, p, klen);
			c.keys[klen] = '\0';
		}
		for (size_t i = 0; i < *n; i++)
			if (strcmp(out[i].keys, c.keys) == 0)
				goto out;
		c.weight = (int)w;
		out[(*n)++] = c;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	rc = 0;
out:
	if (rc < 0)
		*n = 0;
	return rc;
}

const char *sandbox_pick_digits(const sandbox_digit_choice_t *c, size_t n, uint64_t roll)
{
	uint64_t total = 0, r;

	for (size_t i = 0; i < n; i++)
		total += (uint64_t)c[i].weight;
	if (total == 0)
		return "";
	r = roll % total;
	for (size_t i = 0; i < n; i++) {
		if (r < (uint64_t)c[i].weight)
			return c[i].keys;
		r -= (uint64_t)c[i].weight;
	}
	return "";
}

int sandbox_config_load(sandbox_config_t *cfg, const char **err)
{
	const char *sid = getenv("DIALFLOW_TWILIO_ACCOUNT_SID");
	const char *tokfile = getenv("DIALFLOW_TWILIO_AUTH_TOKEN_FILE");
	const char *ca = getenv("DIALFLOW_SANDBOX_CA_FILE");
	const char *seed = getenv("DIALFLOW_SANDBOX_SEED");
	const char *digits = getenv("DIALFLOW_SANDBOX_DIGITS");
	unsigned char *tok = NULL;
	size_t toklen = 0;
	int64_t s;

	memset(cfg, 0, sizeof(*cfg));
#define INT(field, name, def, min, max)                                                            \
	do {                                                                                       \
		if (env_int(name, def, min, max, &cfg->field) < 0) {                               \
			*err = name " is not a valid number in range";                             \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)
	INT(port, "DIALFLOW_SANDBOX_PORT", 0, 0, 65535);
	INT(answer_pct, "DIALFLOW_SANDBOX_ANSWER_PCT", 70, 0, 100);
	INT(busy_pct, "DIALFLOW_SANDBOX_BUSY_PCT", 10, 0, 100);
	INT(noanswer_pct, "DIALFLOW_SANDBOX_NOANSWER_PCT", 15, 0, 100);
	INT(fail_pct, "DIALFLOW_SANDBOX_FAIL_PCT", 5, 0, 100);
	INT(ring_ms, "DIALFLOW_SANDBOX_RING_MS", 2000, 0, MAX_MS);
	INT(max_calls, "DIALFLOW_SANDBOX_MAX_CALLS", 10000, 10, 1000000);
	INT(callback_retries, "DIALFLOW_SANDBOX_CALLBACK_RETRIES", 5, 0, 10);
	INT(say_ms, "DIALFLOW_SANDBOX_SAY_MS", 40, 0, 1000);
	INT(machine_pct, "DIALFLOW_SANDBOX_MACHINE_PCT", 0, 0, 100);
	INT(amd_ms, "DIALFLOW_SANDBOX_AMD_MS", 1500, 0, 60000);
#undef INT
	if (sandbox_digits_parse(digits != NULL && digits[0] != '\0' ? digits : "1:40,2:40,none:20",
				 cfg->digits, SANDBOX_MAX_DIGIT_CHOICES, &cfg->ndigits) < 0) {
		*err = "DIALFLOW_SANDBOX_DIGITS must be KEYS:WEIGHT,... (KEYS: 0-9 * # or none; "
		       "WEIGHT 0-100)";
		return -1;
	}
	if (env_range("DIALFLOW_SANDBOX_TALK_MS", 3000, 8000, &cfg->talk_min_ms,
		      &cfg->talk_max_ms) < 0) {
		*err = "DIALFLOW_SANDBOX_TALK_MS must be MIN-MAX or N milliseconds";
		return -1;
	}
	if (seed != NULL && seed[0] != '\0') {
		if (strnum_i64(seed, 0, INT64_MAX, &s) < 0) {
			*err = "DIALFLOW_SANDBOX_SEED is not a valid number";
			return -1;
		}
		cfg->seed = (uint64_t)s;
	} else if (getrandom(&cfg->seed, sizeof(cfg->seed), 0) != (ssize_t)sizeof(cfg->seed)) {
		*err = "getrandom failed";
		return -1;
	}
	if (sid == NULL || sid[0] == '\0' || strlen(sid) > 64 ||
	    strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") !=
		strlen(sid)) {
		*err = "DIALFLOW_TWILIO_ACCOUNT_SID must be set (letters and digits)";
		return -1;
	}
	if (tokfile == NULL || tokfile[0] == '\0' ||
	    config_read_file(tokfile, 256, &tok, &toklen) < 0 || toklen == 0) {
		free(tok);
		*err = "DIALFLOW_TWILIO_AUTH_TOKEN_FILE must name a readable, non-empty file";
		return -1;
	}
	cfg->account_sid = strdup(sid);
	cfg->auth_token = (char *)tok;
	cfg->ca_file = strdup(ca != NULL ? ca : "");
	if (cfg->account_sid == NULL || cfg->ca_file == NULL) {
		sandbox_config_free(cfg);
		*err = "out of memory";
		return -1;
	}
	return 0;
}

void sandbox_config_free(sandbox_config_t *cfg)
{
	if (cfg->auth_token != NULL) {
		explicit_bzero(cfg->auth_token, strlen(cfg->auth_token));
		free(cfg->auth_token);
	}
	free(cfg->account_sid);
	free(cfg->ca_file);
	memset(cfg, 0, sizeof(*cfg));
}

sandbox_outcome_t sandbox_pick_outcome(const sandbox_config_t *cfg, uint64_t roll)
{
	uint64_t total = (uint64_t)cfg->answer_pct + (uint64_t)cfg->busy_pct +
			 (uint64_t)cfg->noanswer_pct + (uint64_t)cfg->fail_pct;
	uint64_t r;

	if (total == 0)
		return SANDBOX_ANSWER;
	r = roll % total;
	if (r < (uint64_t)cfg->answer_pct)
		return SANDBOX_ANSWER;
	r -= (uint64_t)cfg->answer_pct;
	if (r < (uint64_t)cfg->busy_pct)
		return SANDBOX_BUSY;
	r -= (uint64_t)cfg->busy_pct;
	if (r < (uint64_t)cfg->noanswer_pct)
		return SANDBOX_NOANSWER;
	return SANDBOX_FAIL;
}
