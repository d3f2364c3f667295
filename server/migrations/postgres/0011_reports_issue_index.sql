-- One index fewer to keep on every report written (PostgreSQL flavour).

-- reports_issue (issue_id) is the leading column of reports_issue_received
-- (issue_id, received_at), which answers every lookup it answered. Each
-- report inserted, processed or moved to another issue wrote both.
DROP INDEX reports_issue;
