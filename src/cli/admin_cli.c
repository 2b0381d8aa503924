/*
 * admin_cli.c - the `dialflow-admin` commands.
 *
 * Output is machine-readable: one JSON object per command on stdout (the
 * token alone for `token issue`), diagnostics on stderr. seed-demo prints
 * human-readable credentials, once, when it creates the users.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/auth.h"
#include "dialflow/cli.h"
#include "dialflow/config.h"
#include "dialflow/db.h"
#include "dialflow/err.h"
#include "dialflow/jsonutil.h"
#include "dialflow/log.h"
#include "dialflow/migrate.h"
#include "dialflow/ratelimit.h"
#include "dialflow/strnum.h"

#define DEMO_OWNER_EMAIL "owner@demo.dialflow.test"
#define DEMO_ADMIN_EMAIL "admin@dialflow.test"

typedef struct cli {
	config_t cfg;
	db_t *db;
	arena_t *a;
} cli_t;

static void usage(void)
{
	fputs(
	    "usage: dialflow-admin COMMAND [options]\n"
	    "  migrate                             apply pending migrations\n"
	    "  business create --name N [--timezone TZ] [--country CC] [--max-concurrent-calls N]\n"
	    "                  [--amd voicemail|hangup]   (answering-machine detection: leave\n"
	    "                                              the script's voicemail, or hang up)\n"
	    "  user create --email E --role R [--name N] [--business ID]\n"
	    "              [--password P | --password-stdin]   (a password is generated if "
	    "absent)\n"
	    "  pages set --business ID KEY[,KEY...]          (\"\" disables every page)\n"
	    "  token issue --user ID [--ttl SECONDS]         (prints an access token)\n"
	    "  seed-demo                           demo business, owner and system_admin\n"
	    "  limits set --business ID RULE=HITS/SECONDS|RULE=default ...\n"
	    "                                      a business's own rate limits (run_create,\n"
	    "                                      lead_import, flow_start, flow_inbound)\n"
	    "  audit prune --older-than AGE        drop audit events older than AGE\n"
	    "                                      (e.g. 180d, 12h, 30m; at least 1 day)\n"
	    "Configuration comes from the environment (DIALFLOW_DATABASE_URL, ...).\n",
	    stderr);
}

/* Run SQL with parameters; on failure print a clean message and return NULL. */
static PGresult *q(cli_t *c, const char *sql, int n, const char *const *p)
{
	int err;
	PGresult *r = db_exec_sql(c->db, c->a, sql, n, p, &err);

	if (r == NULL)
		fprintf(stderr, "dialflow-admin: database error (%s)\n", err_code_name(err));
	return r;
}

static void print_json(json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);

	puts(s ? s : "null");
	free(s);
	json_decref(v);
}

static void audit(cli_t *c, int64_t business_id, const char *action, const char *type, int64_t id)
{
	const char *p[4] = {business_id > 0 ? db_i64s(c->a, business_id) : NULL, action, type,
			    id > 0 ? db_i64s(c->a, id) : NULL};

	(void)q(c,
		"INSERT INTO audit_events (business_id, tag, action, resource_type, resource_id, "
		"details) VALUES ($1::bigint, 'AUDIT', $2, $3, $4::bigint, "
		"'{\"via\":\"dialflow-admin\"}')",
		4, p);
	log_info("audit", "[AUDIT] action=%s resource=%s:%lld business=%lld via=dialflow-admin",
		 action, type, (long long)id, (long long)business_id);
}

static int cmd_migrate(cli_t *c)
{
	int n = migrate_run(c->db, c->cfg.migrations_dir);

	if (n < 0)
		return 1;
	printf("{\"applied\":%d}\n", n);
	return 0;
}

/* Create a business; prints nothing. Returns its id or -1. */
static int64_t create_business(cli_t *c, const char *name, const char *tz, const char *country,
			       int64_t maxcalls)
{
	const char *p[4] = {name, tz, country, db_i64s(c->a, maxcalls)};
	PGresult *r;
	int64_t id;

	if (strlen(name) < 1 || strlen(name) > 200 || strlen(country) != 2) {
		fprintf(stderr, "dialflow-admin: invalid name or country\n");
		return -1;
	}
	r = q(c, "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", 1, &p[1]);
	if (r == NULL)
		return -1;
	if (!db_bool(r, 0, 0)) {
		fprintf(stderr, "dialflow-admin: unknown time zone\n");
		return -1;
	}
	r = q(c,
	      "INSERT INTO businesses (name, timezone, default_country, max_concurrent_calls) "
	      "VALUES ($1, $2, $3, $4::integer) RETURNING id",
	      4, p);
	if (r == NULL)
		return -1;
	id = db_i64(r, 0, 0);
	audit(c, id, "business.create", "business", id);
	return id;
}

