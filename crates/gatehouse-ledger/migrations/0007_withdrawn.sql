-- Gatehouse ledger, schema version 7: a withdrawn action is its own state. An agent that will
-- not run a paused action (an MCP client cancelled the call, or left while it was paused)
-- withdraws it; until now the withdrawal was recorded as a deny `decided_by = 'error'`, which
-- reads as a failure of Gatehouse. A decision's `decided_by` may now be 'withdrawn' (always with
-- the verdict 'reject': the action never runs). SQLite cannot change a CHECK constraint in place,
-- so the decisions table is rebuilt with every row as it was (rowids too; the chain hashes the
-- rows' values, which do not change) and its triggers are recreated. Withdrawals recorded before
-- this schema stay as they were (`error`, with the note `withdrawn by the agent: …`).

CREATE TABLE decisions_v7 (
    action_id      TEXT    PRIMARY KEY REFERENCES actions (id),
    decided_at_ms  INTEGER NOT NULL,
    verdict        TEXT    NOT NULL CHECK (verdict IN ('allow', 'reject')),
    decided_by     TEXT    NOT NULL CHECK (decided_by IN ('human', 'timeout', 'error', 'withdrawn')),
    note           TEXT,
    action_hash    BLOB    CHECK (action_hash IS NULL OR length(action_hash) = 32),
    CHECK (decided_by <> 'withdrawn' OR verdict = 'reject')
);
INSERT INTO decisions_v7 (rowid, action_id, decided_at_ms, verdict, decided_by, note, action_hash)
    SELECT rowid, action_id, decided_at_ms, verdict, decided_by, note, action_hash
    FROM decisions ORDER BY rowid;
DROP TABLE decisions;
ALTER TABLE decisions_v7 RENAME TO decisions;

CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
-- A decision only lands on a paused action.
CREATE TRIGGER decisions_only_for_paused BEFORE INSERT ON decisions
    WHEN (SELECT verdict FROM actions WHERE id = NEW.action_id) IS NOT 'pending'
    BEGIN SELECT RAISE(ABORT, 'only a paused action can be decided'); END;
-- A decision naming an action hash lands only on the action with that hash.
CREATE TRIGGER decisions_bound_to_action_hash BEFORE INSERT ON decisions
    WHEN NEW.action_hash IS NOT NULL
     AND (SELECT action_hash FROM actions WHERE id = NEW.action_id) IS NOT NULL
     AND (SELECT action_hash FROM actions WHERE id = NEW.action_id) IS NOT NEW.action_hash
    BEGIN SELECT RAISE(ABORT, 'the decision names another action hash'); END;
