-- Gatehouse ledger, schema version 2: the hash chain and signed checkpoints.
-- Every record (action, score, decision) gets one chain entry, in commit order; each entry
-- carries the hash of the entry before it (docs/SECURITY.md, "The hash chain", defines the
-- encoding). Records written before this migration are chained by it, in time order.

CREATE TABLE chain (
    seq        INTEGER PRIMARY KEY,                 -- 1, 2, 3, ... with no gaps
    kind       TEXT    NOT NULL CHECK (kind IN ('action', 'score', 'decision')),
    record     INTEGER NOT NULL,                    -- actions.seq, scores.seq, or the decided action's actions.seq
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);

-- A signed statement "the chain had `chain_seq` entries and its head hash was `head_hash`".
CREATE TABLE checkpoints (
    seq            INTEGER PRIMARY KEY,
    chain_seq      INTEGER NOT NULL,
    head_hash      BLOB    NOT NULL CHECK (length(head_hash) = 32),
    created_at_ms  INTEGER NOT NULL,
    public_key     BLOB    NOT NULL CHECK (length(public_key) = 32),
    signature      BLOB    NOT NULL CHECK (length(signature) = 64)
);

CREATE TRIGGER chain_append_only_update BEFORE UPDATE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER chain_append_only_delete BEFORE DELETE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
-- No index on (kind, record): it would cost every commit another page; `verify` finds a
-- record that is not in the chain, or one chained twice, from the walk itself.
