-- 0006_call_scripts.sql: what an answered call does (issue 7): the digits a
-- callee pressed, answering-machine detection (AMD) per business and its
-- verdict per job, the worker's pending AMD action, and the one lookup the
-- voice webhook makes before it answers TwiML.

-- What the callee did: the DTMF of the last <Gather> answer, and AMD's
-- verdict. voicemail_requested_at is a pending AMD action for the worker
-- (leave the voicemail or hang up, by businesses.amd_action); the worker
-- stamps voicemail_attempt_at while it asks the provider (a short lease, as
-- hangup_attempt_at) and clears both once the provider took it.
ALTER TABLE outbound_call_jobs
	ADD COLUMN digits text CHECK (length(digits) <= 20),
	ADD COLUMN answered_by text CHECK (answered_by IN ('human', 'machine', 'unknown')),
	ADD COLUMN voicemail_requested_at timestamptz,
	ADD COLUMN voicemail_attempt_at timestamptz;

-- AMD costs money per call at the provider: off unless the business asks.
ALTER TABLE businesses
	ADD COLUMN amd_enabled boolean NOT NULL DEFAULT false,
	ADD COLUMN amd_action text NOT NULL DEFAULT 'voicemail'
		CHECK (amd_action IN ('voicemail', 'hangup'));

-- The worker's scan of pending AMD actions (every loop, like the hang-ups).
CREATE INDEX outbound_call_jobs_voicemail_idx ON outbound_call_jobs (id)
	WHERE voicemail_requested_at IS NOT NULL AND status IN ('dialing', 'calling');

-- The voice webhook's whole read, before a tenant is known: one lookup by the
-- provider call id (the unique index on outbound_call_jobs.call_sid) with
-- what the TwiML needs and nothing more. The run's snapshot of its script
-- wins over the script row (editing a script never changes a run in
-- progress).
CREATE FUNCTION webhook_voice_context(p_call_sid text)
RETURNS TABLE (business_id bigint, job_id bigint, lead_id bigint, job_status text,
	       run_status text, force_cancel boolean, script text, lead_name text,
	       lead_phone text, lead_email text, business_name text, caller_id text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT j.business_id, j.id, j.lead_id, j.status, r.status, r.force_cancel,
	       CASE WHEN r.script IS NOT NULL THEN r.script::text
		    WHEN s.id IS NOT NULL THEN json_build_object('kind', s.kind, 'text', s.text,
			'language', s.language, 'voice', s.voice, 'bridge_to', s.bridge_to,
			'options', s.options, 'voicemail', s.voicemail)::text END,
	       l.name, l.phone_e164, l.email, b.name, b.caller_id
	FROM outbound_call_jobs j
	JOIN outbound_call_runs r ON r.id = j.run_id
	JOIN businesses b ON b.id = j.business_id
	LEFT JOIN leads l ON l.id = j.lead_id AND l.business_id = j.business_id
	LEFT JOIN call_scripts s ON s.id = r.script_id AND s.business_id = r.business_id
	WHERE j.call_sid = p_call_sid
$$;
REVOKE ALL ON FUNCTION webhook_voice_context(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION webhook_voice_context(text) TO dialflow_app;
