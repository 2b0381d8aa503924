-- 0003_worker.sql: what the worker needs beyond 0002 (src/worker, src/queue):
-- the per-account dialling pace shared by every worker, the calling-window
-- test, the hang-up lease of force-cancel, and the indexes of the worker's
-- hot queries (dispatch, hang-ups, reconciliation, takeover).

-- The dialling pace of one provider account, shared by all workers: a GCRA
-- (generic cell rate algorithm) token bucket whose whole state is the
-- theoretical arrival time of the next call. Not tenant data: no RLS.
CREATE TABLE outbound_pace (
	account text PRIMARY KEY CHECK (length(account) <= 128),
	tat timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON outbound_pace TO dialflow_worker;

-- Reserve up to p_want call slots of account p_account at p_rate calls per
-- second (a bucket of p_rate calls). Returns how many were granted and, when
-- fewer than asked, how many milliseconds until the next one. Locks the
-- account's row until the caller's transaction ends.
CREATE FUNCTION outbound_pace_take(p_account text, p_want integer, p_rate integer,
				   OUT granted integer, OUT wait_ms integer)
LANGUAGE plpgsql
AS $$
DECLARE
	t timestamptz := clock_timestamp();
	step interval := make_interval(secs => 1.0 / greatest(p_rate, 1));
	burst interval := make_interval(secs => (greatest(p_rate, 1) - 1)::float8 / greatest(p_rate, 1));
	cur timestamptz;
BEGIN
	INSERT INTO outbound_pace (account, tat) VALUES (p_account, t) ON CONFLICT (account) DO NOTHING;
	SELECT greatest(p.tat, t) INTO cur FROM outbound_pace p WHERE p.account = p_account FOR UPDATE;
	-- call i (0-based) conforms when cur + i * step <= t + burst
	granted := least(greatest(p_want, 0),
			 greatest(0, floor(extract(epoch FROM (t + burst - cur)) * greatest(p_rate, 1)
					   + 1e-6)::integer + 1));
	IF granted > 0 THEN
		cur := cur + granted * step;
		UPDATE outbound_pace SET tat = cur WHERE account = p_account;
	END IF;
	wait_ms := greatest(0, ceil(extract(epoch FROM (cur - burst - t)) * 1000))::integer;
END
$$;
REVOKE ALL ON FUNCTION outbound_pace_take(text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION outbound_pace_take(text, integer, integer) TO dialflow_worker;

-- Whether a business may be called now: local time in p_tz within
-- [p_start, p_end) (a window with p_start > p_end spans midnight; p_start =
-- p_end means all day). An unknown time zone closes the window rather than
-- guess at the callee's hour.
CREATE FUNCTION outbound_calling_window_open(p_tz text, p_start time, p_end time)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
	local_now time;
BEGIN
	local_now := (now() AT TIME ZONE p_tz)::time;
	IF p_start = p_end THEN
		RETURN true;
	ELSIF p_start < p_end THEN
		RETURN local_now >= p_start AND local_now < p_end;
	END IF;
	RETURN local_now >= p_start OR local_now < p_end;
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN false;
END
$$;
GRANT EXECUTE ON FUNCTION outbound_calling_window_open(text, time, time)
	TO dialflow_app, dialflow_worker;

-- Force-cancel's hang-up lease: the worker that asks the provider to hang up
-- a call stamps it first, so other workers leave it alone for a few seconds
-- and retry only if that worker died before the job was closed.
ALTER TABLE outbound_call_jobs ADD COLUMN hangup_attempt_at timestamptz;

-- Dispatch: the next ready jobs of a run.
CREATE INDEX outbound_call_jobs_ready_idx ON outbound_call_jobs (run_id, next_attempt_at, id)
	WHERE status = 'queued';
-- Force-cancel: live calls whose hang-up was requested (scanned every loop).
CREATE INDEX outbound_call_jobs_hangup_idx ON outbound_call_jobs (id)
	WHERE hangup_requested_at IS NOT NULL AND status IN ('dialing', 'calling');
-- Reconciliation: calls with a provider id and no final status yet.
CREATE INDEX call_log_open_idx ON call_log (updated_at)
	WHERE call_sid IS NOT NULL AND status IN ('initiated', 'queued', 'ringing', 'in-progress');
-- A job's calls (takeover, history).
CREATE INDEX call_log_job_idx ON call_log (job_id) WHERE job_id IS NOT NULL;
