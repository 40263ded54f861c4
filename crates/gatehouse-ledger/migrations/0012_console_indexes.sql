-- Ledger schema version 12: indexes for the dashboard console's reads (the ledger browser's time
-- range and session filters, the overview's window, a session's timeline). Indexes only: no
-- record changes, nothing for the chain to cover.
CREATE INDEX actions_by_time ON actions (created_at_ms);
CREATE INDEX actions_by_session ON actions (session_id, seq) WHERE session_id IS NOT NULL;
