-- Gatehouse ledger, schema version 11: edits — a person changed a paused action's input and
-- approved the edited action in its place (edit then approve). The action keeps its original
-- input; the edit records what was approved instead, its hash (the approval is bound to it) and
-- who edited. Appended with the approving decision, in the same transaction; chained (`edit`).

CREATE TABLE edits (
    seq            INTEGER PRIMARY KEY,
    -- One edit per action: an action has one decision, and an edit is part of it.
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    -- The action's input as asked (a copy, so the edit reads whole) and as approved: JSON objects.
    original_input TEXT    NOT NULL,
    edited_input   TEXT    NOT NULL,
    -- SHA-256 of the edited action's canonical JSON (docs/SECURITY.md, "Approval integrity").
    edited_hash    BLOB    NOT NULL CHECK (length(edited_hash) = 32),
    edited_by      TEXT    NOT NULL CHECK (length(edited_by) BETWEEN 1 AND 256),
    recorded_at_ms INTEGER NOT NULL
);
CREATE TRIGGER edits_append_only_update BEFORE UPDATE ON edits
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER edits_append_only_delete BEFORE DELETE ON edits
    BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
