# shellcheck shell=bash
# shellcheck disable=SC2034 # DF_S_* are stack.sh globals
# tests/harness/tiers.sh - the tiers of `./dev test` (and so of CI):
# unit, integration, e2e, browser, fuzz, lint, distcheck. Each tier adds to
# DF_T_PASSED/DF_T_FAILED; df_test_main prints one final `N passed, N failed`.
# Requires common.sh, pg.sh and stack.sh. Never reads stdin.

DF_T_TIERS=(unit integration e2e browser fuzz lint distcheck)
DF_T_PASSED=0
DF_T_FAILED=0
DF_T_SUMMARY=()
DF_T_ASAN="$DF_ROOT/build/asan"
DF_T_LOGS="$DF_ROOT/build/test-logs"
DF_T_PG_AREA=""     # the throwaway cluster (a mktemp dir), once created
DF_T_PG_STATE=""    # "", ok or failed
DF_T_ASAN_STATE=""  # "", ok or failed
DF_T_STACK_ON=0
DF_T_CLEANED=0
DF_T_CHILD=""       # the timeout(1) pid of the command running now
DF_T_TAIL=""

df_t_header() {
	printf '\n======== tier: %s ========\n' "$1"
}

# df_t_count TIER PASSED FAILED [note]
df_t_count() {
	local tier="$1" p="$2" f="$3" note="${4:-}"
	DF_T_PASSED=$((DF_T_PASSED + p))
	DF_T_FAILED=$((DF_T_FAILED + f))
	# Not in the "N passed, N failed" shape: only the final line has it.
	DF_T_SUMMARY+=("$(printf '  %-12s passed=%-4d failed=%-4d %s' "$tier" "$p" "$f" "$note")")
	printf -- '-------- %s: passed=%d failed=%d %s\n' "$tier" "$p" "$f" "$note"
}

# df_t_run LOG SECS [--quiet] CMD...: run CMD under timeout(1) with its output in
# LOG (and on stdout unless --quiet); returns CMD's status (124 on time-out).
# The command runs in the background so that a signal to ./dev interrupts the
# wait at once: timeout puts CMD in its own process group, out of reach of a
# terminal's ^C, and df_test_cleanup ends it through timeout's pid.
df_t_run() {
	local log="$1" secs="$2" quiet=0 rc
	shift 2
	if [ "${1:-}" = --quiet ]; then
		quiet=1
		shift
	fi
	: >"$log"
	timeout --kill-after=10 "$secs" "$@" </dev/null >"$log" 2>&1 &
	DF_T_CHILD=$!
	if [ "$quiet" -eq 0 ]; then
		tail -n +1 -s 0.2 -f --pid="$DF_T_CHILD" "$log" &
		DF_T_TAIL=$!
	fi
	wait "$DF_T_CHILD"
	rc=$?
	DF_T_CHILD=""
	if [ -n "$DF_T_TAIL" ]; then
		wait "$DF_T_TAIL" 2>/dev/null
		DF_T_TAIL=""
	fi
	return "$rc"
}

# Read the automake test-suite summary of a make log: prints "PASSED FAILED"
# (ERROR and XPASS count as failed), or nothing when there is no summary.
df_t_parse_summary() {
	local log="$1"
	grep -q '^# TOTAL:' "$log" || return 0
	awk '
		/^# PASS:/  { p = $3 }
		/^# FAIL:/  { f += $3 }
		/^# ERROR:/ { f += $3 }
		/^# XPASS:/ { f += $3 }
		END { printf "%d %d\n", p, f }
	' "$log"
}

# Show the logs of the tests (paths relative to the build dir) that did not pass.
df_t_show_failed_logs() {
	local t trs
	for t in "$@"; do
		trs="$DF_T_ASAN/$t.trs"
		if [ ! -e "$trs" ] || grep -qE '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
			printf '\n---- %s.log ----\n' "$t"
			cat "$DF_T_ASAN/$t.log" 2>/dev/null || echo "(no log: the test did not run)"
		fi
	done
}

