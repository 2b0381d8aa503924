-- 0005_whatsapp.sql: WhatsApp conversational flows (DESIGN §8): the Cloud API
-- accounts, flow definitions and their immutable versions, contacts and
-- their flow state, the message log, and the outbox the worker drains.
-- Tenant tables follow 0001's conventions (RLS for dialflow_app through
-- app_tenant_visible(), worker_all for dialflow_worker).

-- One WhatsApp Cloud API phone number per business. The secrets
-- (access_token, app_secret, verify_token) are writable by the API but not
-- readable: dialflow_app gets SELECT only on the columns below (the *_set
-- flags say whether a secret is configured). The webhook reaches app_secret
-- through wa_account_by_phone_number_id(), the worker reads access_token.
CREATE TABLE whatsapp_accounts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL UNIQUE REFERENCES businesses (id),
	-- Meta's ids are digits; they go into URLs (Graph API paths)
	phone_number_id text NOT NULL UNIQUE CHECK (phone_number_id ~ '^[0-9]{1,32}$'),
	waba_id text CHECK (waba_id ~ '^[0-9]{1,32}$'),
	access_token text NOT NULL DEFAULT '' CHECK (length(access_token) <= 4096
		AND access_token !~ '[[:cntrl:][:space:]]'),
	app_secret text NOT NULL DEFAULT '' CHECK (length(app_secret) <= 256),
	verify_token text CHECK (length(verify_token) BETWEEN 1 AND 256),
	access_token_set boolean GENERATED ALWAYS AS (access_token <> '') STORED,
	app_secret_set boolean GENERATED ALWAYS AS (app_secret <> '') STORED,
	verify_token_set boolean GENERATED ALWAYS AS (verify_token IS NOT NULL) STORED,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX whatsapp_accounts_verify_token_key ON whatsapp_accounts (verify_token)
	WHERE verify_token IS NOT NULL;

-- A flow; its definition lives in flow_versions, current_version_id is the
-- version new conversations start on.
CREATE TABLE flows (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 255),
	description text CHECK (length(description) <= 4000),
	is_active boolean NOT NULL DEFAULT false,
	trigger_keywords jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(trigger_keywords) = 'array'),
	trigger_config jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(trigger_config) = 'object'),
	current_version_id bigint,
	created_by bigint REFERENCES users (id),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (business_id, name)
);
CREATE INDEX flows_business_active_idx ON flows (business_id, is_active, id);

-- Immutable: the application roles may insert versions, never change them.
CREATE TABLE flow_versions (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	flow_id bigint NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
	business_id bigint NOT NULL REFERENCES businesses (id),
	version integer NOT NULL CHECK (version >= 1),
	definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
	created_by bigint REFERENCES users (id),
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (flow_id, version)
);
ALTER TABLE flows ADD CONSTRAINT flows_current_version_fk FOREIGN KEY (current_version_id)
	REFERENCES flow_versions (id) DEFERRABLE INITIALLY DEFERRED;

-- A WhatsApp user of a business (wa_id: digits, no '+').
CREATE TABLE contacts (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	wa_id text NOT NULL CHECK (wa_id ~ '^[0-9]{5,20}$'),
	name text CHECK (length(name) <= 256),
	email text CHECK (length(email) <= 254),
	language text CHECK (length(language) <= 16),
	notes text CHECK (length(notes) <= 4000),
	-- human handover: the bot is silent while needs_human; only an agent lifts it
	needs_human boolean NOT NULL DEFAULT false,
	handover_requested_at timestamptz,
	handover_reason text CHECK (length(handover_reason) <= 500),
	-- the "agents are busy" notice went out (once per handover; reset on resolve)
	handover_notice_sent_at timestamptz,
	last_seen timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (business_id, wa_id)
);
CREATE INDEX contacts_business_idx ON contacts (business_id, id DESC);
CREATE INDEX contacts_needs_human_idx ON contacts (business_id, handover_requested_at)
	WHERE needs_human;
-- The handover-notice sweep: pending handovers without a notice, all tenants.
CREATE INDEX contacts_handover_notice_idx ON contacts (handover_requested_at)
	WHERE needs_human AND handover_notice_sent_at IS NULL;

-- A contact's live conversation: at most one, pinned to the flow version it
-- started on. No row = not in a flow; ending a flow deletes the row. Every
-- writer holds the contact's row lock (contacts FOR UPDATE) first, so
-- webhook processing, agents and the sweeps never interleave on a contact.
CREATE TABLE contact_flow_state (
	contact_id bigint PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,
	business_id bigint NOT NULL REFERENCES businesses (id),
	flow_id bigint NOT NULL REFERENCES flows (id) ON DELETE CASCADE,
	flow_version_id bigint NOT NULL REFERENCES flow_versions (id) ON DELETE CASCADE,
	current_step text NOT NULL CHECK (length(current_step) BETWEEN 1 AND 255),
	context jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(context) = 'object'),
	awaiting jsonb CHECK (awaiting IS NULL OR jsonb_typeof(awaiting) = 'object'),
	fallback_count integer NOT NULL DEFAULT 0 CHECK (fallback_count >= 0),
	started_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_flow_state_flow_idx ON contact_flow_state (business_id, flow_id);
