-- Gatehouse ledger, schema version 13: the confinement applied to each action whose rule
-- required one (`confine = "PROFILE"`), written and chained in the transaction that records
-- the action: the profile, a digest of the profile as resolved then (a later change of the
-- profile shows as another digest), what it allowed in one line, and whether it was applied or
-- the client could not confine the command so the rule's fallback verdict applied instead.
CREATE TABLE action_confinement (
    seq            INTEGER PRIMARY KEY,
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    profile        TEXT    NOT NULL CHECK (length(profile) BETWEEN 1 AND 256),
    profile_digest BLOB    CHECK (profile_digest IS NULL OR length(profile_digest) = 32),
    summary        TEXT,
    applied        TEXT    NOT NULL CHECK (applied IN ('confined', 'fallback')),
    fallback       TEXT    CHECK ((applied = 'fallback') = (fallback IS NOT NULL)),
    recorded_at_ms INTEGER NOT NULL
);
CREATE TRIGGER action_confinement_append_only_update BEFORE UPDATE ON action_confinement
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER action_confinement_append_only_delete BEFORE DELETE ON action_confinement
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