# Fallback for tests that automake generated no `X.log: X` rule for (it does
# so only for programs it saw in TESTS, so `make check TESTS=X` cannot run
# them): drive each program through build-aux/tap-driver.sh exactly as
# `make check` would, then print an automake-style summary.
df_t_tap_run() {
	local t p=0 f=0 n rc=0
	for t in "$@"; do
		mkdir -p "$(dirname "$DF_T_ASAN/$t")"
		(cd "$DF_T_ASAN" && CMOCKA_MESSAGE_OUTPUT=TAP AM_TAP_AWK="${AWK:-awk}" \
			sh "$DF_ROOT/build-aux/tap-driver.sh" --test-name "$t" --log-file "$t.log" \
			--trs-file "$t.trs" --color-tests no --enable-hard-errors yes \
			--expect-failure no -- "./$t") || rc=1
		n="$(grep -cE '^:test-result: (PASS|XFAIL)' "$DF_T_ASAN/$t.trs" 2>/dev/null || true)"
		p=$((p + ${n:-0}))
		n="$(grep -cE '^:test-result: (FAIL|ERROR|XPASS)' "$DF_T_ASAN/$t.trs" 2>/dev/null || true)"
		f=$((f + ${n:-0}))
		[ -e "$DF_T_ASAN/$t.trs" ] || f=$((f + 1))
	done
	printf '# TOTAL: %d\n# PASS:  %d\n# FAIL:  %d\n# ERROR: 0\n# XPASS: 0\n' $((p + f)) "$p" "$f"
	return "$rc"
}

# df_t_make_check TIER TIMEOUT TESTS...: run `make check TESTS=...` in the
# ASan build and count.
df_t_make_check() {
	local tier="$1" secs="$2" rc counts p f log jobs=1
	shift 2
	log="$DF_T_LOGS/$tier.log"
	if [ "$tier" = unit ]; then
		jobs="${DF_JOBS:-2}" # hermetic; the database tiers run one test at a time
	fi
	export AM_COLOR_TESTS=no
	if grep -q "^$1.log:" "$DF_T_ASAN/Makefile"; then
		df_t_run "$log" "$secs" make -C "$DF_T_ASAN" --no-print-directory -j"$jobs" \
			check AM_COLOR_TESTS=no "TESTS=$*"
		rc=$?
	else
		echo "(no make rule for $1.log: running the tests through tap-driver.sh directly)"
		export -f df_t_tap_run
		export DF_T_ASAN DF_ROOT
		df_t_run "$log" "$secs" bash -c 'df_t_tap_run "$@"' bash "$@"
		rc=$?
	fi
	counts="$(df_t_parse_summary "$log")"
	if [ -z "$counts" ]; then
		p=0
		f=1
		[ "$rc" -eq 124 ] && echo "make check timed out after ${secs}s"
		echo "make check produced no test summary (exit $rc)"
	else
		read -r p f <<<"$counts"
		if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
			echo "make check exited $rc with no failed test"
			f=1
		fi
	fi
	if [ "$f" -gt 0 ]; then
		df_t_show_failed_logs "$@"
	fi
	DF_T_LAST_P=$p
	DF_T_LAST_F=$f
}

# The ASan+UBSan build and its test programs, once.
df_t_asan_build() {
	if [ -z "$DF_T_ASAN_STATE" ]; then
		DF_T_ASAN_STATE=failed
		if df_build asan --enable-asan &&
			df_t_run "$DF_T_LOGS/build-tests.log" 1800 --quiet make -C "$DF_T_ASAN" \
				--no-print-directory -j"${DF_JOBS:-2}" check TESTS= AM_COLOR_TESTS=no; then
			DF_T_ASAN_STATE=ok
		else
			tail -n 60 "$DF_T_LOGS/build-tests.log" 2>/dev/null || true
			echo "the ASan build failed"
		fi
	fi
	[ "$DF_T_ASAN_STATE" = ok ]
}

df_t_list() { make -s --no-print-directory -C "$DF_T_ASAN" "print-$1-tests"; }

