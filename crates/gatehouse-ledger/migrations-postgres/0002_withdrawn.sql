-- PostgreSQL ledger, schema version 2: as SQLite's 0007_withdrawn.sql, a decision's
-- `decided_by` may be 'withdrawn' (the agent withdrew a paused action; always a reject).
ALTER TABLE decisions DROP CONSTRAINT IF EXISTS decisions_decided_by_check;
ALTER TABLE decisions ADD CONSTRAINT decisions_decided_by_check
    CHECK (decided_by IN ('human', 'timeout', 'error', 'withdrawn'));
ALTER TABLE decisions ADD CONSTRAINT decisions_withdrawn_rejects
    CHECK (decided_by <> 'withdrawn' OR verdict = 'reject');