static int cmd_business_create(cli_t *c, int argc, char **argv)
{
	const char *name = NULL, *tz = "UTC", *country = "US", *amd = NULL;
	int64_t maxcalls = 3, id;
	static const struct option opts[] = {{"name", required_argument, NULL, 'n'},
					     {"timezone", required_argument, NULL, 't'},
					     {"country", required_argument, NULL, 'c'},
					     {"max-concurrent-calls", required_argument, NULL, 'm'},
					     {"amd", required_argument, NULL, 'a'},
					     {NULL, 0, NULL, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'n':
			name = optarg;
			break;
		case 't':
			tz = optarg;
			break;
		case 'c':
			country = optarg;
			break;
		case 'm':
			if (strnum_i64(optarg, 1, 1000, &maxcalls) < 0) {
				fprintf(stderr, "dialflow-admin: --max-concurrent-calls 1..1000\n");
				return 2;
			}
			break;
		case 'a':
			if (strcmp(optarg, "voicemail") != 0 && strcmp(optarg, "hangup") != 0) {
				fprintf(stderr, "dialflow-admin: --amd voicemail|hangup\n");
				return 2;
			}
			amd = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (name == NULL) {
		usage();
		return 2;
	}
	id = create_business(c, name, tz, country, maxcalls);
	if (id < 0)
		return 1;
	if (amd != NULL) {
		const char *p[2] = {db_i64s(c->a, id), amd};

		/* AMD is billed per call by the provider: only ever on when asked for */
		if (q(c,
		      "UPDATE businesses SET amd_enabled = true, amd_action = $2 "
		      "WHERE id = $1::bigint",
		      2, p) == NULL)
			return 1;
	}
	print_json(json_pack("{s:I,s:s,s:s,s:s,s:I,s:b,s:s}", "id", (json_int_t)id, "name", name,
			     "timezone", tz, "default_country", country, "max_concurrent_calls",
			     (json_int_t)maxcalls, "amd_enabled", amd != NULL, "amd_action",
			     amd != NULL ? amd : "voicemail"));
	return 0;
}

/* Create a user; returns its id or -1. password may be NULL: one is generated into gen. */
static int64_t create_user(cli_t *c, const char *email, const char *name, const char *role,
			   int64_t business_id, const char **password, char gen[41])
{
	const char *p[5];
	char *hash;
	PGresult *r;
	int64_t id;
	auth_role_t ro = auth_role_parse(role);

	if (ro == ROLE_NONE || (ro == ROLE_SYSTEM_ADMIN) != (business_id == 0)) {
		fprintf(stderr, "dialflow-admin: a system_admin has no --business; every other "
				"role (agent, admin, owner) needs one\n");
		return -1;
	}
	if (*password == NULL) {
		if (auth_random_token(gen, 41, 20) < 0)
			return -1;
		*password = gen;
	} else if (auth_password_weak(*password) != NULL) {
		fprintf(stderr, "dialflow-admin: password %s\n", auth_password_weak(*password));
		return -1;
	}
	hash = auth_password_hash(*password);
	if (hash == NULL)
		return -1;
	p[0] = business_id > 0 ? db_i64s(c->a, business_id) : NULL;
	p[1] = email;
	p[2] = name ? name : "";
	p[3] = hash;
	p[4] = role;
	r = q(c,
	      "INSERT INTO users (business_id, email, name, password_hash, role) "
	      "VALUES ($1::bigint, $2, $3, $4, $5) RETURNING id",
	      5, p);
	free(hash);
	if (r == NULL)
		return -1;
	id = db_i64(r, 0, 0);
	audit(c, business_id, "user.create", "user", id);
	return id;
}

static int cmd_user_create(cli_t *c, int argc, char **argv)
{
	const char *email = NULL, *name = "", *role = NULL, *password = NULL;
	char gen[41], line[1100];
	int64_t business_id = 0, id;
	bool from_stdin = false, generated;
	static const struct option opts[] = {{"email", required_argument, NULL, 'e'},
					     {"name", required_argument, NULL, 'n'},
					     {"role", required_argument, NULL, 'r'},
					     {"business", required_argument, NULL, 'b'},
					     {"password", required_argument, NULL, 'p'},
					     {"password-stdin", no_argument, NULL, 's'},
					     {NULL, 0, NULL, 0}};
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'e':
			email = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'r':
			role = optarg;
			break;
		case 'p':
			password = optarg;
			break;
		case 's':
			from_stdin = true;
			break;
		case 'b':
			if (strnum_i64(optarg, 1, INT64_MAX, &business_id) < 0) {
				fprintf(stderr, "dialflow-admin: --business takes an id\n");
				return 2;
			}
			break;
		default:
			usage();
			return 2;
		}
	}
	if (email == NULL || role == NULL) {
		usage();
		return 2;
	}
	if (from_stdin) {
		if (fgets(line, sizeof(line), stdin) == NULL)
			return 2;
		line[strcspn(line, "\r\n")] = '\0';
		password = line;
	}
	generated = password == NULL;
	id = create_user(c, email, name, role, business_id, &password, gen);
	if (id < 0)
		return 1;
	{
		json_t *out = json_pack("{s:I,s:s,s:s,s:s,s:o}", "id", (json_int_t)id, "email",
					email, "name", name, "role", role, "business_id",
					business_id > 0 ? json_integer(business_id) : json_null());

		if (generated)
			json_object_set_new(out, "password", json_string(password));
		print_json(out);
	}
	return 0;
}

