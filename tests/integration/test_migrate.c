/*
 * test_migrate.c - migrate_run() against a real server (DESIGN §5 "Migrations").
 *
 * Every test gets a fresh scratch database (created by the superuser, owned
 * by the owner role, dropped WITH (FORCE) at teardown) and a private copy of
 * the migrations directory it may edit. Together they show that migrations
 * apply once and in order, that history is checksummed, that a failing file
 * is rolled back whole, and that the advisory lock serialises two runners.
 */
#include "itest.h"

#include <dirent.h>
#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dialflow/auth.h"
#include "dialflow/migrate.h"

#define LOCK_KEY     "4428170301" /* MIGRATE_LOCK_KEY of src/db/migrate.c */
#define CHILD_FAILED 100

typedef struct fixture {
	char dbname[96];
	char *url;	 /* conninfo of the scratch database */
	char dir[64];	 /* private copy of the migrations */
	int nfiles;	 /* migrations in DIALFLOW_MIGRATIONS_DIR */
	char first[256]; /* the lowest-numbered migration file */
	PGconn *super;
	PGconn *owner; /* raw owner connection to the scratch database */
} fixture_t;

static bool is_migration_name(const char *name)
{
	regex_t re;
	bool ok;

	assert_int_equal(regcomp(&re, "^[0-9]{4}_[a-z0-9_]+\\.sql$", REG_EXTENDED | REG_NOSUB), 0);
	ok = regexec(&re, name, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static void path_join(char *out, size_t outsz, const char *dir, const char *name)
{
	int n = snprintf(out, outsz, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < outsz);
}

/* Read a whole file into a malloc'd buffer. */
static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static void write_file(const char *dir, const char *name, const char *content, size_t len)
{
	char path[512];
	FILE *f;

	path_join(path, sizeof(path), dir, name);
	f = fopen(path, "wb");
	if (f == NULL)
		fail_msg("cannot create %s: %s", path, strerror(errno));
	assert_int_equal(fwrite(content, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_str(const char *dir, const char *name, const char *content)
{
	write_file(dir, name, content, strlen(content));
}

/* Copy every migration file of the real directory into f->dir; count them. */
static void copy_migrations(fixture_t *f)
{
	const char *src = itest_migrations_dir();
	DIR *d = opendir(src);
	struct dirent *e;

	if (d == NULL)
		fail_msg("cannot open DIALFLOW_MIGRATIONS_DIR=%s", src);
	f->nfiles = 0;
	f->first[0] = '\0';
	while ((e = readdir(d)) != NULL) {
		char path[512];
		char *buf;
		size_t len;

		if (!is_migration_name(e->d_name))
			continue;
		path_join(path, sizeof(path), src, e->d_name);
		buf = read_all(path, &len);
		write_file(f->dir, e->d_name, buf, len);
		free(buf);
		if (f->first[0] == '\0' || strcmp(e->d_name, f->first) < 0)
			snprintf(f->first, sizeof(f->first), "%s", e->d_name);
		f->nfiles++;
	}
	closedir(d);
	assert_true(f->nfiles >= 1);
}

static void remove_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[512];

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static int setup(void **state)
{
	fixture_t *f = calloc(1, sizeof(*f));
	char u[64], sql[256];
	PGresult *r;

	assert_non_null(f);
	*state = f;
	snprintf(f->dbname, sizeof(f->dbname), "itest_mig_%s", itest_unique(u, sizeof(u)));
	f->super = itest_super_pg();
	/* the owner role of the test database owns the scratch one too */
	{
		PGconn *o = itest_owner_pg();

		r = itest_query(o, "SELECT current_user", 0, NULL);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER \"%s\"", f->dbname,
			 PQgetvalue(r, 0, 0));
		PQclear(r);
		PQfinish(o);
	}
	itest_exec(f->super, sql, 0, NULL);
	f->url = itest_conninfo_with(itest_db_url(), "dbname", f->dbname, NULL);
	f->owner = itest_pg_connect(f->url);
	snprintf(f->dir, sizeof(f->dir), "/tmp/itest_mig.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	copy_migrations(f);
	return 0;
}

static int teardown(void **state)
{
	fixture_t *f = *state;
	char sql[160];

	PQfinish(f->owner);
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->dbname);
	itest_exec(f->super, sql, 0, NULL);
	PQfinish(f->super);
	remove_dir(f->dir);
	free(f->url);
	free(f);
	return 0;
}

/* A db handle on the scratch database, as migrate runs (the owner, no role). */
static db_t *scratch_db(const fixture_t *f, const char *app)
{
	db_t *db = db_new(f->url, app, NULL, 2, 30000);

	assert_int_equal(db_ensure(db), 0);
	return db;
}

static int64_t applied_count(const fixture_t *f)
{
	if (ITEST_I64(f->owner, "SELECT (to_regclass($1) IS NULL)::int",
		      "public.schema_migrations"))
		return 0;
	return itest_i64(f->owner, "SELECT count(*) FROM schema_migrations", 0, NULL);
}

/* The number of advisory locks the backend of db holds (granted or not). */
static int64_t advisory_locks_of(const fixture_t *f, db_t *db)
{
	char pid[24];

	itest_i64s(pid, sizeof(pid), PQbackendPID(db_conn(db)));
	return ITEST_I64(
	    f->super, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int",
	    pid);
}

/* Whether a checksum recorded for `name` matches the file's content. */
static void assert_checksum_of_file(const char *dir, const char *name, const char *recorded)
{
	char path[512], raw[65], stripped[65];
	size_t len, slen;
	char *buf;

	path_join(path, sizeof(path), dir, name);
	buf = read_all(path, &len);
	auth_sha256_hex(buf, len, raw);
	/* migrate.c reads files with config_read_file(), which drops trailing newlines */
	slen = len;
	while (slen > 0 && (buf[slen - 1] == '\n' || buf[slen - 1] == '\r'))
		slen--;
	auth_sha256_hex(buf, slen, stripped);
	free(buf);
	if (strcmp(recorded, raw) != 0 && strcmp(recorded, stripped) != 0)
		fail_msg("checksum of %s is %s; the file hashes to %s", name, recorded, raw);
}

static void test_fresh_database_applies_all_then_nothing(void **state)
{
	fixture_t *f = *state;
	db_t *db = scratch_db(f, "itest_migrate_fresh");
	PGresult *r;

	assert_int_equal(applied_count(f), 0);
	assert_int_equal(migrate_run(db, itest_migrations_dir()), f->nfiles);
	assert_int_equal(applied_count(f), f->nfiles);
	/* the session lock is released when the run ends */
	assert_int_equal(advisory_locks_of(f, db), 0);
	/* the schema of 0001 is there, with row-level security on the tenant tables */
	assert_int_equal(
	    itest_i64(f->owner,
		      "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
		      "AND relkind IN ('r', 'p') AND relname IN ('businesses', 'users', "
		      "'refresh_tokens', "
		      "'business_pages', 'workers', 'audit_events', 'schema_migrations')",
		      0, NULL),
	    7);
	assert_int_equal(
	    itest_i64(f->owner,
		      "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
		      "AND relrowsecurity AND relname IN ('businesses', 'users', "
		      "'refresh_tokens', 'business_pages', 'audit_events')",
		      0, NULL),
	    5);

	/* every file has a row with its version, name and checksum */
	r = itest_query(f->owner,
			"SELECT version, name, checksum, applied_at IS NOT NULL "
			"FROM schema_migrations ORDER BY version",
			0, NULL);
	assert_int_equal(PQntuples(r), f->nfiles);
	for (int i = 0; i < PQntuples(r); i++) {
		const char *name = PQgetvalue(r, i, 1), *sum = PQgetvalue(r, i, 2);

		assert_int_equal(atoi(PQgetvalue(r, i, 0)), atoi(name));
		assert_int_equal(strlen(sum), 64);
		assert_int_equal(strspn(sum, "0123456789abcdef"), 64);
		assert_string_equal(PQgetvalue(r, i, 3), "t");
		assert_checksum_of_file(itest_migrations_dir(), name, sum);
	}
	PQclear(r);

	/* idempotent: a second run (and a third, on a new connection) applies nothing */
	assert_int_equal(migrate_run(db, itest_migrations_dir()), 0);
	db_free(db);
	db = scratch_db(f, "itest_migrate_fresh2");
	assert_int_equal(migrate_run(db, itest_migrations_dir()), 0);
	assert_int_equal(applied_count(f), f->nfiles);
	db_free(db);
}

static void test_new_file_is_applied_once(void **state)
{
	fixture_t *f = *state;
	db_t *db = scratch_db(f, "itest_migrate_new");
	PGresult *r;

	assert_int_equal(migrate_run(db, f->dir), f->nfiles);
	write_str(f->dir, "9999_test.sql",
		  "CREATE TABLE itest_9999 (id integer);\nINSERT INTO itest_9999 VALUES (1);\n");
	/* names outside NNNN_name.sql are not migrations, whatever they contain */
	write_str(f->dir, "9990_Upper.sql", "SELECT broken syntax here;");
	write_str(f->dir, "99_short.sql", "SELECT broken syntax here;");
	write_str(f->dir, "9991_notes.txt", "SELECT broken syntax here;");
	assert_int_equal(migrate_run(db, f->dir), 1);
	assert_int_equal(migrate_run(db, f->dir), 0);
	assert_int_equal(itest_i64(f->owner, "SELECT count(*) FROM itest_9999", 0, NULL), 1);
	assert_int_equal(applied_count(f), f->nfiles + 1);
	r = itest_query(
	    f->owner, "SELECT name, checksum FROM schema_migrations WHERE version = 9999", 0, NULL);
	assert_int_equal(PQntuples(r), 1);
	assert_string_equal(PQgetvalue(r, 0, 0), "9999_test.sql");
	assert_checksum_of_file(f->dir, "9999_test.sql", PQgetvalue(r, 0, 1));
	PQclear(r);
	db_free(db);
}

static void test_changed_applied_file_is_refused(void **state)
{
	fixture_t *f = *state;
	db_t *db = scratch_db(f, "itest_migrate_tamper");
	static const char edit[] = "\n-- edited after it was applied\n";
	char path[512], *orig, *tampered, *before;
	size_t len;

	assert_int_equal(migrate_run(db, f->dir), f->nfiles);
	before = itest_db_str(db, "SELECT checksum FROM schema_migrations WHERE name = $1", 1,
			      (const char *[]){f->first});
	assert_non_null(before);

	/* edit history, and add a pending file that must NOT be applied */
	path_join(path, sizeof(path), f->dir, f->first);
	orig = read_all(path, &len);
	tampered = malloc(len + sizeof(edit));
	assert_non_null(tampered);
	memcpy(tampered, orig, len);
	memcpy(tampered + len, edit, sizeof(edit));
	write_file(f->dir, f->first, tampered, len + strlen(edit));
	write_str(f->dir, "9998_pending.sql", "CREATE TABLE itest_pending (id integer);");

	assert_int_equal(migrate_run(db, f->dir), -1);
	assert_int_equal(
	    ITEST_I64(f->owner, "SELECT (to_regclass($1) IS NULL)::int", "public.itest_pending"),
	    1);
	assert_int_equal(applied_count(f), f->nfiles);
	assert_int_equal(itest_i64(f->owner,
				   "SELECT count(*) FROM schema_migrations WHERE version = 9998", 0,
				   NULL),
			 0);
	{
		char *after =
		    itest_db_str(db, "SELECT checksum FROM schema_migrations WHERE name = $1", 1,
				 (const char *[]){f->first});

		assert_string_equal(after, before);
		free(after);
	}
	/* the refusal let go of the lock, and the connection is still usable */
	assert_int_equal(advisory_locks_of(f, db), 0);
	assert_true(db_is_up(db));

	/* control: with history restored, the same run applies the pending file */
	write_file(f->dir, f->first, orig, len);
	assert_int_equal(migrate_run(db, f->dir), 1);
	assert_int_equal(ITEST_I64(f->owner, "SELECT (to_regclass($1) IS NOT NULL)::int",
				   "public.itest_pending"),
			 1);
	free(orig);
	free(tampered);
	free(before);
	db_free(db);
}

static void test_failing_file_is_rolled_back(void **state)
{
	fixture_t *f = *state;
	db_t *db = scratch_db(f, "itest_migrate_broken");

	/* one run: the real files commit one by one, then the broken one fails whole */
	write_str(f->dir, "9997_broken.sql",
		  "CREATE TABLE itest_partial (id integer);\nSELECT 1 / 0;\n");
	assert_int_equal(migrate_run(db, f->dir), -1);
	assert_int_equal(applied_count(f), f->nfiles);
	assert_int_equal(
	    ITEST_I64(f->owner, "SELECT (to_regclass($1) IS NULL)::int", "public.itest_partial"),
	    1);
	assert_int_equal(itest_i64(f->owner,
				   "SELECT count(*) FROM schema_migrations WHERE version = 9997", 0,
				   NULL),
			 0);
	assert_int_equal(advisory_locks_of(f, db), 0);

	/* fixed, it applies on the next run (it was never recorded) */
	write_str(f->dir, "9997_broken.sql", "CREATE TABLE itest_partial (id integer);\n");
	assert_int_equal(migrate_run(db, f->dir), 1);
	assert_int_equal(applied_count(f), f->nfiles + 1);
	db_free(db);
}

/* In a child: run migrate over url/dir; exit with the count applied (CHILD_FAILED on -1). */
static pid_t spawn_runner(const char *url, const char *dir, const char *app)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		db_t *db = db_new(url, app, NULL, 2, 30000);
		int n = db_ensure(db) == 0 ? migrate_run(db, dir) : -1;

		db_free(db);
		/* _exit: no cmocka, no atexit handlers of the parent's state in the child */
		_exit(n >= 0 && n < CHILD_FAILED ? n : CHILD_FAILED);
	}
	return pid;
}

/* Wait (bounded) for a child; returns its exit code, or fails the test. */
static int reap(pid_t pid)
{
	int64_t deadline = itest_now_ms() + 30000;
	struct timespec pause = {0, 10 * 1000 * 1000};
	int status = 0;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		assert_true(r == 0);
		if (itest_now_ms() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			fail_msg("migrate runner %d did not finish", (int)pid);
		}
		nanosleep(&pause, NULL);
	}
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void test_advisory_lock_serialises_runners(void **state)
{
	fixture_t *f = *state;
	char u[64], app1[96], app2[96], like[100];
	pid_t c1, c2;
	int n1, n2;
	bool waiting;

	itest_unique(u, sizeof(u));
	snprintf(app1, sizeof(app1), "itest_migchild_%s_1", u);
	snprintf(app2, sizeof(app2), "itest_migchild_%s_2", u);
	snprintf(like, sizeof(like), "itest_migchild_%s_%%", u);

	/* a third session holds the migration lock */
	itest_exec(f->owner, "SELECT pg_advisory_lock(" LOCK_KEY ")", 0, NULL);
	c1 = spawn_runner(f->url, f->dir, app1);
	c2 = spawn_runner(f->url, f->dir, app2);

	/* both runners block on the lock, and nothing has been created meanwhile */
	waiting =
	    itest_wait_i64(f->super, 2, 10000,
			   "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE $1 "
			   "AND wait_event_type = 'Lock' AND wait_event = 'advisory'",
			   1, (const char *[]){like});
	if (!waiting) {
		kill(c1, SIGKILL);
		kill(c2, SIGKILL);
		waitpid(c1, NULL, 0);
		waitpid(c2, NULL, 0);
		fail_msg("the two runners were not both seen waiting on the advisory lock");
	}
	assert_int_equal(applied_count(f), 0);
	assert_int_equal(
	    ITEST_I64(f->super,
		      "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
		      "WHERE l.locktype = 'advisory' AND NOT l.granted "
		      "AND a.application_name LIKE $1",
		      like),
	    2);

	/* release: they run one after the other, and the files apply exactly once */
	assert_int_equal(
	    itest_i64(f->owner, "SELECT pg_advisory_unlock(" LOCK_KEY ")::int", 0, NULL), 1);
	n1 = reap(c1);
	n2 = reap(c2);
	assert_int_not_equal(n1, CHILD_FAILED);
	assert_int_not_equal(n2, CHILD_FAILED);
	assert_int_equal(n1 + n2, f->nfiles);
	assert_true((n1 == f->nfiles && n2 == 0) || (n1 == 0 && n2 == f->nfiles));
	assert_int_equal(applied_count(f), f->nfiles);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh_database_applies_all_then_nothing, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_new_file_is_applied_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_changed_applied_file_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failing_file_is_rolled_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_advisory_lock_serialises_runners, setup, teardown),
	};

	itest_init();
	return cmocka_run_group_tests_name("migrate", tests, NULL, NULL);
}
