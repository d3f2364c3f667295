-- Claims given back unrun (SQLite flavour).

-- A worker told to stop gives back the job its last finish claimed
-- (Index::release_job). The claim still counts in `attempts`, which fences
-- every earlier claim's holder out; `released` counts such claims, so that
-- only the claims that ran the job count against max_attempts.
ALTER TABLE jobs ADD COLUMN released BIGINT NOT NULL DEFAULT 0;
