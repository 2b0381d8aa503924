/*
 * migrate.h - forward-only SQL migrations (DESIGN §5).
 *
 * Files migrations/NNNN_name.sql are applied in order, each in its own
 * transaction, under a session advisory lock so two runners never race.
 * schema_migrations records version, name and sha256 checksum; an applied
 * file whose checksum changed stops the run before anything is applied.
 */
#ifndef DIALFLOW_MIGRATE_H
#define DIALFLOW_MIGRATE_H

#include "dialflow/db.h"

/*
 * Apply the pending migrations of `dir` over `db` (an owner connection).
 * Returns the number applied (0 when up to date), or -1 after logging why.
 */
int migrate_run(db_t *db, const char *dir);

#endif
