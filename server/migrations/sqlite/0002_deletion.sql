-- Crypto-shredding and resolution details (SQLite flavour).

-- Each report's data key, wrapped by the master key. No foreign key to reports:
-- the key is stored before the report's blobs and row, and destroyed before them.
CREATE TABLE report_keys (
    report_id TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX report_keys_created ON report_keys (created_at);

-- Reports of a resolved issue that were counted and dropped (older than the
-- resolved-in version, or received before the resolution).
ALTER TABLE issues ADD COLUMN dropped_count BIGINT NOT NULL DEFAULT 0;
-- The product the resolved-in version applies to (NULL: any product).
ALTER TABLE issues ADD COLUMN resolved_product TEXT;
