-- Fewer b-tree writes for every report (SQLite flavour).

-- A report's OS, OS version, crash reason and crash module are NULL until it
-- is processed, and a search matches them only by equality, which no NULL
-- meets: their indexes hold only the reports that have them. An upload then
-- writes none of the four, and its processing inserts into them rather than
-- moving an entry out of the NULLs.
DROP INDEX reports_search_os;
DROP INDEX reports_search_os_version;
DROP INDEX reports_search_crash_reason;
DROP INDEX reports_search_crash_module;
CREATE INDEX reports_search_os ON reports (os, received_at, issue_id)
    WHERE os IS NOT NULL;
CREATE INDEX reports_search_os_version ON reports (os_version, received_at, issue_id)
    WHERE os_version IS NOT NULL;
CREATE INDEX reports_search_crash_reason ON reports (crash_reason, received_at, issue_id)
    WHERE crash_reason IS NOT NULL;
CREATE INDEX reports_search_crash_module ON reports (crash_module, received_at, issue_id)
    WHERE crash_module IS NOT NULL;

-- The missing symbols' and the annotation tags' rows are their primary keys:
-- stored as that key's b-tree (WITHOUT ROWID), not as a rowid table beside it.
-- (PostgreSQL keeps a table and its primary key index apart either way.)
CREATE TABLE report_missing_symbols_keyed (
    report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    debug_file TEXT NOT NULL,
    debug_id TEXT NOT NULL,
    PRIMARY KEY (report_id, debug_file, debug_id)
) WITHOUT ROWID;
INSERT INTO report_missing_symbols_keyed (report_id, debug_file, debug_id)
    SELECT report_id, debug_file, debug_id FROM report_missing_symbols;
DROP TABLE report_missing_symbols;
ALTER TABLE report_missing_symbols_keyed RENAME TO report_missing_symbols;
CREATE INDEX missing_symbols_module ON report_missing_symbols (debug_file, debug_id);

CREATE TABLE report_annotations_keyed (
    tag TEXT NOT NULL,
    report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, report_id)
) WITHOUT ROWID;
INSERT INTO report_annotations_keyed (tag, report_id)
    SELECT tag, report_id FROM report_annotations;
DROP TABLE report_annotations;
ALTER TABLE report_annotations_keyed RENAME TO report_annotations;
CREATE INDEX report_annotations_report ON report_annotations (report_id);
