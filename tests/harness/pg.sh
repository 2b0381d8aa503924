# shellcheck shell=bash
# tests/harness/pg.sh - private PostgreSQL clusters for the dev stack and the
# tests: unix socket only (listen_addresses=''), trust auth on that socket,
# owned by the `postgres` OS user when we run as root (initdb refuses root).
#
# A cluster "area" is one directory holding data/ (PGDATA), run/ (the socket
# directory, 0755 so root processes and other users reach it) and
# postgresql.log. Requires common.sh.

# Directory of initdb/pg_ctl: PostgreSQL 15 (Debian 12), else the newest installed.
df_pg_bindir() {
	local d
	if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
		echo /usr/lib/postgresql/15/bin
		return 0
	fi
	d="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort -V | tail -n 1)"
	if [ -n "$d" ] && [ -x "$d/bin/pg_ctl" ]; then
		echo "$d/bin"
		return 0
	fi
	df_warn "PostgreSQL server binaries not found (package postgresql-15)"
	return 1
}

# Create an empty area directory owned by the PostgreSQL OS user.
df_pg_area_mkdir() {
	local area="$1"
	mkdir -p "$area"
	if df_is_root; then
		chown postgres:postgres "$area"
	fi
	chmod 0755 "$area"
}

# df_pg_init AREA FSYNC(on|off): initdb into AREA/data and write our settings.
# Does nothing when AREA/data already holds a cluster.
df_pg_init() {
	local area="$1" fsync="$2" bin locale
	bin="$(df_pg_bindir)" || return 1
	if [ -s "$area/data/PG_VERSION" ]; then
		return 0
	fi
	df_pg_area_mkdir "$area"
	mkdir -p "$area/run"
	if df_is_root; then
		chown postgres:postgres "$area/run"
	fi
	chmod 0755 "$area/run"
	locale=C
	if locale -a 2>/dev/null | grep -qix 'c\.utf-\?8'; then
		locale=C.UTF-8
	fi
	local extra=()
	if [ "$fsync" = off ]; then
		extra+=(--no-sync)
	fi
	if ! df_as_pg "$bin/initdb" -D "$area/data" -A trust -U postgres -E UTF8 \
		--locale="$locale" --no-instructions "${extra[@]}" >"$area/initdb.log" 2>&1; then
		cat "$area/initdb.log" >&2
		df_warn "initdb failed in $area"
		return 1
	fi
	# Appending keeps the file's owner; the server reads it as postgres.
	{
		echo
		echo "# --- dialflow dev/test settings (tests/harness/pg.sh) ---"
		echo "listen_addresses = ''"
		echo "unix_socket_directories = '$area/run'"
		echo "unix_socket_permissions = 0777"
		echo "fsync = $fsync"
		if [ "$fsync" = off ]; then
			echo "synchronous_commit = off"
			echo "full_page_writes = off"
		fi
		echo "max_connections = 100"
		echo "log_line_prefix = '%m [%p] %q%u@%d '"
		echo "log_min_messages = warning"
		echo "log_min_error_statement = error"
	} >>"$area/data/postgresql.conf"
}

# True when the cluster of AREA is running.
df_pg_running() {
	local area="$1" bin
	[ -s "$area/data/PG_VERSION" ] || return 1
	bin="$(df_pg_bindir)" || return 1
	df_as_pg "$bin/pg_ctl" -D "$area/data" status >/dev/null 2>&1
}

# The shell command (a string) that starts / stops the cluster of AREA; the
# e2e tests run these to take the database away under the running stack.
df_pg_start_cmd() {
	local area="$1" bin pre=""
	bin="$(df_pg_bindir)" || return 1
	if df_is_root; then pre="runuser -u postgres -- "; fi
	printf 'cd / && %s%q -D %q -l %q -w -t 60 start >/dev/null' \
		"$pre" "$bin/pg_ctl" "$area/data" "$area/postgresql.log"
}
df_pg_stop_cmd() {
	local area="$1" mode="${2:-fast}" bin pre=""
	bin="$(df_pg_bindir)" || return 1
	if df_is_root; then pre="runuser -u postgres -- "; fi
	printf 'cd / && %s%q -D %q -m %s -w -t 60 stop >/dev/null' \
		"$pre" "$bin/pg_ctl" "$area/data" "$mode"
}