# The throwaway cluster of the database tiers, created once: a mktemp dir
# owned by postgres, socket only, fsync off; role dialflow, database
# dialflow_test, migrated by the ASan dialflow-admin.
df_t_pg_setup() {
	[ -n "$DF_T_PG_STATE" ] && { [ "$DF_T_PG_STATE" = ok ]; return; }
	DF_T_PG_STATE=failed
	DF_T_PG_AREA="$(mktemp -d /tmp/dialflow-test.XXXXXX)" || return 1
	df_pg_area_mkdir "$DF_T_PG_AREA"
	echo "test cluster: $DF_T_PG_AREA"
	df_pg_init "$DF_T_PG_AREA" off || return 1
	df_pg_start "$DF_T_PG_AREA" || return 1
	df_pg_bootstrap "$DF_T_PG_AREA" dialflow_test || return 1
	DIALFLOW_TEST_DATABASE_URL="$(df_pg_url "$DF_T_PG_AREA" dialflow_test)"
	DIALFLOW_DATABASE_URL="$DIALFLOW_TEST_DATABASE_URL"
	DIALFLOW_TEST_SUPERUSER_URL="$(df_pg_url "$DF_T_PG_AREA" postgres postgres)"
	DIALFLOW_MIGRATIONS_DIR="$DF_ROOT/migrations"
	DIALFLOW_TEST_PG_STOP="$(df_pg_stop_cmd "$DF_T_PG_AREA" fast)"
	DIALFLOW_TEST_PG_START="$(df_pg_start_cmd "$DF_T_PG_AREA")"
	export DIALFLOW_TEST_DATABASE_URL DIALFLOW_DATABASE_URL DIALFLOW_TEST_SUPERUSER_URL \
		DIALFLOW_MIGRATIONS_DIR DIALFLOW_TEST_PG_STOP DIALFLOW_TEST_PG_START
	echo "migrating $DIALFLOW_TEST_DATABASE_URL"
	if ! "$DF_T_ASAN/dialflow-admin" migrate </dev/null; then
		echo "dialflow-admin migrate failed"
		return 1
	fi
	# The stack's binaries log in as their own roles, as in production.
	df_pg_app_logins "$DF_T_PG_AREA" || return 1
	DIALFLOW_API_DATABASE_URL="$(df_pg_url "$DF_T_PG_AREA" dialflow_test dialflow_app)"
	DIALFLOW_WORKER_DATABASE_URL="$(df_pg_url "$DF_T_PG_AREA" dialflow_test dialflow_worker)"
	export DIALFLOW_API_DATABASE_URL DIALFLOW_WORKER_DATABASE_URL
	DF_T_PG_STATE=ok
}

df_tier_unit() {
	df_t_header unit
	if ! df_t_asan_build; then
		df_t_count unit 0 1 "(build failed)"
		return
	fi
	local tests=()
	read -r -a tests <<<"$(df_t_list unit)"
	if [ "${#tests[@]}" -eq 0 ]; then
		df_t_count unit 0 1 "(make print-unit-tests listed nothing)"
		return
	fi
	df_t_make_check unit 300 "${tests[@]}"
	df_t_count unit "$DF_T_LAST_P" "$DF_T_LAST_F"
}

df_tier_integration() {
	local tests=() p=0 f=0
	df_t_header integration
	if ! df_t_asan_build; then
		df_t_count integration 0 1 "(build failed)"
		return
	fi
	if df_t_pg_setup; then
		p=1 # the cluster came up and the migrations applied
	else
		df_t_count integration 0 1 "(test database setup or migrate failed)"
		return
	fi
	read -r -a tests <<<"$(df_t_list integration)"
	if [ "${#tests[@]}" -eq 0 ]; then
		df_t_count integration "$p" "$f" "(no integration tests)"
		return
	fi
	df_t_make_check integration 300 "${tests[@]}"
	df_t_count integration $((p + DF_T_LAST_P)) $((f + DF_T_LAST_F))
}