-- The idle-timeout sweep.
CREATE INDEX contact_flow_state_idle_idx ON contact_flow_state (updated_at);

-- Every message in and out. Inbound rows are deduplicated by wamid (Meta
-- redelivers); an outbound row has no wamid until the worker sent it.
-- sender: who wrote an outbound message; the bot's own messages never lift a
-- handover pause, only an agent's action does.
CREATE TABLE messages (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	direction text NOT NULL CHECK (direction IN ('in', 'out')),
	wamid text CHECK (length(wamid) BETWEEN 1 AND 256),
	type text NOT NULL CHECK (type ~ '^[a-z_]{1,32}$'),
	payload jsonb NOT NULL DEFAULT '{}'::jsonb,
	text text CHECK (length(text) <= 65536),
	status text NOT NULL
		CHECK (status IN ('received', 'queued', 'sent', 'delivered', 'read', 'failed')),
	error jsonb,
	sender text CHECK (sender IN ('bot', 'agent', 'system')),
	agent_id bigint REFERENCES users (id),
	created_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz,
	delivered_at timestamptz,
	read_at timestamptz,
	failed_at timestamptz,
	CHECK ((direction = 'out') = (sender IS NOT NULL)),
	CHECK (direction = 'out' OR wamid IS NOT NULL)
);
CREATE UNIQUE INDEX messages_wamid_key ON messages (business_id, direction, wamid)
	WHERE wamid IS NOT NULL;
CREATE INDEX messages_contact_idx ON messages (contact_id, id DESC);
CREATE INDEX messages_business_idx ON messages (business_id, id DESC);

-- The transactional outbox: one row per outbound message, written in the
-- same transaction as the message. payload is a Graph API message object
-- without messaging_product/recipient_type/to, which the sender adds, e.g.
-- {"type":"text","text":{"body":"...","preview_url":false}}. The worker
-- sends each contact's rows strictly in id order: a row is sendable only
-- when no earlier row of its contact is still queued or sending (a
-- permanently failed row does not block the next one).
CREATE TABLE wa_outbox (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	business_id bigint NOT NULL REFERENCES businesses (id),
	contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
	message_id bigint NOT NULL UNIQUE REFERENCES messages (id) ON DELETE CASCADE,
	payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
	status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
	attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	max_attempts integer NOT NULL DEFAULT 8 CHECK (max_attempts BETWEEN 1 AND 100),
	next_attempt_at timestamptz NOT NULL DEFAULT now(),
	locked_by text,
	locked_until timestamptz,
	last_error text CHECK (length(last_error) <= 2000),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	sent_at timestamptz
);
-- The oldest unsent row of each contact (the head of its queue).
CREATE INDEX wa_outbox_contact_pending_idx ON wa_outbox (contact_id, id)
	WHERE status IN ('queued', 'sending');
CREATE INDEX wa_outbox_due_idx ON wa_outbox (next_attempt_at, id) WHERE status = 'queued';
CREATE INDEX wa_outbox_lease_idx ON wa_outbox (locked_until) WHERE status = 'sending';

-- Row-level security --------------------------------------------------------
ALTER TABLE whatsapp_accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE flows ENABLE ROW LEVEL SECURITY;
ALTER TABLE flow_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE contacts ENABLE ROW LEVEL SECURITY;
ALTER TABLE contact_flow_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE messages ENABLE ROW LEVEL SECURITY;
ALTER TABLE wa_outbox ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON whatsapp_accounts TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON flows TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON flow_versions TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON contacts TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON contact_flow_state TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON messages TO dialflow_app USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON wa_outbox TO dialflow_app USING (app_tenant_visible(business_id));

CREATE POLICY worker_all ON whatsapp_accounts TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON flows TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON flow_versions TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON contacts TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON contact_flow_state TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON messages TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON wa_outbox TO dialflow_worker USING (true) WITH CHECK (true);

-- The API writes the secrets but reads only these columns.
GRANT SELECT (id, business_id, phone_number_id, waba_id, access_token_set, app_secret_set,
	      verify_token_set, created_at, updated_at) ON whatsapp_accounts TO dialflow_app;
GRANT INSERT (business_id, phone_number_id, waba_id, access_token, app_secret, verify_token,
	      updated_at),
      UPDATE (phone_number_id, waba_id, access_token, app_secret, verify_token, updated_at)
	ON whatsapp_accounts TO dialflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON flows, contact_flow_state TO dialflow_app;
