-- 0002_outbound.sql: outbound call campaigns (DESIGN §7): leads and lists,
-- call scripts, runs and their jobs, the call log, and the generic
-- background job queue. Tenant tables follow 0001's conventions.

-- Per-business calling settings: the caller id and the calling window (local time in businesses.timezone).
ALTER TABLE businesses
	ADD COLUMN caller_id text CHECK (caller_id ~ '^\+[1-9][0-9]{6,14}$'),
	ADD COLUMN calling_window_start time NOT NULL DEFAULT '09:00',
	ADD COLUMN calling_window_end time NOT NULL DEFAULT '20:00';

CREATE TABLE leads (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	phone_e164 text NOT NULL CHECK (phone_e164 ~ '^\+[1-9][0-9]{6,14}$'),
	name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
	email text CHECK (length(email) <= 254),
	notes text CHECK (length(notes) <= 2000),
	status text NOT NULL DEFAULT 'new'
		CHECK (status IN ('new', 'contacted', 'interested', 'not_interested', 'converted', 'invalid')),
	source text NOT NULL DEFAULT 'import' CHECK (source IN ('import', 'api', 'call', 'manual')),
	do_not_call boolean NOT NULL DEFAULT false,
	last_call_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (business_id, phone_e164)
);
CREATE INDEX leads_business_idx ON leads (business_id, id DESC);

CREATE TABLE lead_lists (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	created_by bigint REFERENCES users (id),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX lead_lists_business_idx ON lead_lists (business_id, id DESC);

CREATE TABLE lead_list_members (
	list_id bigint NOT NULL REFERENCES lead_lists (id) ON DELETE CASCADE,
	lead_id bigint NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
	business_id bigint NOT NULL REFERENCES businesses (id),
	PRIMARY KEY (list_id, lead_id)
);

-- What a call says or does once answered (TwiML is rendered from this).
CREATE TABLE call_scripts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	kind text NOT NULL CHECK (kind IN ('say', 'bridge', 'gather')),
	text text NOT NULL DEFAULT '' CHECK (length(text) <= 4000),
	language text NOT NULL DEFAULT 'en-US' CHECK (language ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
	voice text NOT NULL DEFAULT 'alice' CHECK (length(voice) BETWEEN 1 AND 64),
	bridge_to text CHECK (bridge_to ~ '^\+[1-9][0-9]{6,14}$'),
	options jsonb NOT NULL DEFAULT '{}'::jsonb,
	voicemail text CHECK (length(voicemail) <= 4000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CHECK (kind <> 'bridge' OR bridge_to IS NOT NULL)
);
CREATE INDEX call_scripts_business_idx ON call_scripts (business_id, id);

-- A run: one campaign over a set of leads. pending -> running -> completed |
-- cancelled | stopped | failed. A worker drives it under a lease
-- (locked_by_worker, lease_token, lock_ts) and heartbeats last_heartbeat_at.
CREATE TABLE outbound_call_runs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	status text NOT NULL DEFAULT 'pending'
		CHECK (status IN ('pending', 'running', 'completed', 'cancelled', 'stopped', 'failed')),
	concurrency integer NOT NULL DEFAULT 3 CHECK (concurrency BETWEEN 1 AND 10),
	max_attempts integer NOT NULL DEFAULT 1 CHECK (max_attempts BETWEEN 1 AND 5),
	retry_delay_s integer NOT NULL DEFAULT 300 CHECK (retry_delay_s BETWEEN 0 AND 86400),
	script_id bigint REFERENCES call_scripts (id),
	script jsonb,
	cancel_requested boolean NOT NULL DEFAULT false,
	force_cancel boolean NOT NULL DEFAULT false,
	locked_by_worker text,
	lease_token uuid,
	lock_ts timestamptz,
	last_heartbeat_at timestamptz,
	created_by bigint REFERENCES users (id),
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	ended_at timestamptz,
	updated_at timestamptz NOT NULL DEFAULT now(),
	last_error text
);
-- At most one active run per business.
CREATE UNIQUE INDEX outbound_call_runs_one_active ON outbound_call_runs (business_id)
	WHERE status IN ('pending', 'running');
CREATE INDEX outbound_call_runs_business_idx ON outbound_call_runs (business_id, id DESC);
CREATE INDEX outbound_call_runs_claim_idx ON outbound_call_runs (last_heartbeat_at)
	WHERE status IN ('pending', 'running');

-- A job: one lead inside a run. queued -> dialing -> calling -> completed |
-- failed, plus cancelled. In flight = dialing + calling.
CREATE TABLE outbound_call_jobs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	run_id bigint NOT NULL REFERENCES outbound_call_runs (id) ON DELETE CASCADE,
	business_id bigint NOT NULL REFERENCES businesses (id),
	lead_id bigint NOT NULL REFERENCES leads (id),
	phone text NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
	status text NOT NULL DEFAULT 'queued'
		CHECK (status IN ('queued', 'dialing', 'calling', 'completed', 'failed', 'cancelled')),
	call_sid text,
	call_status text,
	attempts integer NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	error_code text,
	error_message text,
	dial_started_at timestamptz,
	hangup_requested_at timestamptz,
	completed_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (run_id, lead_id)
);
-- Progress is derived from here: count(*) FILTER (WHERE status = ...) per run.
CREATE INDEX outbound_call_jobs_run_status_idx ON outbound_call_jobs (run_id, status);
CREATE INDEX outbound_call_jobs_inflight_idx ON outbound_call_jobs (business_id)
	WHERE status IN ('dialing', 'calling');
CREATE UNIQUE INDEX outbound_call_jobs_call_sid_key ON outbound_call_jobs (call_sid)
	WHERE call_sid IS NOT NULL;