# Start the e2e stack from the ASan build in var/test-stack on the test port.
df_t_stack_start() {
	local dir="$DF_ROOT/var/test-stack" port="${DIALFLOW_TEST_HTTPS_PORT:-18443}"
	DF_S_API_RATE=1000r/s DF_S_API_BURST=2000 DF_S_AUTH_RATE=20r/s DF_S_AUTH_BURST=40
	DF_S_EXTRA_LOCATIONS=""
	# A previous run killed hard may have left processes behind.
	if [ -d "$dir" ]; then
		df_stack_use "$dir" "$DF_T_ASAN" "$port" 4
		df_stack_stop
	fi
	rm -rf "$dir"
	df_stack_use "$dir" "$DF_T_ASAN" "$port" 4
	DF_T_STACK_ON=1
	DIALFLOW_JWT_SECRET_FILE="$DF_S_SECRET"
	DIALFLOW_PUBLIC_URL="https://localhost:$port"
	DIALFLOW_WORKER_HEARTBEAT_MS=500
	DIALFLOW_WORKER_STALE_S=2
	export DIALFLOW_JWT_SECRET_FILE DIALFLOW_PUBLIC_URL DIALFLOW_WORKER_HEARTBEAT_MS \
		DIALFLOW_WORKER_STALE_S
	# The stack's own carrier simulator, never one (or a Twilio) of the caller's
	# shell; short calls, and a pace and stale threshold that fit a test run.
	unset DIALFLOW_TWILIO_BASE_URL DIALFLOW_TWILIO_ACCOUNT_SID DIALFLOW_TWILIO_AUTH_TOKEN_FILE \
		DIALFLOW_TWILIO_FROM DIALFLOW_TWILIO_CA_FILE DIALFLOW_SANDBOX_PORT \
		DIALFLOW_SANDBOX_CA_FILE
	DIALFLOW_SANDBOX_RING_MS=300
	DIALFLOW_SANDBOX_TALK_MS=500-2000
	# TwiML at 1/8 of real speed (a 40-character <Say> lasts 0.4 s); AMD answers in 0.3 s.
	# Tests that need other odds for their own numbers set a rule (POST /__sandbox/rules).
	DIALFLOW_SANDBOX_SAY_MS=10
	DIALFLOW_SANDBOX_AMD_MS=300
	DIALFLOW_CALLS_PER_SECOND=20
	DIALFLOW_RUN_STALE_S=2
	DIALFLOW_RUN_HEARTBEAT_MS=500 # well under the stale threshold
	# lost callbacks (a PostgreSQL restart mid-call) are reconciled within seconds;
	# the sweep stays above the Twilio client's 10 s request timeout
	DIALFLOW_CALL_RECONCILE_S=5
	DIALFLOW_CALL_LOG_SWEEP_S=15
	DIALFLOW_SHUTDOWN_GRACE_S=3
	export DIALFLOW_SANDBOX_RING_MS DIALFLOW_SANDBOX_TALK_MS DIALFLOW_SANDBOX_SAY_MS \
		DIALFLOW_SANDBOX_AMD_MS DIALFLOW_CALLS_PER_SECOND \
		DIALFLOW_RUN_STALE_S DIALFLOW_RUN_HEARTBEAT_MS DIALFLOW_CALL_RECONCILE_S \
		DIALFLOW_CALL_LOG_SWEEP_S DIALFLOW_SHUTDOWN_GRACE_S
	df_sandbox_env "${DIALFLOW_TEST_SANDBOX_PORT:-$((port + 1))}"
	# WhatsApp: the stack's fake Graph server, quick send retries (tests/e2e/test_e2e_whatsapp.c)
	unset DIALFLOW_WHATSAPP_GRAPH_URL DIALFLOW_FAKE_GRAPH_PORT
	DIALFLOW_OUTBOX_RETRY_BASE_MS=200
	export DIALFLOW_OUTBOX_RETRY_BASE_MS
	df_fake_graph_env "${DIALFLOW_TEST_FAKE_GRAPH_PORT:-$((port + 2))}"
	df_env_defaults
	df_secret_ensure "$DF_S_SECRET" || return 1
	df_tls_ensure "$DF_S_CERT" "$DF_S_KEY" || return 1
	df_env_write "$DF_S_ENV"
	# Sanitizer reports go to the api/worker logs, which are checked afterwards.
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:print_summary=1}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
	df_stack_start || return 1
	df_stack_wait_health 60 || return 1
	DIALFLOW_TEST_BASE_URL="https://localhost:$port"
	DIALFLOW_TEST_CA_FILE="$DF_S_CERT"
	DIALFLOW_ADMIN_BIN="$DF_T_ASAN/dialflow-admin"
	DIALFLOW_TEST_WORKER_PIDFILE="$DF_S_WORKER_PID"
	DIALFLOW_TEST_API_LOG="$DF_S_API_LOG"
	DIALFLOW_TEST_STACK_DIR="$dir"
	DIALFLOW_TEST_SANDBOX_URL="http://127.0.0.1:$DF_S_SANDBOX_PORT"
	DIALFLOW_TEST_SANDBOX_LOG="$DF_S_SANDBOX_LOG"
	DIALFLOW_TEST_FAKE_GRAPH_URL="http://127.0.0.1:$DF_S_FAKE_GRAPH_PORT"
	export DIALFLOW_TEST_FAKE_GRAPH_URL
	export DIALFLOW_TEST_BASE_URL DIALFLOW_TEST_CA_FILE DIALFLOW_ADMIN_BIN \
		DIALFLOW_TEST_WORKER_PIDFILE DIALFLOW_TEST_API_LOG DIALFLOW_TEST_STACK_DIR \
		DIALFLOW_TEST_SANDBOX_URL DIALFLOW_TEST_SANDBOX_LOG
}

