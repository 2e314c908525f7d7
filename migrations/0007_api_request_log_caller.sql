-- Issue 6: api_request_log names the caller in its own column (the token's
-- name from the configuration, never the token), so "what did this token do"
-- is a query, not a search through summaries. Requests with methods outside
-- the usual seven (PROPFIND, a made-up FOO) are recorded too: any HTTP method
-- token (RFC 9110 tchar) of up to 32 characters is accepted.
ALTER TABLE api_request_log ADD COLUMN token_name text
  CONSTRAINT api_request_log_token_name_check CHECK (length(token_name) <= 200);
ALTER TABLE api_request_log DROP CONSTRAINT api_request_log_method_check;
ALTER TABLE api_request_log ADD CONSTRAINT api_request_log_method_check
  CHECK (method ~ '^[!#$%&''*+.^_`|~0-9A-Za-z-]{1,32}$');
CREATE INDEX api_request_log_token_idx ON api_request_log (token_name, at DESC)
  WHERE token_name IS NOT NULL;
