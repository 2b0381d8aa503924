/* dialflow-sandbox - the carrier simulator (see sandbox.h). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "dialflow/log.h"
#include "dialflow/sandbox.h"

int main(void)
{
	sandbox_config_t cfg;
	const char *err = NULL;
	char proc[32];
	int rc;

	snprintf(proc, sizeof(proc), "pid=%d", (int)getpid());
	log_set_process(proc);
	if (getenv("DIALFLOW_LOG_FILE") && log_open_file(getenv("DIALFLOW_LOG_FILE")) < 0)
		log_warn("main", "cannot open DIALFLOW_LOG_FILE, logging to stderr");
	if (getenv("DIALFLOW_LOG_LEVEL") && log_set_level(getenv("DIALFLOW_LOG_LEVEL")) < 0)
		log_warn("sandbox", "unknown DIALFLOW_LOG_LEVEL, using info");
	if (sandbox_config_load(&cfg, &err) < 0) {
		log_error("sandbox", "configuration: %s", err);
		return 1;
	}
	rc = sandbox_run(&cfg);
	sandbox_config_free(&cfg);
	return rc == 0 ? 0 : 1;
}
