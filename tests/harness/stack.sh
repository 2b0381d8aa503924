# shellcheck shell=bash
# shellcheck disable=SC2034 # DF_S_* globals are read by ./dev and tiers.sh
# tests/harness/stack.sh - the running stack: nginx (TLS) -> spawn-fcgi x N
# dialflow-api on a unix socket, plus dialflow-worker. Used by `./dev up` (in
# var/) and by the e2e tier (in var/test-stack/), which never share a path or
# a port. Requires common.sh.
#
# A stack directory S holds:
#   S/dialflow.env             DIALFLOW_* settings, sourced before starting
#   S/run/api.sock api.pid worker.pid sandbox.pid
#   S/log/api.log worker.log sandbox.log   stderr of the api children / worker / sandbox
#   S/nginx/nginx.conf nginx.pid logs/ tmp/   nginx prefix
#   S/tls/cert.pem key.pem     self-signed for localhost
#   S/secrets/jwt.key          HS256 secret (0600)
#   S/secrets/twilio_token     the (sandbox) Twilio auth token (0600)
#
# dialflow-sandbox is the carrier simulator the `twilio` provider talks to
# (DIALFLOW_TWILIO_BASE_URL), on 127.0.0.1:DIALFLOW_SANDBOX_PORT; it posts its
# signed status callbacks back through nginx.
#
# Select a stack with df_stack_use DIR BINDIR PORT PROCS before the other calls.

df_stack_use() {
	DF_S_DIR="$1"
	DF_S_BIN="$2"
	DF_S_PORT="$3"
	DF_S_PROCS="$4"
	DF_S_ENV="$DF_S_DIR/dialflow.env"
	DF_S_RUN="$DF_S_DIR/run"
	DF_S_LOG="$DF_S_DIR/log"
	DF_S_NGINX="$DF_S_DIR/nginx"
	DF_S_TLS="$DF_S_DIR/tls"
	DF_S_SOCK="$DF_S_RUN/api.sock"
	DF_S_API_PID="$DF_S_RUN/api.pid"
	DF_S_WORKER_PID="$DF_S_RUN/worker.pid"
	DF_S_SANDBOX_PID="$DF_S_RUN/sandbox.pid"
	DF_S_API_LOG="$DF_S_LOG/api.log"
	DF_S_WORKER_LOG="$DF_S_LOG/worker.log"
	DF_S_SANDBOX_LOG="$DF_S_LOG/sandbox.log"
	DF_S_CERT="$DF_S_TLS/cert.pem"
	DF_S_KEY="$DF_S_TLS/key.pem"
	DF_S_SECRET="$DF_S_DIR/secrets/jwt.key"
	DF_S_TWILIO_TOKEN="$DF_S_DIR/secrets/twilio_token"
	# nginx's rate limits; callers may override after df_stack_use.
	DF_S_API_RATE="${DF_S_API_RATE:-50r/s}"
	DF_S_API_BURST="${DF_S_API_BURST:-100}"
	DF_S_AUTH_RATE="${DF_S_AUTH_RATE:-5r/s}"
	DF_S_AUTH_BURST="${DF_S_AUTH_BURST:-10}"
	DF_S_CONN_LIMIT="${DF_S_CONN_LIMIT:-512}"
	# nginx's plain http listener (it only redirects to https), next to PORT.
	DF_S_HTTP_PORT="${DF_S_HTTP_PORT:-$((DF_S_PORT - 1))}"
	DF_S_EXTRA_LOCATIONS="${DF_S_EXTRA_LOCATIONS:-}"
	mkdir -p "$DF_S_RUN" "$DF_S_LOG" "$DF_S_NGINX/logs" "$DF_S_NGINX/tmp" "$DF_S_TLS" \
		"$DF_S_DIR/secrets"
	chmod 0700 "$DF_S_DIR/secrets"
}