static int set_pages(cli_t *c, int64_t business_id, const char *list)
{
	char *copy = arena_strdup(c->a, list), *tok, *save = NULL;
	char *lit = arena_alloc(c->a, strlen(list) + 3);
	const char *p[2];

	lit[0] = '{';
	lit[1] = '\0';
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (auth_page_find(tok) == NULL) {
			fprintf(stderr, "dialflow-admin: unknown page key (known:");
			for (const auth_page_t *pg = auth_pages; pg->key; pg++)
				fprintf(stderr, " %s", pg->key);
			fprintf(stderr, ")\n");
			return -1;
		}
		if (lit[1] != '\0')
			strcat(lit, ",");
		strcat(lit, tok);
	}
	strcat(lit, "}");
	p[0] = db_i64s(c->a, business_id);
	p[1] = lit;
	if (q(c, "SELECT 1 FROM businesses WHERE id = $1::bigint", 1, p) == NULL)
		return -1;
	if (q(c,
	      "DELETE FROM business_pages WHERE business_id = $1::bigint AND "
	      "page_key <> ALL ($2::text[])",
	      2, p) == NULL ||
	    q(c,
	      "INSERT INTO business_pages (business_id, page_key) SELECT $1::bigint, k "
	      "FROM unnest($2::text[]) k ON CONFLICT DO NOTHING",
	      2, p) == NULL)
		return -1;
	audit(c, business_id, "business.pages", "business", business_id);
	return 0;
}

static int cmd_pages_set(cli_t *c, int argc, char **argv)
{
	int64_t business_id = 0;
	static const struct option opts[] = {{"business", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	int o;
	PGresult *r;
	const char *p[1];

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'b' || strnum_i64(optarg, 1, INT64_MAX, &business_id) < 0) {
			usage();
			return 2;
		}
	}
	if (business_id == 0 || optind != argc - 1) {
		usage();
		return 2;
	}
	p[0] = db_i64s(c->a, business_id);
	r = q(c, "SELECT 1 FROM businesses WHERE id = $1::bigint", 1, p);
	if (r == NULL)
		return 1;
	if (PQntuples(r) != 1) {
		fprintf(stderr, "dialflow-admin: no such business\n");
		return 1;
	}
	if (set_pages(c, business_id, argv[optind]) < 0)
		return 1;
	r = q(c,
	      "SELECT coalesce(json_agg(page_key ORDER BY page_key), '[]')::text "
	      "FROM business_pages WHERE business_id = $1::bigint",
	      1, p);
	if (r == NULL)
		return 1;
	printf("{\"business_id\":%lld,\"enabled_pages\":%s}\n", (long long)business_id,
	       db_str(r, 0, 0));
	return 0;
}

