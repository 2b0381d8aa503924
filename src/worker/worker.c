/*
 * worker.c - the daemon's entry point: the Twilio provider built from the
 * configuration, then the loop (loop.c). Kept apart from the loop so that
 * tests and benchmarks link worker_run_with() with their own provider.
 */
#include "dialflow/log.h"
#include "dialflow/provider.h"
#include "dialflow/worker.h"

int worker_run(const config_t *cfg)
{
	provider_t *p = NULL;
	int rc;

	if (cfg->twilio_account_sid != NULL && cfg->twilio_account_sid[0] != '\0') {
		p = provider_twilio_new(cfg->twilio_base_url, cfg->twilio_account_sid,
					cfg->twilio_auth_token, cfg->twilio_ca_file);
		if (p == NULL)
			log_error("worker", "the Twilio provider could not be set up "
					    "(DIALFLOW_TWILIO_*): runs are not dispatched");
	} else {
		log_warn("worker", "DIALFLOW_TWILIO_ACCOUNT_SID is not set: runs are not "
				   "dispatched, background jobs are");
	}
	rc = worker_run_with(cfg, p);
	if (p != NULL)
		provider_free(p);
	return rc;
}