# Start the cluster of AREA unless it is running.
df_pg_start() {
	local area="$1"
	if df_pg_running "$area"; then
		return 0
	fi
	if ! sh -c "$(df_pg_start_cmd "$area")"; then
		tail -n 30 "$area/postgresql.log" >&2 || true
		df_warn "PostgreSQL did not start (log: $area/postgresql.log)"
		return 1
	fi
}

# df_pg_stop AREA [fast|immediate]: stop the cluster if it runs.
df_pg_stop() {
	local area="$1" mode="${2:-fast}"
	if df_pg_running "$area"; then
		sh -c "$(df_pg_stop_cmd "$area" "$mode")" || df_warn "pg_ctl stop failed ($area)"
	fi
}

# Run psql as the cluster's superuser against AREA's socket.
df_pg_psql_super() {
	local area="$1"
	shift
	psql -X -q -v ON_ERROR_STOP=1 -h "$area/run" -U postgres "$@"
}

# df_pg_bootstrap AREA DBNAME: the login role `dialflow` (LOGIN CREATEROLE,
# it owns the schema and creates dialflow_app/dialflow_worker in migration
# 0001) and database DBNAME owned by it. Idempotent.
df_pg_bootstrap() {
	local area="$1" db="$2"
	df_pg_psql_super "$area" -d postgres -v db="$db" <<'SQL'
SELECT 'CREATE ROLE dialflow LOGIN CREATEROLE'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dialflow') \gexec
SELECT format('CREATE DATABASE %I OWNER dialflow', :'db')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

# df_pg_app_logins AREA: let the API's and the worker's group roles (created
# NOLOGIN by migration 0001) log in themselves, so that each binary connects
# as its own role (DIALFLOW_API_DATABASE_URL, DIALFLOW_WORKER_DATABASE_URL) and
# can never RESET ROLE to the owner. Run after migrating. Idempotent.
df_pg_app_logins() {
	local area="$1"
	df_pg_psql_super "$area" -d postgres <<'SQL'
ALTER ROLE dialflow_app LOGIN;
ALTER ROLE dialflow_worker LOGIN;
SQL
}

# libpq URL of DBNAME on AREA's socket, as user `user` (default dialflow).
df_pg_url() {
	local area="$1" db="$2" user="${3:-dialflow}"
	printf 'postgresql:///%s?host=%s&user=%s' "$db" "$area/run" "$user"
}

# Where the dev cluster of this checkout lives. Normally var/pg; when the
# postgres user cannot reach the checkout (e.g. a clone inside a 0700 mktemp
# directory) or the socket path would be too long for a unix socket, the area
# goes to /var/tmp/dialflow-pg-<hash of the checkout path> and var/pg links there.
df_dev_pg_area() {
	local link="$DF_ROOT/var/pg" alt target
	alt="/var/tmp/dialflow-pg-$(df_hash "$DF_ROOT")"
	if [ -L "$link" ]; then
		target="$(readlink "$link")"
		if [ ! -d "$target" ]; then
			df_pg_area_mkdir "$target"
		fi
		echo "$target"
		return 0
	fi
	if [ -d "$link" ]; then
		echo "$link"
		return 0
	fi
	mkdir -p "$DF_ROOT/var"
	df_pg_area_mkdir "$link"
	# 107 bytes is the unix socket path limit; keep a margin for "/run/.s.PGSQL.5432".
	if [ "${#link}" -le 80 ] && df_as_pg test -w "$link" -a -x "$link"; then
		echo "$link"
		return 0
	fi
	rmdir "$link"
	df_pg_area_mkdir "$alt"
	ln -s "$alt" "$link"
	echo "$alt"
}
