# shellcheck shell=bash
# tests/harness/common.sh - shared helpers for ./dev: logging, privileges,
# processes, packages and the autotools builds.
#
# Sourced by ./dev (and by bench scripts); defines functions and DF_* globals
# only, runs nothing on its own. Requires DF_ROOT (the source tree, absolute).

: "${DF_ROOT:?DF_ROOT must be set before sourcing tests/harness/common.sh}"

# Debian packages the build, the stack and the test tiers need.
DF_DEB_PACKAGES=(
	build-essential autoconf automake libtool pkg-config
	libpq-dev libjansson-dev libjwt-dev libfcgi-dev libfcgi-bin libcmocka-dev
	libcurl4-openssl-dev libssl-dev libcrypt-dev
	postgresql-15 postgresql-client-15 nginx spawn-fcgi openssl curl
	clang libclang-rt-14-dev cppcheck clang-format wrk ca-certificates
	chromium nodejs
)

df_log() { printf '==> %s\n' "$*" >&2; }
df_warn() { printf 'warning: %s\n' "$*" >&2; }
df_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

df_is_root() { [ "$(id -u)" -eq 0 ]; }

# Run a command with root privileges (directly as root, else through sudo -n
# so nothing ever waits for a password on stdin).
df_as_root() {
	if df_is_root; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		df_die "need root (or passwordless sudo) to run: $*"
	fi
}

# Run a command as the PostgreSQL OS user: `postgres` when we are root (initdb
# refuses root), ourselves otherwise. The cwd is / so that a 0700 checkout as
# the cwd does not bother initdb/pg_ctl.
df_as_pg() {
	if df_is_root; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# The owner a PostgreSQL data area must have (see df_as_pg).
df_pg_os_user() {
	if df_is_root; then echo postgres; else id -un; fi
}

# ---------------------------------------------------------------------------
# packages

# Install the missing Debian packages (apt-get update only when something is
# missing). Never reads stdin.
df_ensure_deps() {
	local missing=() p
	for p in "${DF_DEB_PACKAGES[@]}"; do
		if ! dpkg -s "$p" >/dev/null 2>&1; then
			missing+=("$p")
		fi
	done
	# npm (the browser tier's playwright-core): Debian's npm package, unless the
	# installed nodejs bundles its own npm (NodeSource's conflicts with Debian's).
	if ! command -v npm >/dev/null 2>&1; then
		missing+=(npm)
	fi
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	df_log "installing missing packages: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# The nginx and postgresql packages start system services on :80 and :5432.
	# We run private instances, so keep the packages from starting anything: a
	# service that fails to start (port taken, no init in a container) would
	# otherwise fail the whole install. policy-rc.d is only added if absent.
	local policy=/usr/sbin/policy-rc.d added=0 rc=0
	if ! df_as_root test -e "$policy"; then
		printf '#!/bin/sh\n# added by dialflow ./dev during apt-get install\nexit 101\n' |
			df_as_root tee "$policy" >/dev/null && df_as_root chmod 0755 "$policy" && added=1
	fi
	df_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null || rc=1
	if [ "$rc" -eq 0 ]; then
		df_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "${missing[@]}" </dev/null || rc=2
	fi
	if [ "$added" -eq 1 ]; then
		df_as_root rm -f "$policy"
	fi
	[ "$rc" -ne 1 ] || df_die "apt-get update failed"
	[ "$rc" -ne 2 ] || df_die "apt-get install failed"
}

# ---------------------------------------------------------------------------
# processes

# True when pid is alive and its command line contains `pattern`
# (guards against a stale pidfile whose pid was reused).
df_pid_matches() {
	local pid="$1" pattern="$2" cmd
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	[ -r "/proc/$pid/cmdline" ] || return 0
	cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
	[[ "$cmd" == *"$pattern"* ]]
}

# Print the pids of a pidfile (one or more lines) that are alive and match.
df_pidfile_alive() {
	local file="$1" pattern="$2" pid
	[ -r "$file" ] || return 0
	# spawn-fcgi ends its pidfile without a newline: read the last line too.
	while read -r pid || [ -n "$pid" ]; do
		if df_pid_matches "$pid" "$pattern"; then
			echo "$pid"
		fi
	done <"$file"
}

# True while pid exists and is not a zombie (an orphan's zombie lingers until
# init reaps it, which some container inits do slowly).
df_pid_running() {
	local state=""
	kill -0 "$1" 2>/dev/null || return 1
	if [ -r "/proc/$1/stat" ]; then
		state="$(sed 's/^.*) \(.\).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
	fi
	[ "$state" != Z ]
}

# Wait up to `secs` (fractional ok) for all pids to exit; returns 1 if some remain.
df_wait_exit() {
	local secs="$1" pid left i
	shift
	local tries
	tries=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 10 }')
	for ((i = 0; i <= tries; i++)); do
		left=0
		for pid in "$@"; do
			if df_pid_running "$pid"; then
				left=1
			fi
		done
		[ "$left" -eq 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# Stop the processes of a pidfile: SIGTERM, wait, then SIGKILL. Removes the file.
df_stop_pidfile() {
	local file="$1" pattern="$2" secs="${3:-10}" pids=() pid
	[ -e "$file" ] || return 0
	mapfile -t pids < <(df_pidfile_alive "$file" "$pattern")
	if [ "${#pids[@]}" -gt 0 ]; then
		kill -TERM "${pids[@]}" 2>/dev/null || true
		if ! df_wait_exit "$secs" "${pids[@]}"; then
			df_warn "$pattern (${pids[*]}) did not stop in ${secs}s; sending SIGKILL"
			for pid in "${pids[@]}"; do
				kill -KILL "$pid" 2>/dev/null || true
			done
			df_wait_exit 5 "${pids[@]}" || true
		fi
	fi
	rm -f "$file"
}

# True when something listens on 127.0.0.1:port.
df_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Short stable hash of a string (used for per-checkout paths).
df_hash() { printf '%s' "$1" | sha256sum | cut -c1-12; }

# ---------------------------------------------------------------------------
# build

# Generate ./configure when it is missing or older than its inputs.
df_autoreconf() {
	local need=0
	if [ ! -x "$DF_ROOT/configure" ] || [ ! -e "$DF_ROOT/build-aux/tap-driver.sh" ]; then
		need=1
	elif [ "$DF_ROOT/configure.ac" -nt "$DF_ROOT/configure" ]; then
		need=1
	fi
	if [ "$need" -eq 1 ]; then
		df_log "autoreconf -fi"
		if ! (cd "$DF_ROOT" && autoreconf -fi); then
			df_warn "autoreconf failed"
			return 1
		fi
	fi
	if [ -e "$DF_ROOT/config.status" ]; then
		df_warn "the source tree is configured in place; run 'make distclean' there" \
			"(./dev builds out of tree, in build/)"
		return 1
	fi
}

# df_build NAME [configure args...]: out-of-tree build in build/NAME
# (configured once; make re-runs configure itself when its inputs change).
# Returns non-zero on failure, after saying why.
df_build() {
	local name="$1"
	shift
	local dir="$DF_ROOT/build/$name"
	df_autoreconf || return 1
	mkdir -p "$dir"
	if [ ! -e "$dir/Makefile" ]; then
		df_log "configuring build/$name $*"
		if ! (cd "$dir" && ../../configure "$@"); then
			df_warn "configure failed (build/$name; see build/$name/config.log)"
			return 1
		fi
	fi
	df_log "building build/$name"
	if ! make -C "$dir" -j"${DF_JOBS:-2}"; then
		df_warn "build failed (build/$name)"
		return 1
	fi
}