-- Every call, outbound or inbound. A row is written before the provider is
-- asked (call_sid NULL), and filled in when the provider answers.
CREATE TABLE call_log (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	call_sid text,
	direction text NOT NULL DEFAULT 'outbound' CHECK (direction IN ('outbound', 'inbound')),
	from_number text,
	to_number text,
	status text NOT NULL DEFAULT 'initiated'
		CHECK (status IN ('initiated', 'queued', 'ringing', 'in-progress', 'completed', 'busy',
				  'no-answer', 'failed', 'canceled')),
	duration integer CHECK (duration >= 0),
	lead_id bigint REFERENCES leads (id),
	run_id bigint REFERENCES outbound_call_runs (id) ON DELETE SET NULL,
	job_id bigint REFERENCES outbound_call_jobs (id) ON DELETE SET NULL,
	error_code text,
	error_message text,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX call_log_call_sid_key ON call_log (call_sid) WHERE call_sid IS NOT NULL;
CREATE INDEX call_log_business_idx ON call_log (business_id, created_at DESC, id DESC);
CREATE INDEX call_log_no_sid_idx ON call_log (created_at) WHERE call_sid IS NULL AND status = 'initiated';

-- The generic background job queue (src/queue/): claimed in batches with
-- SKIP LOCKED under a lease; retried with backoff; `dead` after max_attempts.
CREATE TABLE background_jobs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,63}$'),
	payload jsonb NOT NULL DEFAULT '{}'::jsonb,
	business_id bigint REFERENCES businesses (id),
	status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'dead')),
	attempts integer NOT NULL DEFAULT 0,
	max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
	run_at timestamptz NOT NULL DEFAULT now(),
	locked_by text,
	locked_until timestamptz,
	last_error text,
	unique_key text CHECK (length(unique_key) <= 200),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz
);
CREATE UNIQUE INDEX background_jobs_unique_active ON background_jobs (unique_key)
	WHERE unique_key IS NOT NULL AND status IN ('queued', 'running');
CREATE INDEX background_jobs_ready_idx ON background_jobs (run_at, id) WHERE status = 'queued';
CREATE INDEX background_jobs_lease_idx ON background_jobs (locked_until) WHERE status = 'running';

-- Row-level security --------------------------------------------------------
ALTER TABLE leads ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_lists ENABLE ROW LEVEL SECURITY;
ALTER TABLE lead_list_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_scripts ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbound_call_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE outbound_call_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE call_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE background_jobs ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON leads TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON lead_lists TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON lead_list_members TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON call_scripts TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON outbound_call_runs TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON outbound_call_jobs TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON call_log TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON background_jobs TO dialflow_app
	USING (business_id IS NOT NULL AND app_tenant_visible(business_id));

CREATE POLICY worker_all ON leads TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON lead_lists TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON lead_list_members TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON call_scripts TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON outbound_call_runs TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON outbound_call_jobs TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON call_log TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON background_jobs TO dialflow_worker USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON leads, lead_lists, outbound_call_runs, outbound_call_jobs, call_log
	TO dialflow_app;
GRANT SELECT, INSERT, DELETE ON lead_list_members TO dialflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON call_scripts TO dialflow_app;
GRANT SELECT, INSERT ON background_jobs TO dialflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON leads, lead_lists, lead_list_members, call_scripts,
	outbound_call_runs, outbound_call_jobs, call_log, background_jobs TO dialflow_worker;
GRANT UPDATE ON businesses TO dialflow_worker;

-- Which tenant owns a resource (extends 0001's function).
CREATE OR REPLACE FUNCTION app_resource_business(p_type text, p_id bigint)
RETURNS TABLE (found boolean, business_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	CASE p_type
	WHEN 'user' THEN RETURN QUERY SELECT true, t.business_id FROM users t WHERE t.id = p_id;
	WHEN 'business' THEN RETURN QUERY SELECT true, t.id FROM businesses t WHERE t.id = p_id;
	WHEN 'lead' THEN RETURN QUERY SELECT true, t.business_id FROM leads t WHERE t.id = p_id;
	WHEN 'list' THEN RETURN QUERY SELECT true, t.business_id FROM lead_lists t WHERE t.id = p_id;
	WHEN 'script' THEN RETURN QUERY SELECT true, t.business_id FROM call_scripts t WHERE t.id = p_id;
	WHEN 'run' THEN RETURN QUERY SELECT true, t.business_id FROM outbound_call_runs t WHERE t.id = p_id;
	WHEN 'job' THEN RETURN QUERY SELECT true, t.business_id FROM outbound_call_jobs t WHERE t.id = p_id;
	WHEN 'call' THEN RETURN QUERY SELECT true, t.business_id FROM call_log t WHERE t.id = p_id;
	ELSE
		RAISE EXCEPTION 'unknown resource type %', p_type USING ERRCODE = '22023';
	END CASE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT false, NULL::bigint;
	END IF;
END
$$;

-- Webhooks arrive with no tenant: the call's business, by provider call id,
-- so the handler can scope its transaction before touching anything.
CREATE FUNCTION webhook_call_business(p_call_sid text)
RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT business_id FROM call_log WHERE call_sid = p_call_sid $$;

-- Whether any worker heartbeated within p_stale_s seconds (the active-run
-- endpoint stops a stale run only when none is alive).
CREATE FUNCTION app_workers_alive(p_stale_s integer)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT EXISTS (SELECT 1 FROM workers WHERE stopped_at IS NULL
		       AND last_heartbeat_at > now() - make_interval(secs => p_stale_s)) $$;

REVOKE ALL ON FUNCTION webhook_call_business(text), app_workers_alive(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_call_business(text), app_workers_alive(integer) TO dialflow_app;
