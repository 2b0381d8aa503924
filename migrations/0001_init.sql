-- 0001_init.sql: tenants, users, sessions, pages, workers, audit trail, and
-- the row-level-security conventions every later tenant table follows.
--
-- Applied by `dialflow-admin migrate` inside one transaction, under an
-- advisory lock, as the owner role (the role that owns every object here).
--
-- Conventions for every tenant table (DESIGN §5):
--   * business_id bigint NOT NULL REFERENCES businesses, first in lookup indexes;
--   * ALTER TABLE ... ENABLE ROW LEVEL SECURITY, with the policies
--       tenant_isolation  TO dialflow_app    USING (app_tenant_visible(business_id))
--       worker_all        TO dialflow_worker USING (true)
--   * the API runs as dialflow_app (not a superuser, no BYPASSRLS, not the
--     owner) with app.business_id set per transaction; a query that forgets
--     its tenant filter then sees only the tenant's rows.

-- Roles. NOLOGIN group roles: the API and worker log in as the owner's login
-- (or any member) and take these with SET ROLE right after connecting.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dialflow_app') THEN
		CREATE ROLE dialflow_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'dialflow_worker') THEN
		CREATE ROLE dialflow_worker NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
	END IF;
END
$$;
GRANT dialflow_app TO CURRENT_USER;
GRANT dialflow_worker TO CURRENT_USER;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO dialflow_app, dialflow_worker;

-- Tenant scope of the current transaction (set by db_set_tenant() or
-- auth_principal()). NULL when no tenant is in scope.
CREATE FUNCTION app_current_business() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.business_id', true), '')::bigint $$;

CREATE FUNCTION app_is_system_admin() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('app.system_admin', true), '') = 'on' $$;

