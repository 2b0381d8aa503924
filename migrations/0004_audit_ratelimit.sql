-- 0004_audit_ratelimit.sql: the audit trail partitioned by month (cheap
-- retention), its filter indexes and tags; app-level rate limits kept in the
-- database so they hold across every API process and host; per-account
-- backoff of failed logins.

-- Audit trail, partitioned -------------------------------------------------
--
-- Retention drops whole months (audit_prune), so pruning 180 days of a busy
-- platform is a catalog change, not a DELETE of millions of rows followed by
-- a vacuum. The primary key includes ts, as partitioning requires; ids stay
-- unique (one identity sequence). A DEFAULT partition catches rows when the
-- monthly partitions were not created in time (the worker creates them ahead,
-- audit_ensure_partitions), so an event is never refused.

ALTER TABLE audit_events RENAME TO audit_events_v1;
ALTER INDEX audit_events_pkey RENAME TO audit_events_v1_pkey;
ALTER INDEX audit_events_business_ts_idx RENAME TO audit_events_v1_business_ts_idx;
ALTER INDEX audit_events_ts_idx RENAME TO audit_events_v1_ts_idx;
ALTER INDEX audit_events_action_idx RENAME TO audit_events_v1_action_idx;

CREATE TABLE audit_events (
	id bigint GENERATED ALWAYS AS IDENTITY,
	ts timestamptz NOT NULL DEFAULT now(),
	business_id bigint REFERENCES businesses (id),
	actor_id bigint REFERENCES users (id),
	actor_role text,
	impersonator_id bigint REFERENCES users (id),
	tag text NOT NULL CHECK (tag IN ('AUDIT', 'SECURITY', 'FORCE_CANCEL', 'STALE_DETECTION',
					 'HANDOVER', 'FLOW_STATE', 'RATE_LIMIT')),
	action text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
	resource_type text CHECK (length(resource_type) <= 40),
	resource_id bigint,
	outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'denied', 'failed')),
	ip text CHECK (length(ip) <= 64),
	request_id text CHECK (length(request_id) <= 64),
	details jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (length(details::text) <= 4096),
	PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
CREATE TABLE audit_events_default PARTITION OF audit_events DEFAULT;

-- The filters of GET /api/audit and /api/admin/audit: newest first within a
-- tenant, or platform-wide, by tag, action, actor or resource.
CREATE INDEX audit_events_business_ts_idx ON audit_events (business_id, ts DESC, id DESC);
CREATE INDEX audit_events_ts_idx ON audit_events (ts DESC, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, ts DESC);
CREATE INDEX audit_events_tag_idx ON audit_events (tag, ts DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, ts DESC) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_events_resource_idx ON audit_events (resource_type, resource_id, ts DESC)
	WHERE resource_type IS NOT NULL;

-- Create the monthly partitions from p_from's month through p_months_ahead
-- months after the current one; existing ones are kept. A month whose rows
-- already sit in the DEFAULT partition is moved into its new partition.
-- Returns how many partitions were created. Owner rights (the worker calls it).
CREATE FUNCTION audit_ensure_partitions(p_from timestamptz, p_months_ahead integer)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	m date := date_trunc('month', least(p_from, now()) AT TIME ZONE 'UTC')::date;
	last date := (date_trunc('month', now() AT TIME ZONE 'UTC')
		      + make_interval(months => greatest(p_months_ahead, 0)))::date;
	lo timestamptz;
	hi timestamptz;
	part text;
	made integer := 0;
	parked bigint;