df_tier_e2e() {
	local tests=() p=0 f=0 started=() alive=() pid dead=0 hits
	df_t_header e2e
	if ! df_t_asan_build; then
		df_t_count e2e 0 1 "(build failed)"
		return
	fi
	if ! df_t_pg_setup; then
		df_t_count e2e 0 1 "(test database setup or migrate failed)"
		return
	fi
	if ! df_t_stack_start; then
		echo "---- api.log (tail) ----"
		tail -n 40 "$DF_S_API_LOG" 2>/dev/null || true
		echo "---- worker.log (tail) ----"
		tail -n 20 "$DF_S_WORKER_LOG" 2>/dev/null || true
		echo "---- sandbox.log (tail) ----"
		tail -n 20 "$DF_S_SANDBOX_LOG" 2>/dev/null || true
		echo "---- nginx error.log (tail) ----"
		tail -n 20 "$DF_S_NGINX/logs/error.log" 2>/dev/null || true
		df_t_count e2e 0 1 "(the test stack did not start)"
		df_stack_stop
		DF_T_STACK_ON=0
		return
	fi
	p=1 # the stack came up healthy
	mapfile -t started < <(grep -E '^[0-9]+$' "$DF_S_API_PID")
	read -r -a tests <<<"$(df_t_list e2e)"
	if [ "${#tests[@]}" -gt 0 ]; then
		df_t_make_check e2e 600 "${tests[@]}"
		p=$((p + DF_T_LAST_P))
		f=$((f + DF_T_LAST_F))
	fi

	# No api process may have died during the run (a crash is a bug even when
	# every request of the tests got its answer from another process).
	mapfile -t alive < <(df_stack_api_pids)
	for pid in "${started[@]}"; do
		if [[ " ${alive[*]} " != *" $pid "* ]]; then
			dead=$((dead + 1))
			echo "dialflow-api process $pid died during the e2e run"
		fi
	done
	if [ "$dead" -gt 0 ]; then
		f=$((f + 1))
		echo "---- api.log (tail) ----"
		tail -n 80 "$DF_S_API_LOG" || true
	else
		p=$((p + 1))
	fi
	df_stack_stop
	DF_T_STACK_ON=0

	hits="$(grep -n -E 'ERROR: AddressSanitizer|runtime error:' "$DF_S_API_LOG" "$DF_S_WORKER_LOG" \
		"$DF_S_SANDBOX_LOG" 2>/dev/null || true)"
	if [ -n "$hits" ]; then
		f=$((f + 1))
		echo "sanitizer reports in the stack logs:"
		printf '%s\n' "$hits" | head -n 20
		grep -h -A 30 -E 'ERROR: AddressSanitizer|runtime error:' "$DF_S_API_LOG" "$DF_S_WORKER_LOG" \
			"$DF_S_SANDBOX_LOG" |
			head -n 120 || true
	else
		p=$((p + 1))
	fi
	if grep -q 'ERROR: LeakSanitizer' "$DF_S_API_LOG" "$DF_S_WORKER_LOG" 2>/dev/null; then
		echo "note: LeakSanitizer reported leaks at process exit (see $DF_S_API_LOG); not counted"
	fi
	df_t_count e2e "$p" "$f"
}

