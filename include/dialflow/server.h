/*
 * server.h - the FastCGI loop that feeds http_request_t to an application.
 */
#ifndef DIALFLOW_SERVER_H
#define DIALFLOW_SERVER_H

#include "dialflow/arena.h"
#include "dialflow/config.h"
#include "dialflow/http.h"

typedef void (*http_serve_fn)(void *app, http_request_t *req);

/*
 * Accept requests on the FastCGI socket inherited as fd 0 (spawn-fcgi) until
 * SIGTERM/SIGINT, serving each with serve(app, req). `arena` is reset after
 * every request. Returns 0 on a clean shutdown, -1 if libfcgi cannot start.
 */
int http_server_run(const config_t *cfg, http_serve_fn serve, void *app, arena_t *arena);

#endif
