-- The fence table of fencelock/postgres (docs/fencing.md), for migration tools. Same as ensureFenceTable().
CREATE TABLE IF NOT EXISTS fencelock_fences (
  name       text        PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 1024),
  max_token  bigint      NOT NULL CHECK (max_token >= 1),
  updated_at timestamptz NOT NULL DEFAULT now()
);
