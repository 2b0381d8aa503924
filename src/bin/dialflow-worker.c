/* dialflow-worker - the queue daemon (see worker.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dialflow/config.h"
#include "dialflow/log.h"
#include "dialflow/worker.h"

int main(void)
{
	config_t cfg;
	const char *err = NULL;
	char proc[32];
	int rc;

	snprintf(proc, sizeof(proc), "pid=%d", (int)getpid());
	log_set_process(proc);
	if (getenv("DIALFLOW_LOG_FILE") && log_open_file(getenv("DIALFLOW_LOG_FILE")) < 0)
		log_warn("main", "cannot open DIALFLOW_LOG_FILE, logging to stderr");
	if (getenv("DIALFLOW_LOG_LEVEL") && log_set_level(getenv("DIALFLOW_LOG_LEVEL")) < 0)
		log_warn("worker", "unknown DIALFLOW_LOG_LEVEL, using info");
	if (config_load(&cfg, "DIALFLOW_WORKER_DATABASE_URL", "DIALFLOW_WORKER_DB_ROLE",
			"dialflow_worker", 0, &err) < 0) {
		log_error("worker", "configuration: %s", err);
		return 1;
	}
	rc = worker_run(&cfg);
	config_free(&cfg);
	return rc == 0 ? 0 : 1;
}
