-- Mayday index, SQLite flavour. Times are Unix milliseconds.
CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    signature_hash TEXT NOT NULL UNIQUE,
    signature TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    resolved_in_version TEXT,
    resolved_at BIGINT,
    first_seen BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    report_count BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX issues_last_seen ON issues (last_seen);
CREATE INDEX issues_count ON issues (report_count);

CREATE TABLE reports (
    id TEXT PRIMARY KEY,
    issue_id BIGINT REFERENCES issues (id),
    received_at BIGINT NOT NULL,
    processed_at BIGINT,
    product TEXT,
    version TEXT,
    os TEXT,
    os_version TEXT,
    cpu_arch TEXT,
    crash_reason TEXT,
    crash_address TEXT,
    state TEXT NOT NULL,
    failure TEXT,
    deletion_token_hash TEXT NOT NULL,
    raw_key TEXT NOT NULL,
    meta_key TEXT NOT NULL
);
CREATE INDEX reports_issue ON reports (issue_id);
CREATE INDEX reports_received ON reports (received_at);

CREATE TABLE report_missing_symbols (
    report_id TEXT NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    debug_file TEXT NOT NULL,
    debug_id TEXT NOT NULL,
    PRIMARY KEY (report_id, debug_file, debug_id)
);
CREATE INDEX missing_symbols_module ON report_missing_symbols (debug_file, debug_id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    report_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    claimed_at BIGINT,
    claimed_by TEXT,
    last_error TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX jobs_pending ON jobs (state, not_before);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);
CREATE INDEX audit_at ON audit_log (at);
