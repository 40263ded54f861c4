-- Gatehouse ledger, schema version 1.
-- Facts are appended, never rewritten: every table here refuses UPDATE and DELETE.
-- The current state of an action is derived: its row, its latest score, its one decision.

CREATE TABLE actions (
    seq            INTEGER PRIMARY KEY,          -- insertion order
    id             TEXT    NOT NULL UNIQUE,
    created_at_ms  INTEGER NOT NULL,
    tool           TEXT    NOT NULL,
    input          TEXT    NOT NULL,             -- JSON object
    session_id     TEXT,
    agent          TEXT,
    tool_use_id    TEXT,
    cwd            TEXT,
    context        TEXT,                         -- JSON object or NULL
    verdict        TEXT    NOT NULL CHECK (verdict IN ('allow', 'reject', 'pending')),
    decided_by     TEXT    NOT NULL CHECK (decided_by IN ('rule', 'default', 'error')),
    rule_id        TEXT,
    reason         TEXT    NOT NULL,
    deadline_ms    INTEGER,                      -- set when verdict = 'pending'
    tier2_status   TEXT    NOT NULL CHECK (tier2_status IN ('pending', 'dropped', 'disabled')),
    CHECK ((verdict = 'pending') = (deadline_ms IS NOT NULL))
);
-- A re-sent check (same session and tool_use_id) re-attaches to its action.
CREATE UNIQUE INDEX actions_by_tool_use ON actions (session_id, tool_use_id)
    WHERE session_id IS NOT NULL AND tool_use_id IS NOT NULL;
CREATE INDEX actions_paused ON actions (seq) WHERE verdict = 'pending';

CREATE TABLE scores (
    seq            INTEGER PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    recorded_at_ms INTEGER NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('scored', 'error', 'timeout', 'dropped')),
    score          REAL    CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
    label          TEXT,
    model          TEXT,
    explanation    TEXT,
    error          TEXT,
    disagreement   INTEGER NOT NULL DEFAULT 0 CHECK (disagreement IN (0, 1)),
    CHECK ((status = 'scored') = (score IS NOT NULL))
);
CREATE INDEX scores_by_action ON scores (action_id, seq);
CREATE INDEX scores_disagreements ON scores (seq) WHERE disagreement = 1;

-- At most one decision per action: the primary key is the "exactly one decision" invariant.
CREATE TABLE decisions (
    action_id      TEXT    PRIMARY KEY REFERENCES actions (id),
    decided_at_ms  INTEGER NOT NULL,
    verdict        TEXT    NOT NULL CHECK (verdict IN ('allow', 'reject')),
    decided_by     TEXT    NOT NULL CHECK (decided_by IN ('human', 'timeout', 'error')),
    note           TEXT
);

CREATE TRIGGER actions_append_only_update BEFORE UPDATE ON actions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER actions_append_only_delete BEFORE DELETE ON actions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER scores_append_only_update BEFORE UPDATE ON scores
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER scores_append_only_delete BEFORE DELETE ON scores
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER decisions_append_only_update BEFORE UPDATE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER decisions_append_only_delete BEFORE DELETE ON decisions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
-- A decision only lands on a paused action.
CREATE TRIGGER decisions_only_for_paused BEFORE INSERT ON decisions
    WHEN (SELECT verdict FROM actions WHERE id = NEW.action_id) IS NOT 'pending'
    BEGIN SELECT RAISE(ABORT, 'only a paused action can be decided'); END;