# The admin UI in headless Debian chromium, driven by playwright-core from npm
# (tests/browser/run.mjs), against the e2e stack started afresh. It fails,
# never skips, when chromium or the npm install is unavailable.
df_tier_browser() {
	local dir="$DF_ROOT/tests/browser" log="$DF_T_LOGS/browser.log" p=0 f=0 rc
	df_t_header browser
	if ! command -v chromium >/dev/null 2>&1; then
		df_t_count browser 0 1 "(chromium is not installed)"
		return
	fi
	if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
		df_t_count browser 0 1 "(node or npm is not installed)"
		return
	fi
	echo "npm ci in tests/browser (log: build/test-logs/browser-npm.log)"
	if ! df_t_run "$DF_T_LOGS/browser-npm.log" 600 --quiet env -C "$dir" npm ci --no-audit --no-fund --prefer-offline; then
		tail -n 30 "$DF_T_LOGS/browser-npm.log"
		df_t_count browser 0 1 "(npm ci of playwright-core failed)"
		return
	fi
	if ! df_t_asan_build; then
		df_t_count browser 0 1 "(build failed)"
		return
	fi
	if ! df_t_pg_setup; then
		df_t_count browser 0 1 "(test database setup or migrate failed)"
		return
	fi
	if ! df_t_stack_start; then
		tail -n 40 "$DF_S_API_LOG" 2>/dev/null || true
		tail -n 20 "$DF_S_NGINX/logs/error.log" 2>/dev/null || true
		df_t_count browser 0 1 "(the test stack did not start)"
		df_stack_stop
		DF_T_STACK_ON=0
		return
	fi
	rm -rf "$dir/screenshots"
	df_t_run "$log" 1200 env NODE_TLS_REJECT_UNAUTHORIZED=0 NODE_NO_WARNINGS=1 \
		node "$dir/run.mjs"
	rc=$?
	df_stack_stop
	DF_T_STACK_ON=0
	p="$(grep -cE '^ok [0-9]+' "$log" || true)"
	f="$(grep -cE '^not ok [0-9]+' "$log" || true)"
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		[ "$rc" -eq 124 ] && echo "the browser tests timed out"
		echo "tests/browser/run.mjs exited $rc with no failed test"
		f=1
	fi
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		f=1
		echo "no browser test ran"
	fi
	df_t_count browser "$p" "$f" "(screenshots: tests/browser/screenshots/)"
}