# The JWT secret: 48 random bytes, base64, created once, mode 0600.
df_secret_ensure() {
	local f="$1"
	[ -s "$f" ] && return 0
	mkdir -p "$(dirname "$f")"
	(umask 077 && openssl rand -base64 48 | tr -d '\n' >"$f.tmp" && mv "$f.tmp" "$f")
	chmod 0600 "$f"
}

# The sandbox's Twilio auth token: 32 random hex digits, created once, mode 0600.
df_twilio_token_ensure() {
	local f="$1"
	[ -s "$f" ] && return 0
	mkdir -p "$(dirname "$f")"
	(umask 077 && openssl rand -hex 16 | tr -d '\n' >"$f.tmp" && mv "$f.tmp" "$f")
	chmod 0600 "$f"
}

# df_sandbox_env PORT: point the `twilio` provider at this stack's
# dialflow-sandbox on 127.0.0.1:PORT (settings already set win), and make
# sure its auth token exists. Call after df_stack_use; a stack whose env file
# has no DIALFLOW_SANDBOX_PORT runs without a sandbox.
DF_SANDBOX_ACCOUNT_SID=ACd1a1f10000000000000000000000de01
df_sandbox_env() {
	local port="$1"
	: "${DIALFLOW_SANDBOX_PORT:=$port}"
	: "${DIALFLOW_TWILIO_BASE_URL:=http://127.0.0.1:$DIALFLOW_SANDBOX_PORT}"
	: "${DIALFLOW_TWILIO_ACCOUNT_SID:=$DF_SANDBOX_ACCOUNT_SID}"
	: "${DIALFLOW_TWILIO_AUTH_TOKEN_FILE:=$DF_S_TWILIO_TOKEN}"
	: "${DIALFLOW_TWILIO_FROM:=+15005550006}"
	# The sandbox posts its callbacks to nginx's self-signed https.
	: "${DIALFLOW_SANDBOX_CA_FILE:=$DF_S_CERT}"
	export DIALFLOW_SANDBOX_PORT DIALFLOW_TWILIO_BASE_URL DIALFLOW_TWILIO_ACCOUNT_SID \
		DIALFLOW_TWILIO_AUTH_TOKEN_FILE DIALFLOW_TWILIO_FROM DIALFLOW_SANDBOX_CA_FILE
	DF_S_SANDBOX_PORT="$DIALFLOW_SANDBOX_PORT"
	if [ "$DIALFLOW_TWILIO_AUTH_TOKEN_FILE" = "$DF_S_TWILIO_TOKEN" ]; then
		df_twilio_token_ensure "$DF_S_TWILIO_TOKEN"
	fi
}

# df_fake_graph_env PORT: point the worker's WhatsApp sender at this stack's
# fake Graph server (tests/fakes/fake_graph, a check program of the build) on
# 127.0.0.1:PORT. Call after df_stack_use; without it no fake is started.
df_fake_graph_env() {
	local port="$1"
	: "${DIALFLOW_FAKE_GRAPH_PORT:=$port}"
	: "${DIALFLOW_WHATSAPP_GRAPH_URL:=http://127.0.0.1:$DIALFLOW_FAKE_GRAPH_PORT}"
	export DIALFLOW_FAKE_GRAPH_PORT DIALFLOW_WHATSAPP_GRAPH_URL
	DF_S_FAKE_GRAPH_PORT="$DIALFLOW_FAKE_GRAPH_PORT"
}

# A self-signed certificate for localhost, created once.
df_tls_ensure() {
	local cert="$1" key="$2"
	[ -s "$cert" ] && [ -s "$key" ] && return 0
	mkdir -p "$(dirname "$cert")"
	if ! (umask 077 && openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
		-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
		-keyout "$key" -out "$cert" </dev/null >/dev/null 2>&1); then
		df_warn "openssl could not create the TLS certificate"
		return 1
	fi
	chmod 0600 "$key"
	chmod 0644 "$cert"
}