GRANT SELECT, INSERT ON flow_versions TO dialflow_app;
GRANT SELECT, INSERT, UPDATE ON contacts, messages TO dialflow_app;
GRANT SELECT, INSERT ON wa_outbox TO dialflow_app;

GRANT SELECT ON whatsapp_accounts, flows, flow_versions TO dialflow_worker;
GRANT SELECT, UPDATE ON contacts TO dialflow_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON contact_flow_state TO dialflow_worker;
GRANT SELECT, INSERT, UPDATE ON messages, wa_outbox TO dialflow_worker;

-- Lookups before a tenant is known ------------------------------------------

-- POST /webhooks/whatsapp: the account a payload names, with the one secret
-- the signature check needs. Never the access token.
CREATE FUNCTION wa_account_by_phone_number_id(p_phone_number_id text)
RETURNS TABLE (account_id bigint, business_id bigint, app_secret text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT a.id, a.business_id, a.app_secret
	  FROM whatsapp_accounts a JOIN businesses b ON b.id = a.business_id
	 WHERE a.phone_number_id = p_phone_number_id AND b.is_active
$$;

-- GET /webhooks/whatsapp (subscription verification): which account, if
-- any, has this verify token.
CREATE FUNCTION wa_account_by_verify_token(p_verify_token text)
RETURNS TABLE (account_id bigint, business_id bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT a.id, a.business_id FROM whatsapp_accounts a
	 WHERE a.verify_token = p_verify_token AND length(p_verify_token) BETWEEN 1 AND 256
$$;

REVOKE ALL ON FUNCTION wa_account_by_phone_number_id(text), wa_account_by_verify_token(text)
	FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wa_account_by_phone_number_id(text), wa_account_by_verify_token(text)
	TO dialflow_app;

-- Queue one outbound message (the caller's transaction, the caller's rights:
-- SECURITY INVOKER, so RLS scopes it to the caller's tenant): the messages
-- row (direction out, status queued) and its outbox row, and a NOTIFY
-- 'outbox' on the worker channel (QUEUE_CHANNEL in queue.h), delivered at
-- commit. Returns no row when the contact is not the business's. The text
-- column keeps the readable part of the payload (body, caption, ...).
CREATE FUNCTION wa_enqueue(p_business_id bigint, p_contact_id bigint, p_payload jsonb,
			   p_sender text, p_agent_id bigint DEFAULT NULL)
RETURNS TABLE (message_id bigint, outbox_id bigint)
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp
AS $$
DECLARE
	t text := p_payload ->> 'type';
	mid bigint;
	oid bigint;
BEGIN
	IF jsonb_typeof(p_payload) IS DISTINCT FROM 'object' OR t IS NULL OR t !~ '^[a-z_]{1,32}$'
	   OR jsonb_typeof(p_payload -> t) IS DISTINCT FROM 'object' THEN
		RAISE EXCEPTION 'wa_enqueue: the payload must be {"type":T, T:{...}}'
			USING ERRCODE = '22023';
	END IF;
	INSERT INTO messages (business_id, contact_id, direction, type, payload, text, status,
			      sender, agent_id)
	SELECT c.business_id, c.id, 'out', t, p_payload,
	       left(coalesce(p_payload #>> '{text,body}', p_payload #>> '{interactive,body,text}',
			     p_payload -> t ->> 'caption', p_payload #>> '{template,name}'), 65536),
	       'queued', p_sender, p_agent_id
	  FROM contacts c WHERE c.id = p_contact_id AND c.business_id = p_business_id
	RETURNING id INTO mid;
	IF mid IS NULL THEN
		RETURN;
	END IF;
	INSERT INTO wa_outbox (business_id, contact_id, message_id, payload)
	VALUES (p_business_id, p_contact_id, mid, p_payload) RETURNING id INTO oid;
	PERFORM pg_notify('dialflow_worker', 'outbox');
	RETURN QUERY SELECT mid, oid;
END
$$;
REVOKE ALL ON FUNCTION wa_enqueue(bigint, bigint, jsonb, text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION wa_enqueue(bigint, bigint, jsonb, text, bigint)
	TO dialflow_app, dialflow_worker;

-- The tenant guard's lookup learns the WhatsApp resources, so another
-- tenant's flow, contact or message is a 403 with a [SECURITY] row, and an
-- unknown id a 404.
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
	WHEN 'flow' THEN RETURN QUERY SELECT true, t.business_id FROM flows t WHERE t.id = p_id;
	WHEN 'contact' THEN RETURN QUERY SELECT true, t.business_id FROM contacts t WHERE t.id = p_id;
	WHEN 'message' THEN RETURN QUERY SELECT true, t.business_id FROM messages t WHERE t.id = p_id;
	ELSE
		RAISE EXCEPTION 'unknown resource type %', p_type USING ERRCODE = '22023';
	END CASE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT false, NULL::bigint;
	END IF;
END
$$;
