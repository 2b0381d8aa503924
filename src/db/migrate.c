/* migrate.c - apply migrations/NNNN_name.sql in order, once each, checksummed. */
#include <dirent.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/log.h"
#include "dialflow/migrate.h"

#define MAX_MIGRATIONS 1000
#define MAX_FILE       (4 * 1024 * 1024)
/* Arbitrary but fixed: every runner of every version takes the same lock. */
#define MIGRATE_LOCK_KEY "4428170301"

typedef struct migration {
	int version;
	char name[256];
	char checksum[65];
	unsigned char *sql;
	size_t len;
} migration_t;

static int cmp_version(const void *a, const void *b)
{
	const migration_t *x = a, *y = b;

	return (x->version > y->version) - (x->version < y->version);
}

static void sha256_hex(const unsigned char *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Read a whole migration byte for byte, so its checksum is the file's sha256sum. */
static int read_raw(const char *path, unsigned char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n;
	int rc = -1;

	if (f == NULL)
		return -1;
	buf = malloc(MAX_FILE + 1);
	if (buf == NULL)
		goto out;
	n = fread(buf, 1, MAX_FILE + 1, f);
	if (ferror(f) || n > MAX_FILE)
		goto out;
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* Load every NNNN_name.sql of dir, sorted. Returns the count or -1. */
static int load_dir(const char *dir, migration_t *m, int max)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	regex_t re;
	int n = 0, rc = -1;

	if (d == NULL) {
		log_error("migrate", "cannot open migrations directory %s", dir);
		return -1;
	}
	regcomp(&re, "^[0-9]{4}_[a-z0-9_]+\\.sql$", REG_EXTENDED | REG_NOSUB);
	while ((e = readdir(d)) != NULL) {
		char path[4096];
		int v;

		if (regexec(&re, e->d_name, 0, NULL, 0) != 0)
			continue;
		if (n >= max) {
			log_error("migrate", "too many migrations");
			goto out;
		}
		/* the regex guarantees four digits; leading zeros are the format */
		v = (e->d_name[0] - '0') * 1000 + (e->d_name[1] - '0') * 100 +
		    (e->d_name[2] - '0') * 10 + (e->d_name[3] - '0');
		m[n].version = v;
		snprintf(m[n].name, sizeof(m[n].name), "%s", e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (read_raw(path, &m[n].sql, &m[n].len) < 0) {
			log_error("migrate", "cannot read %s", path);
			goto out;
		}
		sha256_hex(m[n].sql, m[n].len, m[n].checksum);
		n++;
	}
	qsort(m, (size_t)n, sizeof(*m), cmp_version);
	for (int i = 1; i < n; i++) {
		if (m[i].version == m[i - 1].version) {
			log_error("migrate", "duplicate migration version %04d", m[i].version);
			goto out;
		}
	}
	rc = n;
out:
	regfree(&re);
	closedir(d);
	if (rc < 0)
		for (int i = 0; i < n; i++)
			free(m[i].sql);
	return rc;
}

static int exec_simple(PGconn *c, const char *sql, const char *what)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
		const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

		log_error("migrate", "%s failed: sqlstate=%s %s", what, state ? state : "-",
			  msg ? msg : PQerrorMessage(c));
		rc = -1;
	}
	PQclear(r);
	return rc;
}

int migrate_run(db_t *db, const char *dir)
{
	migration_t *m = NULL;
	arena_t *a = arena_new(4096);
	PGconn *c;
	PGresult *r;
	int n = 0, applied = 0, rc = -1, err;
	bool locked = false;

	if (db_ensure(db) < 0) {
		log_error("migrate", "database unavailable");
		goto out;
	}
	c = db_conn(db);
	/* Waiting for another runner's lock, or a long CREATE INDEX, is not a timeout. */
	if (exec_simple(c, "SET statement_timeout = 0", "disable statement_timeout") < 0)
		goto out;
	m = calloc(MAX_MIGRATIONS, sizeof(*m));
	if (m == NULL)
		goto out;
	n = load_dir(dir, m, MAX_MIGRATIONS);
	if (n < 0)
		goto out;
	if (db_exec_sql(db, a, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")", 0, NULL, &err) ==
	    NULL)
		goto out;
	locked = true;
	if (exec_simple(c,
			"CREATE TABLE IF NOT EXISTS schema_migrations ("
			" version integer PRIMARY KEY, name text NOT NULL,"
			" checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
			"create schema_migrations") < 0)
		goto out;
	r = db_exec_sql(db, a, "SELECT version, name, checksum FROM schema_migrations ORDER BY 1",
			0, NULL, &err);
	if (r == NULL)
		goto out;
	/* Refuse to run at all when history was edited. */
	for (int row = 0; row < PQntuples(r); row++) {
		int v = (int)db_i64(r, row, 0);
		bool seen = false;

		for (int i = 0; i < n; i++) {
			if (m[i].version != v)
				continue;
			seen = true;
			if (strcmp(m[i].checksum, db_str(r, row, 2)) != 0) {
				log_error("migrate",
					  "checksum of applied migration %s changed (%s in the "
					  "database, %s on disk): refusing to run",
					  m[i].name, db_str(r, row, 2), m[i].checksum);
				goto out;
			}
		}
		if (!seen)
			log_warn("migrate", "applied migration %04d (%s) is missing from %s", v,
				 db_str(r, row, 1), dir);
	}
	for (int i = 0; i < n; i++) {
		bool done = false;
		char vbuf[16];
		const char *params[3];

		for (int row = 0; row < PQntuples(r); row++)
			if ((int)db_i64(r, row, 0) == m[i].version)
				done = true;
		if (done)
			continue;
		if (exec_simple(c, "BEGIN", "BEGIN") < 0)
			goto out;
		if (exec_simple(c, (const char *)m[i].sql, m[i].name) < 0) {
			exec_simple(c, "ROLLBACK", "ROLLBACK");
			goto out;
		}
		snprintf(vbuf, sizeof(vbuf), "%d", m[i].version);
		params[0] = vbuf;
		params[1] = m[i].name;
		params[2] = m[i].checksum;
		if (db_exec_sql(db, a,
				"INSERT INTO schema_migrations (version, name, checksum) "
				"VALUES ($1::integer, $2, $3)",
				3, params, &err) == NULL) {
			exec_simple(c, "ROLLBACK", "ROLLBACK");
			goto out;
		}
		if (exec_simple(c, "COMMIT", "COMMIT") < 0)
			goto out;
		log_info("migrate", "applied %s", m[i].name);
		applied++;
	}
	rc = applied;
out:
	if (locked)
		(void)db_exec_sql(db, a, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")", 0, NULL,
				  &err);
	if (db_is_up(db))
		(void)exec_simple(db_conn(db), "RESET statement_timeout",
				  "reset statement_timeout");
	for (int i = 0; m != NULL && i < n; i++)
		free(m[i].sql);
	free(m);
	arena_free(a);
	return rc;
}