# Write every DIALFLOW_* setting the binaries read (as currently set; call
# df_env_defaults first) to FILE, one `NAME='value'` a line, mode 0600.
DF_ENV_VARS=(
	DIALFLOW_DATABASE_URL DIALFLOW_API_DATABASE_URL DIALFLOW_WORKER_DATABASE_URL DIALFLOW_JWT_SECRET_FILE DIALFLOW_JWT_KID DIALFLOW_JWT_ISSUER
	DIALFLOW_JWT_AUDIENCE DIALFLOW_ACCESS_TTL DIALFLOW_REFRESH_TTL DIALFLOW_MAX_BODY DIALFLOW_MAX_IMPORT_BODY
	DIALFLOW_PUBLIC_URL DIALFLOW_MIGRATIONS_DIR DIALFLOW_LOG_LEVEL DIALFLOW_API_DB_ROLE
	DIALFLOW_WORKER_DB_ROLE DIALFLOW_WORKER_HEARTBEAT_MS DIALFLOW_WORKER_STALE_S
	DIALFLOW_DB_CONNECT_TIMEOUT DIALFLOW_DB_STATEMENT_TIMEOUT_MS
	DIALFLOW_JWT_PUBKEY_FILE DIALFLOW_JWT_PUBKEY_ALG DIALFLOW_JWT_PUBKEY_KID DIALFLOW_DB_RETRY_AFTER
	DIALFLOW_TWILIO_BASE_URL DIALFLOW_TWILIO_ACCOUNT_SID DIALFLOW_TWILIO_AUTH_TOKEN_FILE
	DIALFLOW_TWILIO_FROM DIALFLOW_TWILIO_CA_FILE DIALFLOW_CALLS_PER_SECOND DIALFLOW_RUN_STALE_S
	DIALFLOW_RUN_HEARTBEAT_MS DIALFLOW_RING_TIMEOUT_S DIALFLOW_CALL_RECONCILE_S
	DIALFLOW_CALL_LOG_SWEEP_S DIALFLOW_DISPATCH_POLL_MS DIALFLOW_SHUTDOWN_GRACE_S
	DIALFLOW_QUEUE_BATCH DIALFLOW_QUEUE_LEASE_S
	DIALFLOW_SANDBOX_PORT DIALFLOW_SANDBOX_ANSWER_PCT DIALFLOW_SANDBOX_BUSY_PCT
	DIALFLOW_SANDBOX_NOANSWER_PCT DIALFLOW_SANDBOX_FAIL_PCT DIALFLOW_SANDBOX_RING_MS
	DIALFLOW_SANDBOX_TALK_MS DIALFLOW_SANDBOX_SEED DIALFLOW_SANDBOX_CA_FILE
	DIALFLOW_SANDBOX_MAX_CALLS DIALFLOW_SANDBOX_CALLBACK_RETRIES DIALFLOW_SANDBOX_SAY_MS
	DIALFLOW_SANDBOX_DIGITS DIALFLOW_SANDBOX_MACHINE_PCT DIALFLOW_SANDBOX_AMD_MS
	DIALFLOW_WHATSAPP_GRAPH_URL DIALFLOW_WHATSAPP_GRAPH_VERSION DIALFLOW_WA_CA_FILE
	DIALFLOW_OUTBOX_BATCH DIALFLOW_OUTBOX_LEASE_S DIALFLOW_OUTBOX_RETRY_BASE_MS
	DIALFLOW_FLOW_IDLE_TIMEOUT_S DIALFLOW_HANDOVER_NOTICE_S DIALFLOW_HANDOVER_NOTICE_TEXT
	DIALFLOW_FAKE_GRAPH_PORT
)
df_env_defaults() {
	: "${DIALFLOW_JWT_KID:=k1}"
	: "${DIALFLOW_JWT_ISSUER:=dialflow}"
	: "${DIALFLOW_JWT_AUDIENCE:=dialflow-api}"
	: "${DIALFLOW_ACCESS_TTL:=900}"
	: "${DIALFLOW_REFRESH_TTL:=2592000}"
	: "${DIALFLOW_MAX_BODY:=1048576}"
	: "${DIALFLOW_MIGRATIONS_DIR:=$DF_ROOT/migrations}"
	: "${DIALFLOW_LOG_LEVEL:=info}"
	: "${DIALFLOW_API_DB_ROLE:=dialflow_app}"
	: "${DIALFLOW_WORKER_DB_ROLE:=dialflow_worker}"
	: "${DIALFLOW_WORKER_HEARTBEAT_MS:=5000}"
	: "${DIALFLOW_WORKER_STALE_S:=30}"
	: "${DIALFLOW_DB_CONNECT_TIMEOUT:=2}"
	: "${DIALFLOW_DB_STATEMENT_TIMEOUT_MS:=5000}"
	export DIALFLOW_JWT_KID DIALFLOW_JWT_ISSUER DIALFLOW_JWT_AUDIENCE DIALFLOW_ACCESS_TTL \
		DIALFLOW_REFRESH_TTL DIALFLOW_MAX_BODY DIALFLOW_MIGRATIONS_DIR DIALFLOW_LOG_LEVEL \
		DIALFLOW_API_DB_ROLE DIALFLOW_WORKER_DB_ROLE DIALFLOW_WORKER_HEARTBEAT_MS \
		DIALFLOW_WORKER_STALE_S DIALFLOW_DB_CONNECT_TIMEOUT DIALFLOW_DB_STATEMENT_TIMEOUT_MS
}
df_env_write() {
	local f="$1" v
	(
		umask 077
		{
			echo "# Generated by ./dev (tests/harness/stack.sh); rewritten on every start."
			for v in "${DF_ENV_VARS[@]}"; do
				if [ -n "${!v+x}" ]; then
					printf "%s='%s'\n" "$v" "${!v//\'/\'\\\'\'}"
				fi
			done
		} >"$f.tmp"
		mv "$f.tmp" "$f"
	)
}

