-- Stack keys (PostgreSQL flavour).

-- Each report's stack key, wrapped by the master key as its data key is: the
-- raw object seals the dump's stack memory under it, apart from the rest of the
-- dump. Destroying it (once the report is fully symbolicated, in the
-- transaction that records it; with the report's data key when it is deleted)
-- makes the stack memory unreadable in every copy of the object. No foreign
-- key to reports, as report_keys.
CREATE TABLE report_stack_keys (
    report_id TEXT PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX report_stack_keys_created ON report_stack_keys (created_at);
