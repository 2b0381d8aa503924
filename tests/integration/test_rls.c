/*
 * test_rls.c - the proof of tenant isolation (DESIGN §5 "Row-level security").
 *
 * Two tenants with different numbers of users, pages and audit events, so
 * every count below would change if its policy were dropped or loosened:
 * the queries as dialflow_app deliberately have NO tenant WHERE clause.
 * Fixtures are written through the owner, which RLS does not apply to.
 */
#include "itest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dialflow/auth.h"
#include "dialflow/err.h"

#define A_USERS	 4 /* owner, admin, agent, an inactive agent */
#define B_USERS	 2 /* owner, agent */
#define A_PAGES	 2
#define B_PAGES	 3
#define A_AUDITS 2
#define B_AUDITS 1

static struct {
	PGconn *owner; /* raw owner connection: fixtures and ground truth */
	PGconn *super;
	db_t *app; /* dialflow_app, as the API runs */
	char app_name[96];
	int64_t a, b;
	int64_t a_owner, a_admin, a_agent, a_inactive;
	int64_t b_owner, b_agent;
	int64_t sysadmin;
	char sa[24], sb[24]; /* a and b as text */
} fx;

static int group_setup(void **state)
{
	static const char *const a_pages[] = {"calls_outbound", "whatsapp_flows", NULL};
	static const char *const b_pages[] = {"calls_outbound", "whatsapp_flows", "settings", NULL};
	char u[64], id[24];

	(void)state;
	fx.owner = itest_owner_pg();
	fx.super = itest_super_pg();
	fx.a = itest_create_business(fx.owner, "rls A", true);
	fx.b = itest_create_business(fx.owner, "rls B", true);
	itest_i64s(fx.sa, sizeof(fx.sa), fx.a);
	itest_i64s(fx.sb, sizeof(fx.sb), fx.b);
	fx.a_owner = itest_create_user(fx.owner, fx.a, "owner", NULL, NULL, 0);
	fx.a_admin = itest_create_user(fx.owner, fx.a, "admin", NULL, NULL, 0);
	fx.a_agent = itest_create_user(fx.owner, fx.a, "agent", NULL, NULL, 0);
	fx.a_inactive = itest_create_user(fx.owner, fx.a, "agent", NULL, NULL, 0);
	ITEST_X(fx.owner, "UPDATE users SET is_active = false WHERE id = $1::bigint",
		itest_i64s(id, sizeof(id), fx.a_inactive));
	fx.b_owner = itest_create_user(fx.owner, fx.b, "owner", NULL, NULL, 0);
	fx.b_agent = itest_create_user(fx.owner, fx.b, "agent", NULL, NULL, 0);
	fx.sysadmin = itest_create_user(fx.owner, 0, "system_admin", NULL, NULL, 0);
	itest_enable_pages(fx.owner, fx.a, a_pages);
	itest_enable_pages(fx.owner, fx.b, b_pages);
	for (int i = 0; i < A_AUDITS; i++)
		itest_create_audit(fx.owner, fx.a, "itest.rls");
	for (int i = 0; i < B_AUDITS; i++)
		itest_create_audit(fx.owner, fx.b, "itest.rls");
	itest_create_audit(fx.owner, 0, "itest.rls"); /* a system event: no tenant sees it */
	/* a live refresh token of A's owner (the app role must never see the table) */
	{
		char tok[65], hash[65];

		assert_int_equal(auth_random_token(tok, sizeof(tok), 32), 0);
		auth_sha256_hex(tok, strlen(tok), hash);
		ITEST_X(fx.owner,
			"INSERT INTO refresh_tokens (user_id, business_id, token_hash, family_id, "
			"expires_at) VALUES ($1::bigint, $2::bigint, $3, gen_random_uuid(), "
			"now() + interval '1 hour')",
			itest_i64s(id, sizeof(id), fx.a_owner), fx.sa, hash);
	}
	snprintf(fx.app_name, sizeof(fx.app_name), "itest_rls_%s", itest_unique(u, sizeof(u)));
	fx.app = itest_app_db(fx.app_name);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	db_free(fx.app);
	PQfinish(fx.owner);
	PQfinish(fx.super);
	return 0;
}

