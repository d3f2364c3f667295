-- Daily counts, crash sites and report search (PostgreSQL flavour).

-- How many crashes each issue had per day (UTC days since 1970), product and
-- version: reports received with a dump, and occurrences counted from a crash-site
-- summary without one. Kept when the reports are deleted (resolve, retention):
-- the issue's history outlives its reports. '' stands for an unknown product or
-- version.
CREATE TABLE issue_daily (
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    day BIGINT NOT NULL,
    product TEXT NOT NULL,
    version TEXT NOT NULL,
    reports BIGINT NOT NULL DEFAULT 0,
    counted BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (issue_id, day, product, version)
);
CREATE INDEX issue_daily_day ON issue_daily (day);
INSERT INTO issue_daily (issue_id, day, product, version, reports)
    SELECT issue_id, received_at / 86400000, COALESCE(product, ''), COALESCE(version, ''),
           COUNT(*)
    FROM reports WHERE issue_id IS NOT NULL
    GROUP BY issue_id, received_at / 86400000, COALESCE(product, ''), COALESCE(version, '');

-- Which issue each crash site (a key computed from a dump without symbols, see
-- mayday_report::crash_site) belongs to, learned from processed reports. A code
-- address, nothing personal: it belongs to the issue and outlives its reports.
-- `ambiguous` (0 or 1): reports of the key were grouped into more than one issue
-- (one crashing instruction reached from different code): summaries of it always
-- get their dump asked for.
CREATE TABLE crash_sites (
    site_key TEXT PRIMARY KEY,
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    ambiguous BIGINT NOT NULL DEFAULT 0,
    recorded_at BIGINT NOT NULL
);
CREATE INDEX crash_sites_issue ON crash_sites (issue_id);

-- The crash site of a processed report.
ALTER TABLE reports ADD COLUMN crash_site TEXT;
-- Occurrences counted from summaries, without a dump.
ALTER TABLE issues ADD COLUMN counted_count BIGINT NOT NULL DEFAULT 0;

-- Report search: the crashing module, a version that sorts as versions do
-- (crate::version::sort_key; NULL when it does not compare), and keyed tags of
-- the (scrubbed) annotations: `annotation key = value` is searched by its tag,
-- so no annotation text is kept in the index.
ALTER TABLE reports ADD COLUMN crash_module TEXT;
ALTER TABLE reports ADD COLUMN version_key TEXT;
CREATE INDEX reports_product_received ON reports (product, received_at);
CREATE INDEX reports_version_key ON reports (version_key);
CREATE INDEX reports_os ON reports (os, os_version);
CREATE INDEX reports_crash_reason ON reports (crash_reason);
CREATE INDEX reports_crash_module ON reports (crash_module);
CREATE TABLE report_annotations (
    tag TEXT NOT NULL,
    report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, report_id)
);
CREATE INDEX report_annotations_report ON report_annotations (report_id);
