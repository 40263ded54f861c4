-- Gatehouse ledger, schema version 3: action hashes (what an approval is bound to), the peer
-- credentials of Unix-socket checks, the observe-mode verdict, and reviewers' labels.
-- Rows written before this migration keep NULL in the new columns, and chain.rs hashes them
-- exactly as before (the new columns enter a record's hash only when one of them is set).

-- SHA-256 of the action's canonical JSON (src/action_hash.rs); NULL before schema 3.
ALTER TABLE actions ADD COLUMN action_hash BLOB CHECK (action_hash IS NULL OR length(action_hash) = 32);
-- The connection's peer credentials when the check came over the Unix socket; NULL over TCP.
ALTER TABLE actions ADD COLUMN peer_uid INTEGER;
ALTER TABLE actions ADD COLUMN peer_pid INTEGER;
-- Observe mode: the verdict is allow, and this is what the rules would have decided.
ALTER TABLE actions ADD COLUMN observed_effect TEXT CHECK (observed_effect IN ('reject', 'pause'));

-- The action hash a person approved or denied; NULL for timeout and error decisions.
ALTER TABLE decisions ADD COLUMN action_hash BLOB CHECK (action_hash IS NULL OR length(action_hash) = 32);
-- A decision naming an action hash lands only on the action with that hash (the writer checks
-- it first and answers a mismatch; this holds even for a writer that forgot to).
CREATE TRIGGER decisions_bound_to_action_hash BEFORE INSERT ON decisions
    WHEN NEW.action_hash IS NOT NULL
     AND (SELECT action_hash FROM actions WHERE id = NEW.action_id) IS NOT NULL
     AND (SELECT action_hash FROM actions WHERE id = NEW.action_id) IS NOT NEW.action_hash
    BEGIN SELECT RAISE(ABORT, 'the decision names another action hash'); END;

-- A reviewer's ground truth about an action; an action may be labelled again (latest counts).
CREATE TABLE labels (
    seq            INTEGER PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    label          TEXT    NOT NULL CHECK (label IN ('malicious', 'benign')),
    reviewer       TEXT,
    note           TEXT,
    recorded_at_ms INTEGER NOT NULL
);
CREATE INDEX labels_by_action ON labels (action_id, seq);
CREATE TRIGGER labels_append_only_update BEFORE UPDATE ON labels
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER labels_append_only_delete BEFORE DELETE ON labels
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;

-- Labels are chained records: the chain's `kind` CHECK must allow 'label'. SQLite cannot alter
-- a CHECK, so the chain table is rebuilt with every entry as it was (same seq, hashes), and its
-- triggers recreated. Dropping a table does not fire its triggers (they go first).
CREATE TABLE chain_v3 (
    seq        INTEGER PRIMARY KEY,                 -- 1, 2, 3, ... with no gaps
    kind       TEXT    NOT NULL CHECK (kind IN ('action', 'score', 'decision', 'label')),
    record     INTEGER NOT NULL,                    -- actions.seq, scores.seq, the decided action's actions.seq, labels.seq
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO chain_v3 (seq, kind, record, prev_hash, hash)
    SELECT seq, kind, record, prev_hash, hash FROM chain ORDER BY seq;
DROP TABLE chain;
ALTER TABLE chain_v3 RENAME TO chain;
CREATE TRIGGER chain_append_only_update BEFORE UPDATE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER chain_append_only_delete BEFORE DELETE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