/* "180d", "12h", "90m", "3600s" -> seconds; -1 when malformed. */
static int64_t parse_age(const char *s)
{
	size_t n = strlen(s);
	int64_t v, unit;

	if (n < 2)
		return -1;
	switch (s[n - 1]) {
	case 'd':
		unit = 86400;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'm':
		unit = 60;
		break;
	case 's':
		unit = 1;
		break;
	default:
		return -1;
	}
	{
		char num[24];

		if (n - 1 >= sizeof(num))
			return -1;
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (strnum_i64(num, 1, INT64_MAX / 86400, &v) < 0)
			return -1;
	}
	return v * unit;
}

/*
 * audit prune --older-than AGE: retention of the audit trail (DESIGN §3).
 * Whole monthly partitions before the cutoff are dropped, the rest trimmed
 * (audit_prune() in 0004). Refuses ages under a day, so that a typo never
 * wipes the trail of today.
 */
static int cmd_audit_prune(cli_t *c, int argc, char **argv)
{
	static const struct option opts[] = {{"older-than", required_argument, NULL, 'o'},
					     {NULL, 0, NULL, 0}};
	int64_t age = -1;
	const char *p[1];
	PGresult *r;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'o' || (age = parse_age(optarg)) < 0) {
			usage();
			return 2;
		}
	}
	if (age < 0 || optind != argc) {
		usage();
		return 2;
	}
	if (age < 86400) {
		fprintf(stderr, "dialflow-admin: --older-than must be at least 1d\n");
		return 2;
	}
	p[0] = db_i64s(c->a, age);
	r = q(c,
	      "SELECT rows_removed, partitions_dropped, "
	      "to_char((now() - make_interval(secs => $1::bigint)) AT TIME ZONE 'UTC', "
	      "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
	      "FROM audit_prune(now() - make_interval(secs => $1::bigint))",
	      1, p);
	if (r == NULL)
		return 1;
	printf("{\"removed\":%lld,\"partitions_dropped\":%lld,\"before\":\"%s\"}\n",
	       (long long)db_i64(r, 0, 0), (long long)db_i64(r, 0, 1), db_str(r, 0, 2));
	log_info("audit", "[AUDIT] action=audit.prune removed=%lld partitions_dropped=%lld",
		 (long long)db_i64(r, 0, 0), (long long)db_i64(r, 0, 1));
	return 0;
}

/* One "RULE=HITS/SECONDS" or "RULE=default" argument of `limits set`. */
static int set_limit(cli_t *c, int64_t business_id, const char *arg)
{
	const char *eq = strchr(arg, '='), *slash;
	char name[48], num[24];
	int64_t hits, win;
	const char *p[4];

	if (eq == NULL || (size_t)(eq - arg) >= sizeof(name))
		goto bad;
	memcpy(name, arg, (size_t)(eq - arg));
	name[eq - arg] = '\0';
	if (ratelimit_rule_find(name) == NULL) {
		fprintf(stderr, "dialflow-admin: unknown rate limit \"%s\"\n", name);
		return -1;
	}
	p[0] = db_i64s(c->a, business_id);
	p[1] = name;
	if (strcmp(eq + 1, "default") == 0)
		return q(c,
			 "DELETE FROM business_rate_limits WHERE business_id = $1::bigint "
			 "AND name = $2",
			 2, p)
			   ? 0
			   : -1;
	slash = strchr(eq + 1, '/');
	if (slash == NULL || (size_t)(slash - eq - 1) >= sizeof(num))
		goto bad;
	memcpy(num, eq + 1, (size_t)(slash - eq - 1));
	num[slash - eq - 1] = '\0';
	if (strnum_i64(num, 1, 100000, &hits) < 0 || strnum_i64(slash + 1, 1, 86400, &win) < 0)
		goto bad;
	p[2] = db_i64s(c->a, hits);
	p[3] = db_i64s(c->a, win);
	return q(c,
		 "INSERT INTO business_rate_limits (business_id, name, max_hits, window_s) "
		 "VALUES ($1::bigint, $2, $3::integer, $4::integer) ON CONFLICT (business_id, "
		 "name) "
		 "DO UPDATE SET max_hits = EXCLUDED.max_hits, window_s = EXCLUDED.window_s, "
		 "updated_at = now()",
		 4, p)
		   ? 0
		   : -1;
bad:
	fprintf(stderr, "dialflow-admin: \"%s\" is not RULE=HITS/SECONDS or RULE=default\n", arg);
	return -1;
}

