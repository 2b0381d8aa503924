-- 0007_metrics.sql: the numbers GET /metrics reads at scrape time (issue 5).
--
-- The API's role sees only its tenant's rows under row-level security, and a
-- scrape has no tenant, so one narrow SECURITY DEFINER function returns the
-- cross-tenant aggregates and nothing else: counts and ages, never a row.
-- Each part reads a partial index of the live states, so a scrape stays
-- cheap however much history the tables hold (runs are few by design).
--
-- Rows are (metric, l1, l2, value); src/api/metrics.c names the labels.
CREATE FUNCTION metrics_snapshot(p_stale_s integer)
RETURNS TABLE (metric text, l1 text, l2 text, value double precision)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT 'runs', s.status, '', count(r.id)::double precision
	  FROM (VALUES ('pending'), ('running'), ('completed'), ('cancelled'), ('stopped'),
		       ('failed')) AS s (status)
	  LEFT JOIN outbound_call_runs r ON r.status = s.status
	 GROUP BY s.status
	UNION ALL
	SELECT 'calls_in_flight', s.status, '', count(j.id)::double precision
	  FROM (VALUES ('dialing'), ('calling')) AS s (status)
	  LEFT JOIN outbound_call_jobs j ON j.status = s.status AND j.status IN ('dialing', 'calling')
	 GROUP BY s.status
	UNION ALL
	SELECT 'queue_jobs', kind, status, count(*)::double precision
	  FROM background_jobs WHERE status IN ('queued', 'running')
	 GROUP BY kind, status
	UNION ALL
	SELECT 'queue_oldest_age', kind, status,
	       greatest(0, extract(epoch FROM now() - min(run_at)))::double precision
	  FROM background_jobs WHERE status IN ('queued', 'running')
	 GROUP BY kind, status
	UNION ALL
	SELECT 'outbox_messages', s.status, '', count(o.id)::double precision
	  FROM (VALUES ('queued'), ('sending')) AS s (status)
	  LEFT JOIN wa_outbox o ON o.status = s.status AND o.status IN ('queued', 'sending')
	 GROUP BY s.status
	UNION ALL
	SELECT 'outbox_oldest_age', s.status, '',
	       coalesce(greatest(0, extract(epoch FROM now() - min(o.created_at))), 0)::double precision
	  FROM (VALUES ('queued'), ('sending')) AS s (status)
	  LEFT JOIN wa_outbox o ON o.status = s.status AND o.status IN ('queued', 'sending')
	 GROUP BY s.status
	UNION ALL
	SELECT 'workers_alive', '', '', count(*)::double precision
	  FROM workers
	 WHERE stopped_at IS NULL AND last_heartbeat_at > now() - make_interval(secs => p_stale_s)
	UNION ALL
	SELECT 'worker_heartbeat_age', name, '',
	       greatest(0, extract(epoch FROM now() - last_heartbeat_at))::double precision
	  FROM workers
	 WHERE stopped_at IS NULL AND last_heartbeat_at > now() - interval '1 hour'
$$;

REVOKE ALL ON FUNCTION metrics_snapshot(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION metrics_snapshot(integer) TO dialflow_app;