/* Every test starts and ends outside a transaction. */
static int test_setup(void **state)
{
	(void)state;
	assert_int_equal(db_ensure(fx.app), 0);
	assert_int_equal(PQtransactionStatus(db_conn(fx.app)), PQTRANS_IDLE);
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	db_rollback(fx.app);
	return 0;
}

/* count(*) of a table as the app role, in its current transaction. */
static int64_t app_count(const char *table)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return itest_db_i64(fx.app, sql, 0, NULL);
}

static int64_t owner_count(const char *table)
{
	char sql[128];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	return itest_i64(fx.owner, sql, 0, NULL);
}

static void begin_scoped(int64_t business, bool system_admin)
{
	arena_t *a = arena_new(1024);

	assert_int_equal(db_begin(fx.app), 0);
	assert_int_equal(db_set_tenant(fx.app, a, business, system_admin), 0);
	arena_free(a);
}

/* The SQLSTATE of `sql` as the app role in a fresh transaction scoped to `business`. */
static const char *app_state_scoped(int64_t business, const char *sql, int n,
				    const char *const *params)
{
	const char *s;

	begin_scoped(business, false);
	s = itest_sqlstate(db_conn(fx.app), sql, n, params);
	db_rollback(fx.app);
	return s;
}

static void test_app_role_is_unprivileged(void **state)
{
	char *who, *owner_role;

	(void)state;
	who = itest_db_str(fx.app, "SELECT current_user::text", 0, NULL);
	assert_string_equal(who, ITEST_APP_ROLE);
	free(who);
	assert_int_equal(
	    itest_db_i64(fx.app,
			 "SELECT (NOT rolsuper AND NOT rolbypassrls)::int FROM pg_roles "
			 "WHERE rolname = current_user",
			 0, NULL),
	    1);
	/* not the owner of any tenant table (owners are exempt from RLS) */
	assert_int_equal(itest_db_i64(fx.app,
				      "SELECT count(*) FROM pg_class WHERE relowner = "
				      "(SELECT oid FROM pg_roles WHERE rolname = current_user)",
				      0, NULL),
			 0);
	/* and without the owner's privileges through membership */
	owner_role = itest_db_str(fx.app, "SELECT session_user::text", 0, NULL);
	assert_int_equal(
	    ITEST_DB_I64(fx.app, "SELECT pg_has_role(current_user, $1, 'USAGE')::int", owner_role),
	    0);
	free(owner_role);
}

static void test_role_survives_reconnect(void **state)
{
	unsigned before = db_connect_count(fx.app);
	char *who;

	(void)state;
	/* after the server drops us, the fresh connection takes the role again */
	itest_kill_session(fx.super, fx.app_name, db_conn(fx.app));
	assert_int_equal(db_begin(fx.app), 0);
	assert_int_equal(db_connect_count(fx.app), before + 1);
	who = itest_db_str(fx.app, "SELECT current_user::text", 0, NULL);
	assert_string_equal(who, ITEST_APP_ROLE);
	free(who);
	assert_int_equal(app_count("users"), 0);
	db_rollback(fx.app);
}

static void test_fixtures_differ_for_the_owner(void **state)
{
	(void)state;
	/* ground truth through the owner (no RLS): the counts below can tell A from A+B */
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM users WHERE business_id IN ($1, $2)",
				   fx.sa, fx.sb),
			 A_USERS + B_USERS);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM business_pages WHERE business_id IN ($1, $2)",
		      fx.sa, fx.sb),
	    A_PAGES + B_PAGES);
	assert_int_equal(
	    ITEST_I64(fx.owner, "SELECT count(*) FROM audit_events WHERE business_id IN ($1, $2)",
		      fx.sa, fx.sb),
	    A_AUDITS + B_AUDITS);
	assert_true(owner_count("businesses") >= 2);
}