# Render an nginx template: df_nginx_render TEMPLATE OUT KEY=VALUE...
# replaces every @KEY@; fails if a placeholder is left.
df_nginx_render() {
	local tpl="$1" out="$2" text kv key val left
	shift 2
	text="$(<"$tpl")"
	# bash 5.2 would otherwise expand '&' in the replacement.
	shopt -u patsub_replacement 2>/dev/null || true
	for kv in "$@"; do
		key="${kv%%=*}"
		val="${kv#*=}"
		text="${text//@"$key"@/$val}"
	done
	left="$(grep -o '@[A-Z_]*@' <<<"$text" | sort -u | tr '\n' ' ' || true)"
	if [ -n "$left" ]; then
		df_warn "unrendered placeholders in $tpl: $left"
		return 1
	fi
	printf '%s\n' "$text" >"$out.tmp"
	mv "$out.tmp" "$out"
}

df_nginx_args() {
	printf '%s\n' -p "$DF_S_NGINX/" -c "$DF_S_NGINX/nginx.conf" -e "$DF_S_NGINX/logs/error.log"
}

# Render S/nginx/nginx.conf from nginx/dev.conf.in and check it with nginx -t.
df_stack_nginx_conf() {
	local user_line="" args=()
	if df_is_root; then
		# Workers must reach the api socket (0660 root) and web/ in a 0700 checkout.
		user_line="user root;"
	fi
	df_nginx_render "$DF_ROOT/nginx/dev.conf.in" "$DF_S_NGINX/nginx.conf" \
		"PREFIX=$DF_S_NGINX" "ROOT=$DF_ROOT/web" "SOCK=$DF_S_SOCK" "PORT=$DF_S_PORT" \
		"HTTP_PORT=$DF_S_HTTP_PORT" "CONN_LIMIT=$DF_S_CONN_LIMIT" \
		"CERT=$DF_S_CERT" "KEY=$DF_S_KEY" "USER_LINE=$user_line" \
		"API_RATE=$DF_S_API_RATE" "API_BURST=$DF_S_API_BURST" \
		"AUTH_RATE=$DF_S_AUTH_RATE" "AUTH_BURST=$DF_S_AUTH_BURST" \
		"EXTRA_LOCATIONS=$DF_S_EXTRA_LOCATIONS" || return 1
	mapfile -t args < <(df_nginx_args)
	if ! nginx "${args[@]}" -t -q; then
		df_warn "nginx -t failed for $DF_S_NGINX/nginx.conf"
		return 1
	fi
}

