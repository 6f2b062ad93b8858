-- The baseline: an event log as one PostgreSQL table, the way event stores
-- on PostgreSQL keep one (global order by position, optimistic concurrency
-- by the unique (stream, version)).
CREATE TABLE events (
  position    bigserial   PRIMARY KEY,
  stream      text        NOT NULL,
  version     bigint      NOT NULL,
  event_id    uuid        NOT NULL DEFAULT gen_random_uuid(),
  event_type  text        NOT NULL,
  payload     jsonb       NOT NULL,
  metadata    jsonb       NOT NULL DEFAULT '{}',
  recorded_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (stream, version)
);