static void test_tenant_sees_only_its_rows(void **state)
{
	(void)state;
	begin_scoped(fx.a, false);
	assert_int_equal(app_count("users"), A_USERS);
	assert_int_equal(app_count("business_pages"), A_PAGES);
	assert_int_equal(app_count("audit_events"), A_AUDITS);
	assert_int_equal(app_count("businesses"), 1);
	assert_int_equal(itest_db_i64(fx.app, "SELECT id FROM businesses", 0, NULL), fx.a);
	assert_int_equal(
	    itest_db_i64(fx.app,
			 "SELECT count(*) FROM users WHERE business_id IS DISTINCT FROM "
			 "app_current_business()",
			 0, NULL),
	    0);
	assert_int_equal(db_commit(fx.app), 0);

	begin_scoped(fx.b, false);
	assert_int_equal(app_count("users"), B_USERS);
	assert_int_equal(app_count("business_pages"), B_PAGES);
	assert_int_equal(app_count("audit_events"), B_AUDITS);
	assert_int_equal(app_count("businesses"), 1);
	assert_int_equal(itest_db_i64(fx.app, "SELECT id FROM businesses", 0, NULL), fx.b);
	assert_int_equal(db_commit(fx.app), 0);
}

static void test_no_tenant_sees_nothing(void **state)
{
	static const char *const tables[] = {"users", "business_pages", "audit_events",
					     "businesses"};

	(void)state;
	/* a transaction nobody scoped */
	assert_int_equal(db_begin(fx.app), 0);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		assert_int_equal(app_count(tables[i]), 0);
	db_rollback(fx.app);
	/* scoped to "no tenant" explicitly */
	begin_scoped(0, false);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		assert_int_equal(app_count(tables[i]), 0);
	db_rollback(fx.app);
	/* the scope is transaction-local: a committed scope does not leak into the next one */
	begin_scoped(fx.a, false);
	assert_int_equal(app_count("users"), A_USERS);
	assert_int_equal(db_commit(fx.app), 0);
	assert_int_equal(db_begin(fx.app), 0);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
		assert_int_equal(app_count(tables[i]), 0);
	db_rollback(fx.app);
}

static void test_system_admin_sees_every_tenant(void **state)
{
	(void)state;
	begin_scoped(0, true);
	assert_int_equal(app_count("users"), owner_count("users"));
	assert_int_equal(app_count("businesses"), owner_count("businesses"));
	assert_int_equal(app_count("business_pages"), owner_count("business_pages"));
	assert_int_equal(app_count("audit_events"), owner_count("audit_events"));
	assert_int_equal(ITEST_DB_I64(fx.app,
				      "SELECT count(*) FROM users WHERE business_id IN ($1, $2)",
				      fx.sa, fx.sb),
			 A_USERS + B_USERS);
	db_rollback(fx.app);
}

static void test_insert_into_other_tenant_is_rejected(void **state)
{
	arena_t *a = arena_new(1024);
	char u[64], email[128];
	int err = 0;

	(void)state;
	snprintf(email, sizeof(email), "intruder.%s@itest.example", itest_unique(u, sizeof(u)));
	/* through the db layer: an error, never a silent success */
	begin_scoped(fx.a, false);
	assert_null(db_exec_sql(fx.app, a,
				"INSERT INTO users (business_id, email, password_hash, role) "
				"VALUES ($1::bigint, $2, 'x', 'agent')",
				2, (const char *[]){fx.sb, email}, &err));
	assert_int_equal(err, ERR_INTERNAL);
	db_rollback(fx.app);
	/* and the reason is the policy's WITH CHECK (42501), for each tenant table */
	assert_string_equal(
	    app_state_scoped(fx.a,
			     "INSERT INTO users (business_id, email, password_hash, "
			     "role) VALUES ($1::bigint, $2, 'x', 'agent')",
			     2, (const char *[]){fx.sb, email}),
	    "42501");
	assert_string_equal(app_state_scoped(fx.a,
					     "INSERT INTO business_pages (business_id, page_key) "
					     "VALUES ($1::bigint, 'itest_page')",
					     1, (const char *[]){fx.sb}),
			    "42501");
	assert_string_equal(app_state_scoped(fx.a,
					     "INSERT INTO audit_events (business_id, tag, action) "
					     "VALUES ($1::bigint, 'AUDIT', 'itest.forged')",
					     1, (const char *[]){fx.sb}),
			    "42501");
	assert_int_equal(ITEST_I64(fx.owner, "SELECT count(*) FROM users WHERE email = $1", email),
			 0);

	/* control: the same insert into the tenant in scope is allowed (then rolled back) */
	begin_scoped(fx.a, false);
	assert_non_null(db_exec_sql(fx.app, a,
				    "INSERT INTO users (business_id, email, password_hash, role) "
				    "VALUES ($1::bigint, $2, 'x', 'agent')",
				    2, (const char *[]){fx.sa, email}, &err));
	assert_int_equal(app_count("users"), A_USERS + 1);
	db_rollback(fx.app);
	arena_free(a);
}

