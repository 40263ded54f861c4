-- Gatehouse ledger, schema version 10: standing grants — a person's "approve, and allow similar":
-- allow rules (JSON, in the policy file's terms) with a scope and an expiry, made from one paused
-- action; and their revocations. Both are chained records (`grant`, `grant_revoked`). A grant is
-- in force from its row until its expiry or its revocation, whichever comes first.

CREATE TABLE grants (
    seq            INTEGER PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 64),
    created_at_ms  INTEGER NOT NULL,
    -- NULL: until revoked.
    expires_at_ms  INTEGER,
    -- JSON: {"kind":"session","session_id":..} | {"kind":"project","root":..} | {"kind":"everywhere"}.
    scope          TEXT    NOT NULL,
    -- JSON array of rule objects (no id, effect or priority: a grant's rules only allow).
    rules          TEXT    NOT NULL,
    -- JSON array: the hosts the action it was made from reached (it allows no other).
    hosts          TEXT    NOT NULL,
    -- The paused action it was made from (NULL for one made from a suggestion of several).
    action_id      TEXT    REFERENCES actions (id),
    created_by     TEXT    NOT NULL CHECK (length(created_by) BETWEEN 1 AND 256),
    note           TEXT
);
CREATE TABLE grant_revocations (
    seq            INTEGER PRIMARY KEY,
    grant_id       TEXT    NOT NULL UNIQUE REFERENCES grants (id),
    revoked_at_ms  INTEGER NOT NULL,
    revoked_by     TEXT    NOT NULL CHECK (length(revoked_by) BETWEEN 1 AND 256)
);
CREATE TRIGGER grants_append_only_update BEFORE UPDATE ON grants
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER grants_append_only_delete BEFORE DELETE ON grants
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER grant_revocations_append_only_update BEFORE UPDATE ON grant_revocations
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER grant_revocations_append_only_delete BEFORE DELETE ON grant_revocations
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
-- Actions a grant allowed name it as their rule (`grant:ID`): counted for the overview.
CREATE INDEX actions_by_rule ON actions (rule_id) WHERE rule_id LIKE 'grant:%';