/* limits set --business ID RULE=HITS/SECONDS ...: a business's own rate limits. */
static int cmd_limits_set(cli_t *c, int argc, char **argv)
{
	static const struct option opts[] = {{"business", required_argument, NULL, 'b'},
					     {NULL, 0, NULL, 0}};
	int64_t business_id = 0;
	const char *p[1];
	PGresult *r;
	int o;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (o != 'b' || strnum_i64(optarg, 1, INT64_MAX, &business_id) < 0) {
			usage();
			return 2;
		}
	}
	if (business_id == 0 || optind >= argc) {
		usage();
		return 2;
	}
	p[0] = db_i64s(c->a, business_id);
	r = q(c, "SELECT 1 FROM businesses WHERE id = $1::bigint", 1, p);
	if (r == NULL)
		return 1;
	if (PQntuples(r) != 1) {
		fprintf(stderr, "dialflow-admin: no such business\n");
		return 1;
	}
	for (int i = optind; i < argc; i++)
		if (set_limit(c, business_id, argv[i]) < 0)
			return 1;
	r = q(c,
	      "SELECT coalesce(json_object_agg(name, json_build_object('max_hits', max_hits, "
	      "'window_s', window_s)), '{}')::text FROM business_rate_limits "
	      "WHERE business_id = $1::bigint",
	      1, p);
	if (r == NULL)
		return 1;
	printf("{\"business_id\":%lld,\"rate_limits\":%s}\n", (long long)business_id,
	       db_str(r, 0, 0));
	audit(c, business_id, "business.rate_limits", "business", business_id);
	return 0;
}

static int cmd_token_issue(cli_t *c, int argc, char **argv)
{
	int64_t user_id = 0, ttl = 3600;
	static const struct option opts[] = {{"user", required_argument, NULL, 'u'},
					     {"ttl", required_argument, NULL, 't'},
					     {NULL, 0, NULL, 0}};
	auth_jwt_keyring_t *kr = NULL;
	auth_jwt_policy_t pol = {c->cfg.jwt_issuer, c->cfg.jwt_audience, AUTH_JWT_LEEWAY};
	const char *p[1];
	PGresult *r;
	char *tok = NULL;
	int o, rc = 1;

	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if ((o == 'u' && strnum_i64(optarg, 1, INT64_MAX, &user_id) == 0) ||
		    (o == 't' && strnum_i64(optarg, 60, 30 * 86400, &ttl) == 0))
			continue;
		usage();
		return 2;
	}
	if (user_id == 0) {
		usage();
		return 2;
	}
	if (c->cfg.jwt_secret == NULL) {
		fprintf(stderr, "dialflow-admin: DIALFLOW_JWT_SECRET_FILE is not set\n");
		return 1;
	}
	p[0] = db_i64s(c->a, user_id);
	r = q(c, "SELECT token_version, is_active, business_id FROM users WHERE id = $1::bigint", 1,
	      p);
	if (r == NULL)
		goto out;
	if (PQntuples(r) != 1 || !db_bool(r, 0, 1)) {
		fprintf(stderr, "dialflow-admin: no such active user\n");
		goto out;
	}
	kr = auth_jwt_keyring_new();
	if (kr == NULL || auth_jwt_keyring_add(kr, c->cfg.jwt_kid, "HS256", c->cfg.jwt_secret,
					       c->cfg.jwt_secret_len) < 0) {
		fprintf(stderr, "dialflow-admin: the JWT secret is unusable (>= 32 bytes)\n");
		goto out;
	}
	tok = auth_jwt_issue(kr, &pol, c->cfg.jwt_kid, user_id, db_i64(r, 0, 0), (long)ttl,
			     time(NULL));
	if (tok == NULL)
		goto out;
	audit(c, db_i64(r, 0, 2), "token.issue", "user", user_id);
	puts(tok);
	rc = 0;
out:
	free(tok);
	auth_jwt_keyring_free(kr);
	return rc;
}

/* Find a user id by email, 0 when absent, -1 on error. */
static int64_t user_by_email(cli_t *c, const char *email, int64_t *business_id)
{
	const char *p[1] = {email};
	PGresult *r =
	    q(c, "SELECT id, business_id FROM users WHERE lower(email) = lower($1)", 1, p);

	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1)
		return 0;
	*business_id = db_i64(r, 0, 1);
	return db_i64(r, 0, 0);
}