static void test_update_of_other_tenant_changes_nothing(void **state)
{
	arena_t *a = arena_new(1024);
	char id_b[24], id_a[24];
	PGresult *r;
	int err = 0;

	(void)state;
	itest_i64s(id_b, sizeof(id_b), fx.b_agent);
	itest_i64s(id_a, sizeof(id_a), fx.a_agent);
	begin_scoped(fx.a, false);
	r = db_exec_sql(fx.app, a, "UPDATE users SET name = 'hijacked' WHERE id = $1::bigint", 1,
			(const char *[]){id_b}, &err);
	assert_non_null(r);
	assert_string_equal(PQcmdTuples(r), "0");
	r = db_exec_sql(fx.app, a, "UPDATE businesses SET name = 'hijacked' WHERE id = $1::bigint",
			1, (const char *[]){fx.sb}, &err);
	assert_non_null(r);
	assert_string_equal(PQcmdTuples(r), "0");
	/* control: the same UPDATE reaches the tenant's own user */
	r = db_exec_sql(fx.app, a, "UPDATE users SET name = 'renamed' WHERE id = $1::bigint", 1,
			(const char *[]){id_a}, &err);
	assert_non_null(r);
	assert_string_equal(PQcmdTuples(r), "1");
	db_rollback(fx.app);
	/* nor can a row be moved into another tenant (WITH CHECK on the new row) */
	assert_string_equal(app_state_scoped(fx.a,
					     "UPDATE users SET business_id = $1::bigint "
					     "WHERE id = $2::bigint",
					     2, (const char *[]){fx.sb, id_a}),
			    "42501");
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM users WHERE id = $1::bigint AND name = 'Itest User' "
		      "AND business_id = $2::bigint",
		      id_b, fx.sb),
	    1);
	assert_int_equal(ITEST_I64(fx.owner,
				   "SELECT count(*) FROM users WHERE id = $1::bigint "
				   "AND business_id = $2::bigint",
				   id_a, fx.sa),
			 1);
	arena_free(a);
}

static void test_tenant_cannot_make_a_system_admin(void **state)
{
	char id[24], u[64], email[128];

	(void)state;
	/* the escalation a tenant would want: a user of no tenant with role system_admin */
	itest_i64s(id, sizeof(id), fx.a_owner);
	assert_string_equal(app_state_scoped(fx.a,
					     "UPDATE users SET role = 'system_admin', "
					     "business_id = NULL WHERE id = $1::bigint",
					     1, (const char *[]){id}),
			    "42501");
	snprintf(email, sizeof(email), "sa.%s@itest.example", itest_unique(u, sizeof(u)));
	assert_string_equal(
	    app_state_scoped(fx.a,
			     "INSERT INTO users (business_id, email, password_hash, "
			     "role) VALUES (NULL, $1, 'x', 'system_admin')",
			     1, (const char *[]){email}),
	    "42501");
	/* nor a new business of its own */
	assert_string_equal(app_state_scoped(fx.a, "INSERT INTO businesses (name) VALUES ($1)", 1,
					     (const char *[]){email}),
			    "42501");
	assert_int_equal(
	    ITEST_I64(fx.owner,
		      "SELECT count(*) FROM users WHERE id = $1::bigint AND role = 'owner' "
		      "AND business_id = $2::bigint",
		      id, fx.sa),
	    1);
}

static void test_refresh_tokens_are_invisible(void **state)
{
	PGresult *r;

	(void)state;
	assert_true(ITEST_I64(fx.owner,
			      "SELECT count(*) FROM refresh_tokens WHERE business_id = $1::bigint",
			      fx.sa) >= 1);
	for (int sysadmin = 0; sysadmin <= 1; sysadmin++) {
		begin_scoped(sysadmin ? 0 : fx.a, sysadmin);
		r = PQexec(db_conn(fx.app), "SELECT count(*) FROM refresh_tokens");
		if (PQresultStatus(r) == PGRES_TUPLES_OK)
			assert_string_equal(PQgetvalue(r, 0, 0), "0");
		else
			assert_string_equal(PQresultErrorField(r, PG_DIAG_SQLSTATE), "42501");
		PQclear(r);
		db_rollback(fx.app);
	}
}