CREATE FUNCTION app_tenant_visible(b bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT b = app_current_business() OR app_is_system_admin() $$;

CREATE TABLE businesses (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
	timezone text NOT NULL DEFAULT 'UTC' CHECK (length(timezone) BETWEEN 1 AND 64),
	default_country text NOT NULL DEFAULT 'US' CHECK (default_country ~ '^[A-Z]{2}$'),
	max_concurrent_calls integer NOT NULL DEFAULT 3 CHECK (max_concurrent_calls BETWEEN 1 AND 1000),
	is_active boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	-- NULL only for system_admin, who belongs to no tenant
	business_id bigint REFERENCES businesses (id),
	email text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
	name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
	password_hash text NOT NULL,
	role text NOT NULL CHECK (role IN ('agent', 'admin', 'owner', 'system_admin')),
	is_active boolean NOT NULL DEFAULT true,
	-- bumped on logout, role change or deactivation: every older token dies
	token_version integer NOT NULL DEFAULT 1,
	last_login_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT users_tenant_role CHECK ((role = 'system_admin') = (business_id IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_business_idx ON users (business_id, id);

-- Opaque refresh tokens, stored as sha256; a family is one login's chain of
-- rotations, revoked whole when a used token comes back (reuse detection).
CREATE TABLE refresh_tokens (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	business_id bigint REFERENCES businesses (id),
	token_hash text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
	family_id uuid NOT NULL,
	expires_at timestamptz NOT NULL,
	revoked_at timestamptz,
	replaced_by bigint REFERENCES refresh_tokens (id),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

-- Pages a business has enabled; the registry of keys and minimum roles is
-- in the code (src/auth/roles.c), the format is checked here.
CREATE TABLE business_pages (
	business_id bigint NOT NULL REFERENCES businesses (id),
	page_key text NOT NULL CHECK (page_key ~ '^[a-z][a-z0-9_]{0,39}$'),
	enabled_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (business_id, page_key)
);

-- Live worker processes. A worker heartbeats its row; the API reads it to
-- tell a stale run with live workers from one whose workers are all gone.
CREATE TABLE workers (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	name text NOT NULL UNIQUE,
	hostname text NOT NULL,
	pid integer NOT NULL,
	version text NOT NULL DEFAULT '',
	started_at timestamptz NOT NULL DEFAULT now(),
	last_heartbeat_at timestamptz NOT NULL DEFAULT now(),
	stopped_at timestamptz
);
CREATE INDEX workers_alive_idx ON workers (last_heartbeat_at) WHERE stopped_at IS NULL;

-- The audit trail: written by audit_record() in the same transaction as the
-- change it describes. Append-only for the application roles.
CREATE TABLE audit_events (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ts timestamptz NOT NULL DEFAULT now(),
	business_id bigint REFERENCES businesses (id),
	actor_id bigint REFERENCES users (id),
	actor_role text,
	impersonator_id bigint REFERENCES users (id),
	tag text NOT NULL CHECK (tag IN ('AUDIT', 'SECURITY', 'FORCE_CANCEL', 'STALE_DETECTION')),
	action text NOT NULL CHECK (length(action) BETWEEN 1 AND 100),
	resource_type text,
	resource_id bigint,
	outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'denied', 'failed')),
	ip text,
	request_id text,
	details jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_business_ts_idx ON audit_events (business_id, ts DESC, id DESC);
CREATE INDEX audit_events_ts_idx ON audit_events (ts DESC, id DESC);
CREATE INDEX audit_events_action_idx ON audit_events (action, ts DESC);

-- Row-level security --------------------------------------------------------
ALTER TABLE businesses ENABLE ROW LEVEL SECURITY;
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE business_pages ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON businesses TO dialflow_app
	USING (app_tenant_visible(id))
	WITH CHECK (app_is_system_admin() OR id = app_current_business());
CREATE POLICY tenant_isolation ON users TO dialflow_app
	USING (app_tenant_visible(business_id))
	WITH CHECK (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON business_pages TO dialflow_app
	USING (app_tenant_visible(business_id));
CREATE POLICY tenant_isolation ON audit_events TO dialflow_app
	USING (app_tenant_visible(business_id));
CREATE POLICY audit_insert ON audit_events FOR INSERT TO dialflow_app
	WITH CHECK (business_id IS NULL OR app_tenant_visible(business_id));
-- refresh_tokens: no policy for dialflow_app at all; only the SECURITY
-- DEFINER functions below touch it.

CREATE POLICY worker_all ON businesses TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON users TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON business_pages TO dialflow_worker USING (true) WITH CHECK (true);
CREATE POLICY worker_all ON audit_events TO dialflow_worker USING (true) WITH CHECK (true);

GRANT SELECT, INSERT, UPDATE ON businesses, users TO dialflow_app;
GRANT SELECT, INSERT, DELETE ON business_pages TO dialflow_app;
GRANT SELECT, INSERT ON audit_events TO dialflow_app;
GRANT SELECT ON workers TO dialflow_app;
GRANT SELECT ON businesses, users, business_pages TO dialflow_worker;
GRANT SELECT, INSERT ON audit_events TO dialflow_worker;
GRANT SELECT, INSERT, UPDATE, DELETE ON workers TO dialflow_worker;

-- Lookups before a tenant is known: narrow SECURITY DEFINER functions ------

-- Login: the one row login needs, by case-insensitive email.
CREATE FUNCTION auth_login_lookup(p_email text)
RETURNS TABLE (user_id bigint, business_id bigint, role text, is_active boolean,
	       password_hash text, token_version integer, business_active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT u.id, u.business_id, u.role, u.is_active, u.password_hash, u.token_version,
	       coalesce(b.is_active, true)
	  FROM users u LEFT JOIN businesses b ON b.id = u.business_id
	 WHERE lower(u.email) = lower(p_email)
$$;

-- The principal of a request: the user by `sub`, the business in effect
-- (a system_admin may name one with X-Business-Id) and its enabled pages.
-- It also scopes the transaction to that tenant for row-level security, so
-- authentication and tenant scoping cost one round trip. The caller still
-- checks is_active, token_version and the acting rules (auth_principal_check).
CREATE FUNCTION auth_principal(p_user_id bigint, p_acting_business bigint)
RETURNS TABLE (user_id bigint, home_business_id bigint, role text, is_active boolean,
	       token_version integer, email text, name text, business_id bigint,
	       business_found boolean, business_active boolean, business_name text,
	       pages text[])
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	u users%ROWTYPE;
	eff bigint;
	b businesses%ROWTYPE;
BEGIN
	SELECT * INTO u FROM users WHERE id = p_user_id;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	eff := u.business_id;
	IF u.role = 'system_admin' AND p_acting_business IS NOT NULL AND p_acting_business > 0 THEN
		eff := p_acting_business;
	END IF;
	IF eff IS NOT NULL THEN
		SELECT * INTO b FROM businesses WHERE id = eff;
	END IF;
	IF u.is_active THEN
		PERFORM set_config('app.business_id', coalesce(b.id::text, ''), true);
		PERFORM set_config('app.system_admin',
				   CASE WHEN u.role = 'system_admin' AND eff IS NULL THEN 'on' ELSE 'off' END,
				   true);
	END IF;
	RETURN QUERY SELECT u.id, u.business_id, u.role, u.is_active, u.token_version, u.email,
			    u.name, b.id, (eff IS NULL OR b.id IS NOT NULL),
			    coalesce(b.is_active, true), b.name,
			    coalesce((SELECT array_agg(p.page_key ORDER BY p.page_key)
					FROM business_pages p WHERE p.business_id = b.id), '{}');
END
$$;

-- Start a refresh-token family (login) and stamp the login time.
CREATE FUNCTION auth_refresh_issue(p_user_id bigint, p_hash text, p_ttl_s integer)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	fam uuid := gen_random_uuid();
BEGIN
	INSERT INTO refresh_tokens (user_id, business_id, token_hash, family_id, expires_at)
	SELECT u.id, u.business_id, p_hash, fam, now() + make_interval(secs => p_ttl_s)
	  FROM users u WHERE u.id = p_user_id AND u.is_active;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	UPDATE users SET last_login_at = now() WHERE id = p_user_id;
	RETURN fam;
END
$$;

-- Rotate: the presented token is spent and replaced by p_new_hash in the
-- same family. A token that was already spent or revoked is a reuse: the
-- whole family is revoked. status: ok | reused | expired | invalid.
CREATE FUNCTION auth_refresh_rotate(p_old_hash text, p_new_hash text, p_ttl_s integer)
RETURNS TABLE (status text, user_id bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	t refresh_tokens%ROWTYPE;
	u users%ROWTYPE;
	new_id bigint;
BEGIN
	SELECT * INTO t FROM refresh_tokens WHERE token_hash = p_old_hash FOR UPDATE;
	IF NOT FOUND THEN
		RETURN QUERY SELECT 'invalid'::text, NULL::bigint;
		RETURN;
	END IF;
	IF t.revoked_at IS NOT NULL THEN
		UPDATE refresh_tokens SET revoked_at = now()
		 WHERE family_id = t.family_id AND revoked_at IS NULL;
		RETURN QUERY SELECT 'reused'::text, t.user_id;
		RETURN;
	END IF;
	IF t.expires_at <= now() THEN
		UPDATE refresh_tokens SET revoked_at = now() WHERE id = t.id;
		RETURN QUERY SELECT 'expired'::text, t.user_id;
		RETURN;
	END IF;
	SELECT * INTO u FROM users WHERE id = t.user_id;
	IF NOT FOUND OR NOT u.is_active THEN
		UPDATE refresh_tokens SET revoked_at = now()
		 WHERE family_id = t.family_id AND revoked_at IS NULL;
		RETURN QUERY SELECT 'invalid'::text, t.user_id;
		RETURN;
	END IF;
	INSERT INTO refresh_tokens (user_id, business_id, token_hash, family_id, expires_at)
	VALUES (t.user_id, t.business_id, p_new_hash, t.family_id,
		now() + make_interval(secs => p_ttl_s))
	RETURNING id INTO new_id;
	UPDATE refresh_tokens SET revoked_at = now(), replaced_by = new_id WHERE id = t.id;
	RETURN QUERY SELECT 'ok'::text, t.user_id;
END
$$;

-- Logout everywhere: revoke every refresh token and kill every access token.
CREATE FUNCTION auth_logout(p_user_id bigint)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	v integer;
BEGIN
	UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = p_user_id AND revoked_at IS NULL;
	UPDATE users SET token_version = token_version + 1, updated_at = now()
	 WHERE id = p_user_id RETURNING token_version INTO v;
	RETURN v;
END
$$;

-- Which tenant owns a resource, so a handler can tell "another tenant's"
-- (403 + [SECURITY]) from "does not exist" (404) although RLS hides both.
-- Later migrations extend the CASE for their resource types.
CREATE FUNCTION app_resource_business(p_type text, p_id bigint)
RETURNS TABLE (found boolean, business_id bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	IF p_type = 'user' THEN
		RETURN QUERY SELECT true, u.business_id FROM users u WHERE u.id = p_id;
	ELSIF p_type = 'business' THEN
		RETURN QUERY SELECT true, b.id FROM businesses b WHERE b.id = p_id;
	ELSE
		RAISE EXCEPTION 'unknown resource type %', p_type USING ERRCODE = '22023';
	END IF;
	IF NOT FOUND THEN
		RETURN QUERY SELECT false, NULL::bigint;
	END IF;
END
$$;

REVOKE ALL ON FUNCTION auth_login_lookup(text), auth_principal(bigint, bigint),
	auth_refresh_issue(bigint, text, integer), auth_refresh_rotate(text, text, integer),
	auth_logout(bigint), app_resource_business(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth_login_lookup(text), auth_principal(bigint, bigint),
	auth_refresh_issue(bigint, text, integer), auth_refresh_rotate(text, text, integer),
	auth_logout(bigint), app_resource_business(text, bigint) TO dialflow_app;
