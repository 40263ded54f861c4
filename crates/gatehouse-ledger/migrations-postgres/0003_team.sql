-- PostgreSQL ledger, schema version 3: as SQLite's 0009_named_approvers_and_policy_versions.sql —
-- named approvers (users as add/remove events), each person's answer on a paused action, the
-- policy's versions, and which pushed version decided each action. The same columns (so the
-- chain encodes them the same way), append-only, chained (`user`, `approval`, `policy`,
-- `action_policy`).

CREATE TABLE users (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name           TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    event          TEXT    NOT NULL CHECK (event IN ('add', 'remove')),
    role           TEXT    CHECK (role IS NULL OR role IN ('approver', 'reviewer', 'admin')),
    token_hash     BYTEA   CHECK (token_hash IS NULL OR length(token_hash) = 32),
    actor          TEXT    NOT NULL,
    recorded_at_ms BIGINT  NOT NULL
);
CREATE INDEX users_by_name ON users (name, seq);

CREATE TABLE approvals (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    approver       TEXT    NOT NULL CHECK (length(approver) BETWEEN 1 AND 64),
    decision       TEXT    NOT NULL CHECK (decision IN ('approve', 'deny')),
    action_hash    BYTEA   CHECK (action_hash IS NULL OR length(action_hash) = 32),
    note           TEXT,
    recorded_at_ms BIGINT  NOT NULL
);
CREATE INDEX approvals_by_action ON approvals (action_id, seq);
-- A person's approval counts once, whichever replica they answered on.
CREATE UNIQUE INDEX approvals_once_per_person ON approvals (action_id, approver)
    WHERE decision = 'approve';

-- Versions 1, 2, 3... numbered under the chain's advisory lock: one line across replicas.
CREATE TABLE policy_versions (
    version        BIGINT  PRIMARY KEY CHECK (version >= 1),
    text           TEXT    NOT NULL,
    sha256         BYTEA   NOT NULL CHECK (length(sha256) = 32),
    pushed_by      TEXT    NOT NULL,
    rollback_of    BIGINT,
    recorded_at_ms BIGINT  NOT NULL
);

CREATE TABLE action_policy (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    version        BIGINT  NOT NULL REFERENCES policy_versions (version),
    recorded_at_ms BIGINT  NOT NULL
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'approvals', 'policy_versions', 'action_policy'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()', t || '_no_truncate', t);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        EXECUTE 'GRANT SELECT, INSERT ON users, approvals, policy_versions, action_policy TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
    END IF;
END $$;