static void test_schema_migrations_is_not_readable(void **state)
{
	(void)state;
	assert_int_equal(
	    itest_i64(fx.owner, "SELECT count(*) FROM schema_migrations", 0, NULL) >= 1, 1);
	begin_scoped(0, true);
	assert_string_equal(
	    itest_sqlstate(db_conn(fx.app), "SELECT count(*) FROM schema_migrations", 0, NULL),
	    "42501");
	db_rollback(fx.app);
}

/* current_setting(name, true) as text, "" for NULL; caller frees. */
static char *setting(const char *name)
{
	char *v = ITEST_DB_STR(fx.app, "SELECT coalesce(current_setting($1, true), '')", name);

	assert_non_null(v);
	return v;
}

static void assert_scope(const char *business, const char *system_admin)
{
	char *b = setting("app.business_id"), *s = setting("app.system_admin");

	assert_string_equal(b, business);
	if (system_admin != NULL)
		assert_string_equal(s, system_admin);
	free(b);
	free(s);
}

#define PRINCIPAL_SQL                                                                              \
	"SELECT user_id, home_business_id, role, is_active, business_id, business_found, "         \
	"pages::text FROM auth_principal($1::bigint, $2::bigint)"

static void test_auth_principal_scopes_to_the_users_tenant(void **state)
{
	arena_t *a = arena_new(1024);
	char id[24];
	PGresult *r;
	int err = 0;

	(void)state;
	/* a tenant user: the row, and the transaction scoped to its business */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2,
			(const char *[]){itest_i64s(id, sizeof(id), fx.a_owner), NULL}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_int_equal(db_i64(r, 0, 0), fx.a_owner);
	assert_int_equal(db_i64(r, 0, 1), fx.a);
	assert_string_equal(db_str(r, 0, 2), "owner");
	assert_true(db_bool(r, 0, 3));
	assert_int_equal(db_i64(r, 0, 4), fx.a);
	assert_string_equal(db_str(r, 0, 6), "{calls_outbound,whatsapp_flows}");
	assert_scope(fx.sa, "off");
	assert_int_equal(app_count("users"), A_USERS);
	assert_int_equal(db_commit(fx.app), 0);

	/* X-Business-Id from a non-system_admin is ignored by the function: still A */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2, (const char *[]){id, fx.sb}, &err);
	assert_non_null(r);
	assert_int_equal(db_i64(r, 0, 4), fx.a);
	assert_scope(fx.sa, "off");
	assert_int_equal(app_count("users"), A_USERS);
	db_rollback(fx.app);

	/* an inactive user gets its row (for the 401) but no scope */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2,
			(const char *[]){itest_i64s(id, sizeof(id), fx.a_inactive), NULL}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_false(db_bool(r, 0, 3));
	assert_scope("", NULL);
	assert_int_equal(app_count("users"), 0);
	db_rollback(fx.app);

	/* an unknown user: no row, no scope */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2,
			(const char *[]){itest_i64s(id, sizeof(id), INT64_MAX), NULL}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 0);
	assert_int_equal(app_count("users"), 0);
	db_rollback(fx.app);
	arena_free(a);
}

static void test_auth_principal_for_a_system_admin(void **state)
{
	arena_t *a = arena_new(1024);
	char id[24], none[24];
	PGresult *r;
	int err = 0;

	(void)state;
	itest_i64s(id, sizeof(id), fx.sysadmin);
	/* acting for A: scoped to A only, system_admin visibility off */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2, (const char *[]){id, fx.sa}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_true(db_isnull(r, 0, 1));
	assert_int_equal(db_i64(r, 0, 4), fx.a);
	assert_true(db_bool(r, 0, 5));
	assert_scope(fx.sa, "off");
	assert_int_equal(app_count("users"), A_USERS);
	assert_int_equal(app_count("businesses"), 1);
	db_rollback(fx.app);

	/* on its own: every tenant */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2, (const char *[]){id, NULL}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_true(db_isnull(r, 0, 4));
	assert_scope("", "on");
	assert_int_equal(app_count("users"), owner_count("users"));
	db_rollback(fx.app);

	/* acting for a business that does not exist: reported, and no visibility at all */
	itest_i64s(none, sizeof(none),
		   itest_i64(fx.owner, "SELECT max(id) + 1000 FROM businesses", 0, NULL));
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, PRINCIPAL_SQL, 2, (const char *[]){id, none}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_false(db_bool(r, 0, 5));
	assert_scope("", "off");
	assert_int_equal(app_count("users"), 0);
	db_rollback(fx.app);
	arena_free(a);
}

