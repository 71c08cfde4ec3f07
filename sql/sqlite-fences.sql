-- The fence table of fencelock/sqlite (docs/fencing.md), for migration tools. Same as ensureFenceTable().
CREATE TABLE IF NOT EXISTS fencelock_fences (
  name       TEXT    PRIMARY KEY NOT NULL CHECK (length(CAST(name AS BLOB)) BETWEEN 1 AND 1024),
  max_token  INTEGER NOT NULL CHECK (typeof(max_token) = 'integer' AND max_token >= 1),
  updated_at INTEGER NOT NULL
);
