-- Standalone mode keeps the resources a cluster would keep (HAPair,
-- UpgradeRequest) in the operator's own store, with a generation that moves
-- when the spec changes and a resource_version that moves on every write
-- (optimistic concurrency, as the Kubernetes API server does).
CREATE TABLE resource (
  kind              text NOT NULL CONSTRAINT resource_kind_check CHECK (kind IN ('HAPair', 'UpgradeRequest')),
  name              text NOT NULL
    CONSTRAINT resource_name_check CHECK (name ~ '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' AND length(name) <= 253),
  uid               uuid NOT NULL UNIQUE,
  generation        bigint NOT NULL DEFAULT 1 CONSTRAINT resource_generation_check CHECK (generation >= 1),
  resource_version  bigint NOT NULL DEFAULT 1 CONSTRAINT resource_version_check CHECK (resource_version >= 1),
  spec              jsonb NOT NULL CONSTRAINT resource_spec_check CHECK (jsonb_typeof(spec) = 'object'),
  status            jsonb,
  metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- where the resource came from: a manifest file path, or 'api'
  origin            text NOT NULL DEFAULT 'api',
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (kind, name)
);
CREATE INDEX resource_kind_created_idx ON resource (kind, created_at DESC);

-- The reconciler's memory of one upgrade that cannot be read off the nodes:
-- the state machine's context and the journal facts (src/reconciler/journal.ts),
-- written in the same transaction as each state transition so an operator
-- killed at any instant restarts from a consistent point.
CREATE TABLE upgrade_journal (
  upgrade_id   text PRIMARY KEY REFERENCES upgrade_task (upgrade_id) ON DELETE CASCADE,
  context      jsonb NOT NULL CONSTRAINT upgrade_journal_context_check CHECK (jsonb_typeof(context) = 'object'),
  facts        jsonb NOT NULL CONSTRAINT upgrade_journal_facts_check CHECK (jsonb_typeof(facts) = 'object'),
  updated_at   timestamptz NOT NULL DEFAULT now()
);