static void test_app_resource_business(void **state)
{
	arena_t *a = arena_new(1024);
	char id[24];
	PGresult *r;
	int err = 0;

	(void)state;
	/* no tenant in scope: the SECURITY DEFINER function still answers */
	assert_int_equal(db_begin(fx.app), 0);
	r = db_exec_sql(fx.app, a, "SELECT found, business_id FROM app_resource_business($1, $2)",
			2, (const char *[]){"user", itest_i64s(id, sizeof(id), fx.b_agent)}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_true(db_bool(r, 0, 0));
	assert_int_equal(db_i64(r, 0, 1), fx.b);
	r = db_exec_sql(fx.app, a, "SELECT found, business_id FROM app_resource_business($1, $2)",
			2, (const char *[]){"business", fx.sa}, &err);
	assert_non_null(r);
	assert_true(db_bool(r, 0, 0));
	assert_int_equal(db_i64(r, 0, 1), fx.a);
	r = db_exec_sql(fx.app, a, "SELECT found, business_id FROM app_resource_business($1, $2)",
			2, (const char *[]){"user", itest_i64s(id, sizeof(id), INT64_MAX)}, &err);
	assert_non_null(r);
	assert_int_equal(PQntuples(r), 1);
	assert_false(db_bool(r, 0, 0));
	assert_true(db_isnull(r, 0, 1));
	/* an unknown resource type is an error (22023), not "not found" */
	assert_null(db_exec_sql(fx.app, a,
				"SELECT found, business_id FROM app_resource_business($1, $2)", 2,
				(const char *[]){"planet", "1"}, &err));
	assert_int_equal(err, ERR_INVAL);
	db_rollback(fx.app);
	arena_free(a);
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

/*
 * The API logs in as dialflow_app itself (DIALFLOW_API_DATABASE_URL), so
 * even injected SQL cannot RESET ROLE or SET ROLE its way to the owner,
 * which RLS does not bind.
 */
static void test_app_login_cannot_escape_its_role(void **state)
{
	char *ci;
	PGconn *c;
	PGresult *r;

	(void)state;
	/* the harness gives the role LOGIN; do it here too so the test stands alone */
	itest_exec(fx.super, "ALTER ROLE dialflow_app LOGIN", 0, NULL);
	ci = itest_conninfo_with(itest_db_url(), "user", "dialflow_app", NULL);
	c = PQconnectdb(ci);
	free(ci);
	assert_int_equal(PQstatus(c), CONNECTION_OK);
	itest_exec(c, "RESET ROLE", 0, NULL);
	r = PQexec(c, "SELECT current_user, (SELECT count(*) FROM users)");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	assert_string_equal(PQgetvalue(r, 0, 0), "dialflow_app");
	assert_string_equal(PQgetvalue(r, 0, 1), "0");
	PQclear(r);
	assert_string_equal(itest_sqlstate(c, "SET ROLE dialflow", 0, NULL), "42501");
	assert_string_equal(itest_sqlstate(c, "SET ROLE postgres", 0, NULL), "42501");
	PQfinish(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_app_role_is_unprivileged),
	    T(test_app_login_cannot_escape_its_role),
	    T(test_role_survives_reconnect),
	    T(test_fixtures_differ_for_the_owner),
	    T(test_tenant_sees_only_its_rows),
	    T(test_no_tenant_sees_nothing),
	    T(test_system_admin_sees_every_tenant),
	    T(test_insert_into_other_tenant_is_rejected),
	    T(test_update_of_other_tenant_changes_nothing),
	    T(test_tenant_cannot_make_a_system_admin),
	    T(test_refresh_tokens_are_invisible),
	    T(test_schema_migrations_is_not_readable),
	    T(test_auth_principal_scopes_to_the_users_tenant),
	    T(test_auth_principal_for_a_system_admin),
	    T(test_app_resource_business),
	};

	itest_init();
	return cmocka_run_group_tests_name("rls", tests, group_setup, group_teardown);
}
