-- Fewer b-tree writes for every report (PostgreSQL flavour).

-- A report's OS, OS version, crash reason and crash module are NULL until it
-- is processed, and a search matches them only by equality, which no NULL
-- meets: their indexes hold only the reports that have them. An upload then
-- writes none of the four, and its processing inserts into them rather than
-- moving an entry out of the NULLs. (SQLite's 0012 also stores the missing
-- symbols and annotation tags WITHOUT ROWID, which PostgreSQL has no use for.)
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
