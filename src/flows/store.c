/*
 * store.c - flow versions and active flows in PostgreSQL (see flow_store.h).
 */
#include <string.h>

#include "dialflow/err.h"
#include "dialflow/flow_store.h"
#include "dialflow/jsonutil.h"

static const db_stmt_t stmts[] = {
    {"fs_active_by_name",
     "SELECT f.id, v.id, v.definition::text FROM flows f JOIN flow_versions v "
     "ON v.id = f.current_version_id WHERE f.business_id = $1::bigint AND f.name = $2 "
     "AND f.is_active"},
    {"fs_current", "SELECT f.id, v.id, v.definition::text FROM flows f JOIN flow_versions v "
		   "ON v.id = f.current_version_id WHERE f.business_id = $1::bigint "
		   "AND f.id = $2::bigint"},
    {"fs_version", "SELECT flow_id, id, definition::text FROM flow_versions WHERE id = $1::bigint"},
    {"fs_candidates",
     "SELECT f.id, v.id, v.definition::text, f.name FROM flows f JOIN flow_versions v "
     "ON v.id = f.current_version_id WHERE f.business_id = $1::bigint AND f.is_active "
     "ORDER BY f.name LIMIT 500"},
};

void flow_store_register(void)
{
	db_register(stmts, sizeof(stmts) / sizeof(stmts[0]));
}

/* Row i of (flow id, version id, definition text) into *out. */
static int ref_from_row(arena_t *a, const PGresult *r, int i, flow_def_ref_t *out)
{
	const char *why = NULL;
	const char *text = db_str(r, i, 2);
	json_t *def = json_decode_strict(a, text, strlen(text), &why);

	if (def == NULL)
		return ERR_INTERNAL; /* stored definitions were validated JSON */
	out->flow_id = db_i64(r, i, 0);
	out->version_id = db_i64(r, i, 1);
	out->definition = def;
	return 0;
}

/* Run a one-row lookup and fill *out. */
static int lookup(PGresult *r, int err, arena_t *a, flow_def_ref_t *out)
{
	memset(out, 0, sizeof(*out));
	if (r == NULL)
		return err;
	if (PQntuples(r) != 1)
		return ERR_NOTFOUND;
	return ref_from_row(a, r, 0, out);
}

int flow_store_active_by_name(db_t *db, arena_t *a, int64_t business_id, const char *name,
			      flow_def_ref_t *out)
{
	int err = 0;
	PGresult *r = DB_EXEC(db, a, &err, "fs_active_by_name", db_i64s(a, business_id), name);

	return lookup(r, err, a, out);
}

int flow_store_current(db_t *db, arena_t *a, int64_t business_id, int64_t flow_id,
		       flow_def_ref_t *out)
{
	int err = 0;
	PGresult *r =
	    DB_EXEC(db, a, &err, "fs_current", db_i64s(a, business_id), db_i64s(a, flow_id));

	return lookup(r, err, a, out);
}

int flow_store_version(db_t *db, arena_t *a, int64_t version_id, flow_def_ref_t *out)
{
	int err = 0;
	PGresult *r = DB_EXEC(db, a, &err, "fs_version", db_i64s(a, version_id));

	return lookup(r, err, a, out);
}

int flow_store_candidates(db_t *db, arena_t *a, int64_t business_id, flow_candidate_t **out,
			  size_t *n)
{
	PGresult *r;
	flow_candidate_t *c;
	int err, rows, k = 0;

	*out = NULL;
	*n = 0;
	r = DB_EXEC(db, a, &err, "fs_candidates", db_i64s(a, business_id));
	if (r == NULL)
		return err;
	rows = PQntuples(r);
	if (rows == 0)
		return 0;
	c = arena_calloc(a, (size_t)rows, sizeof(*c));
	for (int i = 0; i < rows; i++) {
		if (ref_from_row(a, r, i, &c[k].flow) < 0)
			continue;
		c[k].name = arena_strdup(a, db_str(r, i, 3));
		k++;
	}
	*out = c;
	*n = (size_t)k;
	return 0;
}

int flow_store_load_flow(void *ud, const char *name, flow_def_ref_t *out)
{
	flow_store_env_t *e = ud;
	int rc = flow_store_active_by_name(e->db, e->a, e->business_id, name, out);

	if (rc == 0)
		return 0;
	if (rc != ERR_NOTFOUND)
		e->err = rc;
	return -1;
}
