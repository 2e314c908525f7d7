-- Task list 1.1.9 / 5.2.3: every REST request and its response. The
-- summaries are written already redacted (no passwords, tokens or key
-- material) and bounded in size. upgrade_id is deliberately not a foreign
-- key: requests naming unknown upgrades (404s) are logged too, and the log
-- outlives deleted tasks.
CREATE TABLE api_request_log (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at                timestamptz NOT NULL DEFAULT now(),
  request_id        text,
  method            text NOT NULL
    CONSTRAINT api_request_log_method_check
      CHECK (method IN ('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS')),
  path              text NOT NULL CONSTRAINT api_request_log_path_check CHECK (path LIKE '/%'),
  status            smallint NOT NULL
    CONSTRAINT api_request_log_status_check CHECK (status BETWEEN 100 AND 599),
  duration_ms       integer NOT NULL
    CONSTRAINT api_request_log_duration_ms_check CHECK (duration_ms >= 0),
  client_ip         inet,
  upgrade_id        text,
  request_summary   text
    CONSTRAINT api_request_log_request_summary_check CHECK (length(request_summary) <= 4096),
  response_summary  text
    CONSTRAINT api_request_log_response_summary_check CHECK (length(response_summary) <= 4096)
);
CREATE INDEX api_request_log_at_idx ON api_request_log (at DESC, id DESC);
CREATE INDEX api_request_log_upgrade_idx ON api_request_log (upgrade_id, at DESC)
  WHERE upgrade_id IS NOT NULL;
