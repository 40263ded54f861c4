-- Gatehouse ledger, schema version 9: named approvers (users and their roles), each person's
-- approval or denial of a paused action (who decided, and the first of two approvals),
-- versioned policy (who pushed which text when), and which pushed version decided each action.
-- All are chained records, append-only.

-- A user's life, as events: `add` (with the role and the SHA-256 of the person's token; the
-- token itself is shown once and never stored) and `remove`. The current users are the fold.
CREATE TABLE users (
    seq            INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    event          TEXT    NOT NULL CHECK (event IN ('add', 'remove')),
    role           TEXT    CHECK (role IS NULL OR role IN ('approver', 'reviewer', 'admin')),
    token_hash     BLOB    CHECK (token_hash IS NULL OR length(token_hash) = 32),
    -- Who added or removed the user (`owner` for the data directory's approver token).
    actor          TEXT    NOT NULL,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX users_by_name ON users (name, seq);
CREATE TRIGGER users_append_only_update BEFORE UPDATE ON users
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER users_append_only_delete BEFORE DELETE ON users
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- One person's answer on a paused action. A denial decides at once; approvals decide when as
-- many different people approved as the rule requires (`approvals = 2`). The decision itself
-- stays in `decisions`, appended in the same transaction as the approval that completes it.
CREATE TABLE approvals (
    seq            INTEGER PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    approver       TEXT    NOT NULL CHECK (length(approver) BETWEEN 1 AND 64),
    decision       TEXT    NOT NULL CHECK (decision IN ('approve', 'deny')),
    action_hash    BLOB    CHECK (action_hash IS NULL OR length(action_hash) = 32),
    note           TEXT,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX approvals_by_action ON approvals (action_id, seq);
-- A person's approval counts once.
CREATE UNIQUE INDEX approvals_once_per_person ON approvals (action_id, approver)
    WHERE decision = 'approve';
CREATE TRIGGER approvals_append_only_update BEFORE UPDATE ON approvals
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER approvals_append_only_delete BEFORE DELETE ON approvals
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The policy's versions, 1, 2, 3...: the whole text each time (a rollback pushes an old text
-- again as a new version, with `rollback_of` naming it).
CREATE TABLE policy_versions (
    version        INTEGER PRIMARY KEY,
    text           TEXT    NOT NULL,
    sha256         BLOB    NOT NULL CHECK (length(sha256) = 32),
    pushed_by      TEXT    NOT NULL,
    rollback_of    INTEGER,
    recorded_at_ms INTEGER NOT NULL
);
CREATE TRIGGER policy_versions_append_only_update BEFORE UPDATE ON policy_versions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER policy_versions_append_only_delete BEFORE DELETE ON policy_versions
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- The pushed policy version that decided an action, written (and chained) in the transaction
-- that records the action, while a pushed version is in force. An action without a row was
-- decided by the daemon's policy file or built-in policy.
CREATE TABLE action_policy (
    seq            INTEGER PRIMARY KEY,
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    version        INTEGER NOT NULL REFERENCES policy_versions (version),
    recorded_at_ms INTEGER NOT NULL
);
CREATE TRIGGER action_policy_append_only_update BEFORE UPDATE ON action_policy
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER action_policy_append_only_delete BEFORE DELETE ON action_policy
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
