/* dialflow-api - the FastCGI responder; spawn-fcgi hands it the socket on fd 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dialflow/api.h"
#include "dialflow/log.h"
#include "dialflow/server.h"

static void serve(void *app, http_request_t *req)
{
	api_dispatch(app, req);
}

int main(void)
{
	api_ctx_t ctx;
	const char *err = NULL;
	char proc[32];
	arena_t *arena;
	int rc;

	snprintf(proc, sizeof(proc), "pid=%d", (int)getpid());
	log_set_process(proc);
	if (getenv("DIALFLOW_LOG_FILE") && log_open_file(getenv("DIALFLOW_LOG_FILE")) < 0)
		log_warn("main", "cannot open DIALFLOW_LOG_FILE, logging to stderr");
	if (getenv("DIALFLOW_LOG_LEVEL") && log_set_level(getenv("DIALFLOW_LOG_LEVEL")) < 0)
		log_warn("api", "unknown DIALFLOW_LOG_LEVEL, using info");
	signal(SIGPIPE, SIG_IGN);
	if (api_ctx_init(&ctx, "dialflow-api", &err) < 0) {
		log_error("api", "configuration: %s", err);
		return 1;
	}
	/* Connect now (after spawn-fcgi's fork); a database that is down is not
	 * fatal: requests answer 503 until it is back. */
	(void)db_ensure(ctx.db);
	log_info("api", "ready");
	arena = arena_new(64 * 1024);
	rc = http_server_run(&ctx.cfg, serve, &ctx, arena);
	arena_free(arena);
	api_ctx_free(&ctx);
	return rc == 0 ? 0 : 1;
}
