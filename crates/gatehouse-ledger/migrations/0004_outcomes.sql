-- Gatehouse ledger, schema version 4: outcomes — what happened to a tool call after the agent's
-- host ran it, as its hook reports it (Claude Code / Codex PostToolUse, Gemini AfterTool, Cursor
-- after*). Never the tool's output: whether it ran, its exit status or error, its duration, and
-- the sandbox's denial lines.

CREATE TABLE outcomes (
    seq            INTEGER PRIMARY KEY,
    -- The checked action this outcome follows; NULL when no check was ever made for the call.
    action_id      TEXT    REFERENCES actions (id),
    session_id     TEXT,
    tool_use_id    TEXT,
    tool           TEXT    NOT NULL,
    agent          TEXT,
    cwd            TEXT,
    ran            INTEGER NOT NULL CHECK (ran IN (0, 1)),
    exit_code      INTEGER,
    error          TEXT,
    duration_ms    INTEGER,
    -- JSON array of the sandbox's `gatehouse sandbox: denied ...` lines (NULL when none).
    findings       TEXT,
    -- Evidence of a call that ran around the firewall: `unchecked` (no action) or
    -- `not_allowed` (its action's verdict was not allow when the outcome came).
    flag           TEXT    CHECK (flag IS NULL OR flag IN ('unchecked', 'not_allowed')),
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX outcomes_by_action ON outcomes (action_id, seq);
CREATE INDEX outcomes_flagged ON outcomes (seq) WHERE flag IS NOT NULL;
CREATE TRIGGER outcomes_append_only_update BEFORE UPDATE ON outcomes
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER outcomes_append_only_delete BEFORE DELETE ON outcomes
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Outcomes are chained records: the chain's `kind` CHECK must allow 'outcome'. As in schema 3,
-- the chain table is rebuilt with every entry as it was, and its triggers recreated.
CREATE TABLE chain_v4 (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('action', 'score', 'decision', 'label', 'outcome')),
    record     INTEGER NOT NULL,
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO chain_v4 (seq, kind, record, prev_hash, hash)
    SELECT seq, kind, record, prev_hash, hash FROM chain ORDER BY seq;
DROP TABLE chain;
ALTER TABLE chain_v4 RENAME TO chain;
CREATE TRIGGER chain_append_only_update BEFORE UPDATE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER chain_append_only_delete BEFORE DELETE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