df_tier_fuzz() {
	local out="$DF_ROOT/build/fuzz" srcs=() src name bin corpus seeds p=0 f=0 opts=()
	df_t_header fuzz
	shopt -s nullglob
	srcs=("$DF_ROOT"/tests/fuzz/fuzz_*.c)
	shopt -u nullglob
	if [ "${#srcs[@]}" -eq 0 ]; then
		df_t_count fuzz 0 0 "(no fuzz targets; skipped)"
		return
	fi
	if ! df_t_run "$DF_T_LOGS/fuzz-build.log" 900 --quiet "$DF_ROOT/tests/fuzz/build.sh" "$out"; then
		tail -n 60 "$DF_T_LOGS/fuzz-build.log"
		echo "tests/fuzz/build.sh failed (some targets may still have been built)"
	fi
	mkdir -p "$out/artifacts"
	for src in "${srcs[@]}"; do
		name="$(basename "$src" .c)"
		bin="$out/$name"
		if [ ! -x "$bin" ]; then
			echo "FAIL: $name (not built)"
			f=$((f + 1))
			continue
		fi
		corpus="$out/corpus-run/$name"
		rm -rf "$corpus"
		mkdir -p "$corpus"
		# Seeds: tests/fuzz/corpus/fuzz_NAME/ or tests/fuzz/corpus/NAME/.
		for seeds in "$DF_ROOT/tests/fuzz/corpus/$name" "$DF_ROOT/tests/fuzz/corpus/${name#fuzz_}"; do
			if [ -d "$seeds" ]; then
				cp -R "$seeds/." "$corpus/"
			fi
		done
		opts=(-max_total_time=15 -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
			"-artifact_prefix=$out/artifacts/$name-")
		if [ -f "$DF_ROOT/tests/fuzz/$name.dict" ]; then
			opts+=("-dict=$DF_ROOT/tests/fuzz/$name.dict")
		fi
		if df_t_run "$DF_T_LOGS/$name.log" 120 --quiet "$bin" "${opts[@]}" "$corpus"; then
			echo "PASS: $name ($(find "$corpus" -type f | wc -l) inputs, $(grep -m1 -o 'stat::number_of_executed_units: *[0-9]*' \
				"$DF_T_LOGS/$name.log" | grep -o '[0-9]*$' || echo '?') runs)"
			p=$((p + 1))
		else
			echo "FAIL: $name"
			tail -n 60 "$DF_T_LOGS/$name.log"
			f=$((f + 1))
		fi
	done
	df_t_count fuzz "$p" "$f"
}

df_tier_lint() {
	local p=0 f=0 files=()
	df_t_header lint
	echo "cppcheck"
	if (cd "$DF_ROOT" && cppcheck --error-exitcode=1 --enable=warning,performance,portability \
		--inline-suppr -I include --suppress=missingIncludeSystem --std=c11 -q \
		-j "${DF_JOBS:-2}" src tests/unit); then
		echo "PASS: cppcheck"
		p=$((p + 1))
	else
		echo "FAIL: cppcheck"
		f=$((f + 1))
	fi
	echo "clang-format"
	mapfile -t files < <(cd "$DF_ROOT" && find src include tests bench -type f \
		\( -name '*.c' -o -name '*.h' \) 2>/dev/null | sort)
	local bad=() file
	for file in "${files[@]}"; do
		if ! (cd "$DF_ROOT" && clang-format --dry-run -Werror "$file" >/dev/null 2>&1); then
			bad+=("$file")
		fi
	done
	if [ "${#bad[@]}" -eq 0 ]; then
		echo "PASS: clang-format (${#files[@]} files)"
		p=$((p + 1))
	else
		(cd "$DF_ROOT" && clang-format --dry-run -Werror "${bad[@]}" 2>&1 | head -n 60)
		echo "FAIL: clang-format: ${#bad[@]} of ${#files[@]} files are not formatted:"
		printf '  %s\n' "${bad[@]}"
		echo "  (fix with: clang-format -i FILE...)"
		f=$((f + 1))
	fi
	df_t_count lint "$p" "$f"
}

