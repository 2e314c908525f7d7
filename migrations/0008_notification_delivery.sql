-- Issue 14: every webhook delivery of a notification (docs/notifications.md),
-- one row per receiver and event: how many attempts, the last HTTP status or
-- error, and the outcome. Receivers are named, never addressed: the URL (a
-- Slack webhook URL is itself a secret) and the secrets are not stored.
-- (receiver, event_id) is unique: an event reported twice is sent once.
CREATE TABLE notification_delivery (
  id              bigserial PRIMARY KEY,
  receiver        text NOT NULL CHECK (length(receiver) BETWEEN 1 AND 200),
  event_id        text NOT NULL CHECK (length(event_id) BETWEEN 1 AND 400),
  event_type      text NOT NULL CHECK (event_type ~ '^io\.pairshift\.upgrade\.[a-z.]+$'),
  upgrade_id      text NOT NULL CHECK (length(upgrade_id) BETWEEN 1 AND 253),
  -- The operator process that queued it: a restarted one marks its own
  -- leftovers dropped.
  owner           text NOT NULL CHECK (length(owner) BETWEEN 1 AND 300),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_status     integer CHECK (last_status BETWEEN 100 AND 599),
  last_error      text CHECK (length(last_error) <= 1000),
  outcome         text NOT NULL DEFAULT 'pending'
                  CHECK (outcome IN ('pending', 'delivered', 'gave-up', 'dropped')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  finished_at     timestamptz,
  CONSTRAINT notification_delivery_once UNIQUE (receiver, event_id),
  CONSTRAINT notification_delivery_finished CHECK ((outcome = 'pending') = (finished_at IS NULL))
);
CREATE INDEX notification_delivery_upgrade_idx ON notification_delivery (upgrade_id, created_at);
CREATE INDEX notification_delivery_pending_idx ON notification_delivery (created_at)
  WHERE outcome = 'pending';