# Pids of the running pieces (empty when stopped).
df_stack_api_pids() { df_pidfile_alive "$DF_S_API_PID" dialflow-api; }
df_stack_worker_pid() { df_pidfile_alive "$DF_S_WORKER_PID" dialflow-worker; }
df_stack_sandbox_pid() { df_pidfile_alive "$DF_S_SANDBOX_PID" dialflow-sandbox; }
df_stack_nginx_pid() { df_pidfile_alive "$DF_S_NGINX/nginx.pid" nginx; }
df_stack_fake_graph_pid() { df_pidfile_alive "$DF_S_RUN/fake_graph.pid" fake_graph; }

# Run a command with the stack's environment file loaded.
df_stack_env_exec() {
	(
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		set +a
		"$@"
	)
}

# shellcheck disable=SC2094 # the log is only appended to, by several writers
df_stack_start_api() {
	local pids=() want="$DF_S_PROCS"
	mapfile -t pids < <(df_stack_api_pids)
	if [ "${#pids[@]}" -eq "$want" ] && [ ! "$DF_S_BIN/dialflow-api" -nt "$DF_S_API_PID" ]; then
		df_log "dialflow-api already running (${pids[*]})"
		return 0
	fi
	if [ "${#pids[@]}" -gt 0 ]; then
		if [ "${#pids[@]}" -eq "$want" ]; then
			df_log "dialflow-api was rebuilt; restarting it"
		else
			df_log "only ${#pids[@]} of $want api processes alive; restarting them"
		fi
		df_stop_pidfile "$DF_S_API_PID" dialflow-api
	fi
	rm -f "$DF_S_API_PID"
	df_log "starting $want dialflow-api processes on $DF_S_SOCK"
	# spawn-fcgi passes the socket as fd 0, but points the children's stdout and
	# stderr at /dev/null (unless -n, which allows one child only): each child is
	# a tiny sh that reopens them on the log and execs the api (same pid).
	if ! (
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		set +a
		# The binaries also reopen their stderr on DIALFLOW_LOG_FILE themselves.
		# shellcheck disable=SC2030
		export DIALFLOW_LOG_FILE="$DF_S_API_LOG"
		cd "$DF_S_DIR" || exit 1
		# shellcheck disable=SC2016 # expanded by the child's sh
		exec setsid spawn-fcgi -s "$DF_S_SOCK" -M 0660 -F "$want" -P "$DF_S_API_PID" -- \
			/bin/sh -c 'exec "$0" >>"$1" 2>&1' "$DF_S_BIN/dialflow-api" "$DF_S_API_LOG"
	) </dev/null >>"$DF_S_API_LOG" 2>&1; then
		tail -n 20 "$DF_S_API_LOG" >&2 || true
		df_warn "spawn-fcgi failed (log: $DF_S_API_LOG)"
		return 1
	fi
	sleep 0.3
	mapfile -t pids < <(df_stack_api_pids)
	if [ "${#pids[@]}" -ne "$want" ]; then
		tail -n 20 "$DF_S_API_LOG" >&2 || true
		df_warn "only ${#pids[@]} of $want dialflow-api processes are alive (log: $DF_S_API_LOG)"
		return 1
	fi
}