df_tier_distcheck() {
	local dir="$DF_ROOT/build/distcheck"
	df_t_header distcheck
	if [ "${DIALFLOW_SKIP_DISTCHECK:-0}" = 1 ]; then
		df_t_count distcheck 0 0 "(skipped: DIALFLOW_SKIP_DISTCHECK=1)"
		return
	fi
	if ! df_autoreconf; then
		df_t_count distcheck 0 1 "(autoreconf failed)"
		return
	fi
	# A plain (non-ASan) build dir: distcheck builds and checks everything again.
	mkdir -p "$dir"
	if [ ! -e "$dir/Makefile" ] &&
		! (cd "$dir" && ../../configure >"$DF_T_LOGS/distcheck-configure.log" 2>&1); then
		tail -n 30 "$DF_T_LOGS/distcheck-configure.log"
		df_t_count distcheck 0 1 "(configure failed)"
		return
	fi
	# Without the DIALFLOW_* of the other tiers, its `make check` runs the unit
	# tests and skips the database and stack tiers, as on any other machine.
	local unset_env=() v
	for v in $(compgen -e | grep '^DIALFLOW_' || true); do
		unset_env+=(-u "$v")
	done
	echo "make distcheck (log: build/test-logs/distcheck.log)"
	if df_t_run "$DF_T_LOGS/distcheck.log" 900 --quiet env "${unset_env[@]}" make -C "$dir" \
		--no-print-directory -j"${DF_JOBS:-2}" distcheck AM_COLOR_TESTS=no; then
		grep -E 'archives ready for distribution' "$DF_T_LOGS/distcheck.log" || true
		echo "PASS: make distcheck"
		df_t_count distcheck 1 0
	else
		tail -n 80 "$DF_T_LOGS/distcheck.log"
		echo "FAIL: make distcheck"
		df_t_count distcheck 0 1
	fi
}

# Stop everything the tiers started; safe to call more than once, and quiet.
df_test_cleanup() {
	[ "$DF_T_CLEANED" -eq 1 ] && return 0
	DF_T_CLEANED=1
	if [ -n "$DF_T_CHILD" ]; then
		# timeout(1) passes the signal on to its whole process group.
		kill -TERM "$DF_T_CHILD" 2>/dev/null || true
		df_wait_exit 15 "$DF_T_CHILD" || kill -KILL "$DF_T_CHILD" 2>/dev/null || true
	fi
	if [ -n "$DF_T_TAIL" ]; then
		kill -TERM "$DF_T_TAIL" 2>/dev/null || true
	fi
	if [ "$DF_T_STACK_ON" -eq 1 ]; then
		df_stack_stop >/dev/null 2>&1 || true
		DF_T_STACK_ON=0
	fi
	if [ -n "$DF_T_PG_AREA" ] && [ -d "$DF_T_PG_AREA" ]; then
		df_pg_stop "$DF_T_PG_AREA" immediate >/dev/null 2>&1 || true
		rm -rf "$DF_T_PG_AREA"
	fi
}

# df_test_main [TIER...]: run the given tiers (all by default) and print the
# final line. Returns 0 only when nothing failed.
df_test_main() {
	local want=("$@") t ok start
	if [ "${#want[@]}" -eq 0 ]; then
		want=("${DF_T_TIERS[@]}")
	fi
	for t in "${want[@]}"; do
		ok=0
		for ok_t in "${DF_T_TIERS[@]}"; do
			[ "$t" = "$ok_t" ] && ok=1
		done
		[ "$ok" -eq 1 ] || df_die "unknown tier '$t' (tiers: ${DF_T_TIERS[*]})"
	done
	exec </dev/null
	mkdir -p "$DF_T_LOGS"
	trap df_test_cleanup EXIT
	trap 'df_test_cleanup; exit 130' INT
	trap 'df_test_cleanup; exit 143' TERM
	start=$SECONDS
	df_ensure_deps
	for t in "${DF_T_TIERS[@]}"; do
		if [[ " ${want[*]} " == *" $t "* ]]; then
			"df_tier_$t"
		fi
	done
	df_test_cleanup
	printf '\n======== summary (%ds) ========\n' $((SECONDS - start))
	printf '%s\n' "${DF_T_SUMMARY[@]}"
	printf '%d passed, %d failed\n' "$DF_T_PASSED" "$DF_T_FAILED"
	[ "$DF_T_FAILED" -eq 0 ]
}
