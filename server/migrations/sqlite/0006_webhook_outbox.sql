-- Webhook outbox (SQLite flavour).

-- One row per event and webhook, written in the transaction that made the event
-- (an issue created, an issue regressed, an issue's hourly count over a spike
-- threshold), so no event is lost or invented; delivered by the webhook
-- deliverer, which claims rows as workers claim jobs. `hook` is the SHA-256 of
-- the webhook's URL and product (a URL may hold a secret token; it is not
-- stored). `body` is the exact JSON sent, signed at delivery. `dedupe_key` is
-- set for spikes only: one spike per webhook, issue and hour. State: pending,
-- sending, delivered, failed (attempts used up; kept to be seen). Delivered rows
-- are removed after a day, failed ones after a week.
CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    dedupe_key TEXT UNIQUE,
    hook TEXT NOT NULL,
    event TEXT NOT NULL,
    issue_id BIGINT NOT NULL REFERENCES issues (id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    not_before BIGINT NOT NULL,
    claimed_at BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    done_at BIGINT
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, not_before);
CREATE INDEX webhook_outbox_issue ON webhook_outbox (issue_id);
-- Reports of an issue in the last hour (the spike count), without reading all of
-- the issue's reports.
CREATE INDEX reports_issue_received ON reports (issue_id, received_at);