BEGIN
	-- one caller at a time: two workers must not race on the same CREATE
	PERFORM pg_advisory_xact_lock(hashtext('audit_ensure_partitions'));
	WHILE m <= last LOOP
		part := format('audit_events_y%sm%s', to_char(m, 'YYYY'), to_char(m, 'MM'));
		IF to_regclass(part) IS NULL THEN
			lo := (m::timestamp AT TIME ZONE 'UTC');
			hi := ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC');
			SELECT count(*) INTO parked FROM audit_events_default WHERE ts >= lo AND ts < hi;
			IF parked > 0 THEN
				EXECUTE format('CREATE TABLE %I (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
				EXECUTE format('INSERT INTO %I SELECT * FROM audit_events_default WHERE ts >= $1 AND ts < $2', part)
					USING lo, hi;
				DELETE FROM audit_events_default WHERE ts >= lo AND ts < hi;
				EXECUTE format('ALTER TABLE audit_events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
					       part, lo, hi);
			ELSE
				EXECUTE format('CREATE TABLE %I PARTITION OF audit_events FOR VALUES FROM (%L) TO (%L)',
					       part, lo, hi);
			END IF;
			made := made + 1;
		END IF;
		m := (m + interval '1 month')::date;
	END LOOP;
	RETURN made;
END
$$;
REVOKE ALL ON FUNCTION audit_ensure_partitions(timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_ensure_partitions(timestamptz, integer) TO dialflow_worker;

-- Retention: remove every event older than p_before. Whole monthly partitions
-- entirely before the cutoff are dropped; the month that straddles it and the
-- DEFAULT partition are trimmed row by row. Returns the rows removed and the
-- partitions dropped. Owner only (dialflow-admin audit prune).
CREATE FUNCTION audit_prune(p_before timestamptz, OUT rows_removed bigint,
			    OUT partitions_dropped integer)
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp
AS $$
DECLARE
	p record;
	n bigint;
BEGIN
	rows_removed := 0;
	partitions_dropped := 0;
	FOR p IN
		SELECT c.relname,
		       (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS hi
		  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		 WHERE i.inhparent = 'audit_events'::regclass AND c.relname <> 'audit_events_default'
	LOOP
		IF p.hi <= p_before THEN
			EXECUTE format('SELECT count(*) FROM %I', p.relname) INTO n;
			EXECUTE format('DROP TABLE %I', p.relname);
			rows_removed := rows_removed + n;
			partitions_dropped := partitions_dropped + 1;
		END IF;
	END LOOP;
	DELETE FROM audit_events WHERE ts < p_before;
	GET DIAGNOSTICS n = ROW_COUNT;
	rows_removed := rows_removed + n;
END
$$;
REVOKE ALL ON FUNCTION audit_prune(timestamptz) FROM PUBLIC;

-- Move the trail of 0001 over, ids and all.
SELECT audit_ensure_partitions(coalesce((SELECT min(ts) FROM audit_events_v1), now()), 3);
INSERT INTO audit_events OVERRIDING SYSTEM VALUE SELECT * FROM audit_events_v1;
SELECT setval(pg_get_serial_sequence('audit_events', 'id'),
	      greatest((SELECT max(id) FROM audit_events_v1), 0) + 1, false);
DROP TABLE audit_events_v1;

ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON audit_events TO dialflow_app
	USING (app_tenant_visible(business_id));
CREATE POLICY audit_insert ON audit_events FOR INSERT TO dialflow_app
	WITH CHECK (business_id IS NULL OR app_tenant_visible(business_id));
CREATE POLICY worker_all ON audit_events TO dialflow_worker USING (true) WITH CHECK (true);
-- Append-only for both application roles: no UPDATE, no DELETE, no TRUNCATE.
GRANT SELECT, INSERT ON audit_events TO dialflow_app, dialflow_worker;

-- Rate limits --------------------------------------------------------------
--
-- One sliding-window log per bucket ("run_create:b:42"): the timestamps of
-- the hits inside the window, at most `limit` of them. "At most N in any
-- window of W seconds" holds exactly, whatever the alignment of the window,
-- and two API processes racing on one bucket serialise on its row.

CREATE TABLE rate_limit_hits (
	bucket text PRIMARY KEY CHECK (length(bucket) BETWEEN 1 AND 200),
	hits timestamptz[] NOT NULL,
	updated_at timestamptz NOT NULL
);

-- A business's own limits where it differs from the defaults in the code.
CREATE TABLE business_rate_limits (
	business_id bigint NOT NULL REFERENCES businesses (id),
	name text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
	max_hits integer NOT NULL CHECK (max_hits BETWEEN 1 AND 100000),
	window_s integer NOT NULL CHECK (window_s BETWEEN 1 AND 86400),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (business_id, name)
);
ALTER TABLE business_rate_limits ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON business_rate_limits TO dialflow_app
	USING (app_tenant_visible(business_id)) WITH CHECK (app_is_system_admin());
CREATE POLICY worker_all ON business_rate_limits TO dialflow_worker USING (true) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE, DELETE ON business_rate_limits TO dialflow_app;
GRANT SELECT ON business_rate_limits TO dialflow_worker;

-- Take one hit from the bucket `p_name:p_subject` of business p_business:
-- the business's own limit for p_name if it has one, else p_limit hits per
-- p_window_s seconds. One upsert. allowed = false leaves the log unchanged and
-- says when the oldest hit leaves the window (retry_after_s >= 1).
CREATE FUNCTION rate_limit_take(p_business bigint, p_name text, p_subject text,
				p_limit integer, p_window_s integer,
				OUT allowed boolean, OUT retry_after_s integer,
				OUT max_hits integer, OUT window_s integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	t timestamptz := clock_timestamp();
	w interval;
	lg timestamptz[];
BEGIN
	max_hits := p_limit;
	window_s := p_window_s;
	SELECT l.max_hits, l.window_s INTO max_hits, window_s
	  FROM business_rate_limits l WHERE l.business_id = p_business AND l.name = p_name;
	IF NOT FOUND THEN
		max_hits := p_limit;
		window_s := p_window_s;
	END IF;
	w := make_interval(secs => window_s);
	INSERT INTO rate_limit_hits AS r (bucket, hits, updated_at)
	VALUES (p_name || ':' || coalesce(p_business::text, '-') || ':' || p_subject, ARRAY[t], t)
	ON CONFLICT (bucket) DO UPDATE
	   SET hits = CASE WHEN cardinality(ARRAY(SELECT h FROM unnest(r.hits) h WHERE h > t - w)) < max_hits
			   THEN ARRAY(SELECT h FROM unnest(r.hits) h WHERE h > t - w ORDER BY h) || t
			   ELSE ARRAY(SELECT h FROM unnest(r.hits) h WHERE h > t - w ORDER BY h) END,
	       updated_at = t
	RETURNING r.hits INTO lg;
	allowed := lg[cardinality(lg)] = t;
	retry_after_s := CASE WHEN allowed THEN 0
			 ELSE greatest(1, ceil(extract(epoch FROM (lg[1] + w - t)))::integer) END;
END
$$;
REVOKE ALL ON FUNCTION rate_limit_take(bigint, text, text, integer, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rate_limit_take(bigint, text, text, integer, integer)
	TO dialflow_app, dialflow_worker;

-- Forget buckets idle for a day (the worker's maintenance sweep).
CREATE FUNCTION rate_limit_gc() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	WITH d AS (DELETE FROM rate_limit_hits WHERE updated_at < now() - interval '1 day' RETURNING 1)
	SELECT count(*) FROM d
$$;
REVOKE ALL ON FUNCTION rate_limit_gc() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION rate_limit_gc() TO dialflow_worker;

-- Failed logins --------------------------------------------------------------
--
-- Per account, on top of nginx's per-IP limit: from the 5th failure in a row,
-- the n-th failure locks the account for 2^(n-5) s (1 s, 2 s, 4 s ... capped
-- at 15 min). While locked, login answers exactly as for a wrong password,
-- without counting the attempt or looking at the password; an unknown email
-- answers the same, so nothing tells whether an account exists.

ALTER TABLE users ADD COLUMN failed_logins integer NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_locked_until timestamptz;

DROP FUNCTION auth_login_lookup(text);
CREATE FUNCTION auth_login_lookup(p_email text)
RETURNS TABLE (user_id bigint, business_id bigint, role text, is_active boolean,
	       password_hash text, token_version integer, business_active boolean,
	       locked boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT u.id, u.business_id, u.role, u.is_active, u.password_hash, u.token_version,
	       coalesce(b.is_active, true),
	       coalesce(u.login_locked_until > clock_timestamp(), false)
	  FROM users u LEFT JOIN businesses b ON b.id = u.business_id
	 WHERE lower(u.email) = lower(p_email)
$$;
REVOKE ALL ON FUNCTION auth_login_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_login_lookup(text) TO dialflow_app;

-- Record one login outcome of an existing account: success resets the count,
-- failure counts and (from the 5th) locks. Returns the failures in a row and
-- the lock's end.
CREATE FUNCTION auth_login_outcome(p_user_id bigint, p_ok boolean,
				   OUT failures integer, OUT locked_until timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	IF p_ok THEN
		UPDATE users SET failed_logins = 0, login_locked_until = NULL WHERE id = p_user_id
		RETURNING 0, NULL::timestamptz INTO failures, locked_until;
		RETURN;
	END IF;
	UPDATE users
	   SET failed_logins = failed_logins + 1,
	       login_locked_until = CASE WHEN failed_logins + 1 >= 5
		   THEN clock_timestamp() + make_interval(secs => least(900, power(2, least(failed_logins + 1 - 5, 10))))
		   ELSE login_locked_until END
	 WHERE id = p_user_id
	RETURNING failed_logins, login_locked_until INTO failures, locked_until;
END
$$;
REVOKE ALL ON FUNCTION auth_login_outcome(bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_login_outcome(bigint, boolean) TO dialflow_app;

-- Events before any tenant is known (login, a webhook's signature): the app
-- role is not scoped to a tenant yet, so RLS would refuse the row. This
-- narrow definer writes only auth.* and webhook.* events; the business is the
-- actor's when not given.
CREATE FUNCTION audit_insert_preauth(p_business bigint, p_actor bigint, p_actor_role text,
				     p_tag text, p_action text, p_resource_type text,
				     p_resource_id bigint, p_outcome text, p_ip text,
				     p_request_id text, p_details jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	IF p_action !~ '^(auth|webhook)\.' THEN
		RAISE EXCEPTION 'audit_insert_preauth: "%" is not a pre-authentication event', p_action
			USING ERRCODE = '42501';
	END IF;
	INSERT INTO audit_events (business_id, actor_id, actor_role, tag, action, resource_type,
				  resource_id, outcome, ip, request_id, details)
	VALUES (coalesce(p_business, (SELECT u.business_id FROM users u WHERE u.id = p_actor)),
		p_actor, p_actor_role, p_tag, p_action, p_resource_type, p_resource_id,
		coalesce(p_outcome, 'ok'), p_ip, p_request_id, coalesce(p_details, '{}'::jsonb));
END
$$;
REVOKE ALL ON FUNCTION audit_insert_preauth(bigint, bigint, text, text, text, text, bigint, text,
					    text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_insert_preauth(bigint, bigint, text, text, text, text, bigint,
					       text, text, text, jsonb) TO dialflow_app;
