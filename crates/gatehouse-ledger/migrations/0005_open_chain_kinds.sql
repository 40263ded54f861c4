-- Gatehouse ledger, schema version 5: the chain's `kind` is no longer a closed list in the
-- database. Schemas 3 and 4 rebuilt the whole chain table each time a record kind was added
-- (grants, edits, users, confinement and withdrawals each add one); the list of kinds now lives
-- in one place, the verifier (`chain.rs`), which refuses any entry of a kind it does not know.
-- The chain table is rebuilt one last time with every entry as it was, and its triggers recreated.

CREATE TABLE chain_v5 (
    seq        INTEGER PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    record     INTEGER NOT NULL,
    prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);
INSERT INTO chain_v5 (seq, kind, record, prev_hash, hash)
    SELECT seq, kind, record, prev_hash, hash FROM chain ORDER BY seq;
DROP TABLE chain;
ALTER TABLE chain_v5 RENAME TO chain;
CREATE TRIGGER chain_append_only_update BEFORE UPDATE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER chain_append_only_delete BEFORE DELETE ON chain
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
