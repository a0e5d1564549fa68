-- Scale check of the request-log search (issue 27 item 6): load 10M rows into a scratch
-- database and EXPLAIN ANALYZE each filter. Run: createdb apilogs_scale; apply migrations/*.sql in
-- order; psql -d apilogs_scale -f this file; dropdb apilogs_scale. Not run by the suite.
\timing on
INSERT INTO tenants (id, name, slug) SELECT ('00000000-0000-0000-0000-00000000000' || t)::uuid, 'T' || t, 'scale-' || t FROM generate_series(1,9) t;
-- 10M rows over 30 days; tenant 1 has half of them; 5% failures; 2% inbound.
INSERT INTO api_request_logs (id, tenant_id, integration_id, direction, method, url, path, headers, body, body_size,
  response_status, response_body, response_size, response_time_ms, correlation_id, status, created_at, attempt)
SELECT (lpad(to_hex((extract(epoch FROM ts) * 1000)::bigint), 12, '0') || '7' || substr(md5(i::text), 1, 19))::uuid,
       ('00000000-0000-0000-0000-00000000000' || (CASE WHEN i % 2 = 0 THEN 1 ELSE 1 + (i % 9) END))::uuid,
       ('00000000-0000-0000-0001-0000000000' || lpad((i % 50)::text, 2, '0'))::uuid,
       CASE WHEN i % 50 = 0 THEN 'INBOUND' ELSE 'OUTBOUND' END,
       (ARRAY['GET','GET','GET','POST','PUT','DELETE'])[1 + i % 6],
       'https://api.hubapi.com/crm/v3/objects/' || (ARRAY['contacts','deals','companies','tickets'])[1 + i % 4] || '/' || i || '?limit=100',
       '/crm/v3/objects/' || (ARRAY['contacts','deals','companies','tickets'])[1 + i % 4] || '/' || i,
       '{"authorization":"[redacted]","accept":"application/json"}'::jsonb,
       CASE WHEN i % 6 >= 3 THEN '{"properties":{"email":"user' || i || '@example.com","firstname":"Name' || i || '"}}' END,
       120,
       s, '{"id":"' || i || '","properties":{"email":"user' || i || '@example.com"},"createdAt":"2025-01-01T00:00:00Z"}', 180,
       (i % 300),
       'req-' || (i / 3),
       CASE WHEN s < 400 THEN 'SUCCESS' WHEN s < 500 THEN 'CLIENT_ERROR' ELSE 'SERVER_ERROR' END,
       ts, 1
FROM (SELECT i, now() - interval '30 days' + (i * interval '30 days' / 10000000) AS ts,
             CASE WHEN i % 40 = 0 THEN 500 + (i % 4) WHEN i % 40 = 1 THEN 404 WHEN i % 40 = 2 THEN 429 ELSE 200 END AS s
        FROM generate_series(1, 10000000) i) g;
ANALYZE api_request_logs;
SELECT pg_size_pretty(pg_total_relation_size('api_request_logs')) total, pg_size_pretty(pg_relation_size('api_request_logs')) heap;
SELECT indexrelname, pg_size_pretty(pg_relation_size(indexrelid)) FROM pg_stat_user_indexes WHERE relname = 'api_request_logs';

-- none
EXPLAIN (ANALYZE, BUFFERS, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' ORDER BY id DESC LIMIT 51;
-- integration
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND integration_id = '00000000-0000-0000-0001-000000000012' ORDER BY id DESC LIMIT 51;
-- direction INBOUND (2%)
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND direction = 'INBOUND' ORDER BY id DESC LIMIT 51;
-- method DELETE
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND method = 'DELETE' ORDER BY id DESC LIMIT 51;
-- status SERVER_ERROR
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND status <> 'SUCCESS' AND status = 'SERVER_ERROR' ORDER BY id DESC LIMIT 51;
-- status_code 404
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND status <> 'SUCCESS' AND response_status >= 404 AND response_status <= 404 ORDER BY id DESC LIMIT 51;
-- status SUCCESS
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND status = 'SUCCESS' ORDER BY id DESC LIMIT 51;
-- path_prefix
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND path LIKE '/crm/v3/objects/deals%' ORDER BY id DESC LIMIT 51;
-- correlation
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND correlation_id = 'req-1000000' ORDER BY id DESC LIMIT 51;
-- time range: a day 10 days ago
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND id >= hub_uuid7_floor(now() - interval '10 days') AND id < hub_uuid7_floor(now() - interval '9 days') ORDER BY id DESC LIMIT 51;
-- q common
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND (url ILIKE '%user4%' OR body ILIKE '%user4%' OR response_body ILIKE '%user4%') ORDER BY id DESC LIMIT 51;
-- q rare, last day
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND id >= hub_uuid7_floor(now() - interval '1 day') AND (url ILIKE '%user9999999@%' OR body ILIKE '%user9999999@%' OR response_body ILIKE '%user9999999@%') ORDER BY id DESC LIMIT 51;
-- q rare, no range (whole tenant: 5M rows)
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND (url ILIKE '%user1234567@%' OR body ILIKE '%user1234567@%' OR response_body ILIKE '%user1234567@%') ORDER BY id DESC LIMIT 51;
-- deep page: cursor in the middle
EXPLAIN (ANALYZE, TIMING OFF) SELECT id, integration_id, direction, method, url, path, response_status, status, response_time_ms, body_size, response_size, correlation_id, source_ip, error_message, retry_of, attempt, timed_out, created_at FROM api_request_logs WHERE tenant_id = '00000000-0000-0000-0000-000000000001' AND id < hub_uuid7_floor(now() - interval '15 days') ORDER BY id DESC LIMIT 51;