# shellcheck disable=SC2031,SC2094 # a subshell's own env; the log is only appended to
df_stack_start_worker() {
	local pid
	pid="$(df_stack_worker_pid)"
	if [ -n "$pid" ] && [ "$DF_S_BIN/dialflow-worker" -nt "$DF_S_WORKER_PID" ]; then
		df_log "dialflow-worker was rebuilt; restarting it"
		df_stop_pidfile "$DF_S_WORKER_PID" dialflow-worker 15
		pid=""
	fi
	if [ -n "$pid" ]; then
		df_log "dialflow-worker already running ($pid)"
		return 0
	fi
	df_log "starting dialflow-worker"
	# A background job is not a process group leader, so setsid execs in place
	# and $! is the worker's own pid.
	(
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		set +a
		export DIALFLOW_LOG_FILE="$DF_S_WORKER_LOG"
		cd "$DF_S_DIR" && exec setsid "$DF_S_BIN/dialflow-worker"
	) </dev/null >>"$DF_S_WORKER_LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$DF_S_WORKER_PID"
	sleep 0.3
	if ! df_pid_matches "$pid" dialflow-worker; then
		tail -n 20 "$DF_S_WORKER_LOG" >&2 || true
		df_warn "dialflow-worker exited at once (log: $DF_S_WORKER_LOG)"
		return 1
	fi
}

# shellcheck disable=SC2094 # the log is only appended to
df_stack_start_sandbox() {
	local pid i port
	pid="$(df_stack_sandbox_pid)"
	if [ -n "$pid" ] && [ "$DF_S_BIN/dialflow-sandbox" -nt "$DF_S_SANDBOX_PID" ]; then
		df_log "dialflow-sandbox was rebuilt; restarting it"
		df_stop_pidfile "$DF_S_SANDBOX_PID" dialflow-sandbox 10
		pid=""
	fi
	if [ -n "$pid" ]; then
		df_log "dialflow-sandbox already running ($pid)"
		return 0
	fi
	port="$(
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		echo "${DIALFLOW_SANDBOX_PORT:-}"
	)"
	if [ -z "$port" ] || [ "$port" = 0 ]; then
		return 0 # a stack without a carrier (df_sandbox_env was not called: bench/api)
	fi
	if df_port_busy "$port"; then
		df_warn "port $port (the sandbox carrier) is taken by another process (set DIALFLOW_SANDBOX_PORT)"
		return 1
	fi
	df_log "starting dialflow-sandbox on http://127.0.0.1:$port"
	(
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		set +a
		cd "$DF_S_DIR" &&
			DIALFLOW_LOG_FILE="$DF_S_SANDBOX_LOG" exec setsid "$DF_S_BIN/dialflow-sandbox"
	) </dev/null >>"$DF_S_SANDBOX_LOG" 2>&1 &
	pid=$!
	echo "$pid" >"$DF_S_SANDBOX_PID"
	for ((i = 0; i < 50; i++)); do
		if curl --silent --max-time 1 -o /dev/null "http://127.0.0.1:$port/__sandbox/stats"; then
			return 0
		fi
		df_pid_matches "$pid" dialflow-sandbox || break
		sleep 0.1
	done
	tail -n 20 "$DF_S_SANDBOX_LOG" >&2 || true
	df_warn "dialflow-sandbox did not come up (log: $DF_S_SANDBOX_LOG)"
	return 1
}

