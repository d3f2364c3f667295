-- Search answers newest first. Each filter's index carries the receive time, so
-- the newest matching reports are read in order rather than all read and sorted,
-- and the issue, so the issues with a matching report are found from the index
-- alone. (They replace the one-column indexes of 0005.)
DROP INDEX reports_product_received;
DROP INDEX reports_version_key;
DROP INDEX reports_os;
DROP INDEX reports_crash_reason;
DROP INDEX reports_crash_module;
CREATE INDEX reports_search_product ON reports (product, received_at, issue_id);
CREATE INDEX reports_search_version ON reports (version, received_at, issue_id);
CREATE INDEX reports_search_version_key ON reports (version_key, issue_id);
CREATE INDEX reports_search_product_version_key ON reports (product, version_key, issue_id);
CREATE INDEX reports_search_os ON reports (os, received_at, issue_id);
CREATE INDEX reports_search_os_version ON reports (os_version, received_at, issue_id);
CREATE INDEX reports_search_crash_reason ON reports (crash_reason, received_at, issue_id);
CREATE INDEX reports_search_crash_module ON reports (crash_module, received_at, issue_id);