static int cmd_seed_demo(cli_t *c)
{
	int64_t biz = 0, owner, admin, none = 0;
	const char *pw = NULL;
	char gen[41];
	char pages[256] = "";

	for (const auth_page_t *pg = auth_pages; pg->key; pg++) {
		if (pages[0])
			strcat(pages, ",");
		strcat(pages, pg->key);
	}
	if (db_begin(c->db) < 0)
		return 1;
	owner = user_by_email(c, DEMO_OWNER_EMAIL, &biz);
	if (owner < 0)
		goto fail;
	if (owner == 0) {
		biz = create_business(c, "Demo Business", "UTC", "US", 3);
		if (biz < 0 || set_pages(c, biz, pages) < 0)
			goto fail;
		pw = NULL;
		owner = create_user(c, DEMO_OWNER_EMAIL, "Demo Owner", "owner", biz, &pw, gen);
		if (owner < 0)
			goto fail;
		printf("demo business: id=%lld name=\"Demo Business\" pages=%s\n", (long long)biz,
		       pages);
		printf("owner:         email=%s password=%s\n", DEMO_OWNER_EMAIL, pw);
	} else {
		printf("demo business: id=%lld (exists)\n", (long long)biz);
		printf("owner:         email=%s (exists, password unchanged)\n", DEMO_OWNER_EMAIL);
	}
	admin = user_by_email(c, DEMO_ADMIN_EMAIL, &none);
	if (admin < 0)
		goto fail;
	if (admin == 0) {
		pw = NULL;
		if (create_user(c, DEMO_ADMIN_EMAIL, "Platform Admin", "system_admin", 0, &pw,
				gen) < 0)
			goto fail;
		printf("system_admin:  email=%s password=%s\n", DEMO_ADMIN_EMAIL, pw);
	} else {
		printf("system_admin:  email=%s (exists, password unchanged)\n", DEMO_ADMIN_EMAIL);
	}
	if (db_commit(c->db) < 0)
		return 1;
	return 0;
fail:
	db_rollback(c->db);
	return 1;
}

int admin_cli_main(int argc, char **argv)
{
	cli_t c;
	const char *err = NULL;
	int rc = 2;

	memset(&c, 0, sizeof(c));
	if (argc < 2) {
		usage();
		return 2;
	}
	if (config_load(&c.cfg, NULL, "DIALFLOW_ADMIN_DB_ROLE", "", 0, &err) < 0) {
		fprintf(stderr, "dialflow-admin: %s\n", err);
		return 1;
	}
	log_set_level(getenv("DIALFLOW_LOG_LEVEL") ? getenv("DIALFLOW_LOG_LEVEL") : "warn");
	c.a = arena_new(65536);
	c.db = db_new(c.cfg.database_url, "dialflow-admin", c.cfg.db_role, c.cfg.db_connect_timeout,
		      60000);
	if (db_ensure(c.db) < 0) {
		fprintf(stderr, "dialflow-admin: cannot connect to the database\n");
		rc = 1;
		goto out;
	}
	optind = 2;
	if (strcmp(argv[1], "migrate") == 0 && argc == 2)
		rc = cmd_migrate(&c);
	else if (strcmp(argv[1], "seed-demo") == 0 && argc == 2)
		rc = cmd_seed_demo(&c);
	else if (argc >= 3 && strcmp(argv[1], "business") == 0 && strcmp(argv[2], "create") == 0)
		optind = 3, rc = cmd_business_create(&c, argc, argv);
	else if (argc >= 3 && strcmp(argv[1], "user") == 0 && strcmp(argv[2], "create") == 0)
		optind = 3, rc = cmd_user_create(&c, argc, argv);
	else if (argc >= 3 && strcmp(argv[1], "pages") == 0 && strcmp(argv[2], "set") == 0)
		optind = 3, rc = cmd_pages_set(&c, argc, argv);
	else if (argc >= 3 && strcmp(argv[1], "token") == 0 && strcmp(argv[2], "issue") == 0)
		optind = 3, rc = cmd_token_issue(&c, argc, argv);
	else if (argc >= 3 && strcmp(argv[1], "limits") == 0 && strcmp(argv[2], "set") == 0)
		optind = 3, rc = cmd_limits_set(&c, argc, argv);
	else if (argc >= 3 && strcmp(argv[1], "audit") == 0 && strcmp(argv[2], "prune") == 0)
		optind = 3, rc = cmd_audit_prune(&c, argc, argv);
	else
		usage();
out:
	db_free(c.db);
	arena_free(c.a);
	config_free(&c.cfg);
	return rc;
}