# The fake WhatsApp Graph server, when the env file names its port.
# shellcheck disable=SC2094 # the log is only appended to
df_stack_start_fake_graph() {
	local pid i port bin="$DF_S_BIN/tests/fakes/fake_graph" log="$DF_S_LOG/fake_graph.log"
	port="$(
		set -a
		# shellcheck disable=SC1090
		. "$DF_S_ENV"
		echo "${DIALFLOW_FAKE_GRAPH_PORT:-}"
	)"
	if [ -z "$port" ] || [ "$port" = 0 ]; then
		return 0
	fi
	if [ -n "$(df_stack_fake_graph_pid)" ]; then
		df_log "fake_graph already running"
		return 0
	fi
	if [ ! -x "$bin" ]; then
		df_warn "$bin is not built (make check TESTS=)"
		return 1
	fi
	df_log "starting fake_graph on http://127.0.0.1:$port"
	(cd "$DF_S_DIR" && exec setsid "$bin" --port "$port" --record "$DF_S_LOG/fake_graph.jsonl") \
		</dev/null >>"$log" 2>&1 &
	pid=$!
	echo "$pid" >"$DF_S_RUN/fake_graph.pid"
	for ((i = 0; i < 50; i++)); do
		if curl --silent --max-time 1 -o /dev/null "http://127.0.0.1:$port/__fake/health"; then
			return 0
		fi
		df_pid_matches "$pid" fake_graph || break
		sleep 0.1
	done
	tail -n 20 "$log" >&2 || true
	df_warn "fake_graph did not come up (log: $log)"
	return 1
}

df_stack_start_nginx() {
	local pid args=() i
	pid="$(df_stack_nginx_pid)"
	df_stack_nginx_conf || return 1
	mapfile -t args < <(df_nginx_args)
	if [ -n "$pid" ]; then
		df_log "nginx already running ($pid); reloading its configuration"
		nginx "${args[@]}" -s reload || return 1
		return 0
	fi
	if df_port_busy "$DF_S_PORT"; then
		df_warn "port $DF_S_PORT is taken by another process (set DIALFLOW_HTTPS_PORT)"
		return 1
	fi
	if df_port_busy "$DF_S_HTTP_PORT"; then
		df_warn "port $DF_S_HTTP_PORT (nginx's plain http redirect) is taken by another process"
		return 1
	fi
	df_log "starting nginx on https://localhost:$DF_S_PORT"
	if ! nginx "${args[@]}" </dev/null; then
		tail -n 20 "$DF_S_NGINX/logs/error.log" >&2 || true
		df_warn "nginx did not start"
		return 1
	fi
	for ((i = 0; i < 50; i++)); do
		[ -n "$(df_stack_nginx_pid)" ] && return 0
		sleep 0.1
	done
	df_warn "nginx wrote no pidfile"
	return 1
}

# Start whatever is not running yet; the env file must exist.
df_stack_start() {
	df_stack_start_sandbox && df_stack_start_fake_graph && df_stack_start_api &&
		df_stack_start_worker && df_stack_start_nginx
}

# Stop nginx, the api processes, the worker and the sandbox (in that order).
df_stack_stop() {
	df_stop_pidfile "$DF_S_NGINX/nginx.pid" nginx 10
	df_stop_pidfile "$DF_S_API_PID" dialflow-api 10
	rm -f "$DF_S_SOCK"
	df_stop_pidfile "$DF_S_WORKER_PID" dialflow-worker 15
	df_stop_pidfile "$DF_S_SANDBOX_PID" dialflow-sandbox 10
	df_stop_pidfile "$DF_S_RUN/fake_graph.pid" fake_graph 10
}

# curl against the stack, trusting its certificate, without DNS for localhost.
df_stack_curl() {
	local path="$1"
	shift
	curl --silent --show-error --cacert "$DF_S_CERT" --resolve "localhost:$DF_S_PORT:127.0.0.1" \
		--max-time 3 "$@" "https://localhost:$DF_S_PORT$path"
}

# Wait up to SECS for GET /api/health to answer 200.
df_stack_wait_health() {
	local secs="${1:-30}" i code=""
	for ((i = 0; i < secs * 4; i++)); do
		code="$(df_stack_curl /api/health -o /dev/null -w '%{http_code}' 2>/dev/null || true)"
		[ "$code" = 200 ] && return 0
		sleep 0.25
	done
	df_warn "https://localhost:$DF_S_PORT/api/health did not answer 200 in ${secs}s (last status: ${code:-none})"
	return 1
}
