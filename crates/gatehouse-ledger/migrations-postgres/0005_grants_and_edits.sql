-- PostgreSQL ledger, schema version 5: as SQLite's 0010_grants.sql and 0011_edits.sql — standing
-- grants and their revocations, and edits (a person's edited input approved in place of the
-- action's). The same columns (the chain encodes them the same way), append-only, chained
-- (`grant`, `grant_revoked`, `edit`).

CREATE TABLE grants (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE CHECK (length(id) BETWEEN 1 AND 64),
    created_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT,
    scope          TEXT    NOT NULL,
    rules          TEXT    NOT NULL,
    hosts          TEXT    NOT NULL,
    action_id      TEXT    REFERENCES actions (id),
    created_by     TEXT    NOT NULL CHECK (length(created_by) BETWEEN 1 AND 256),
    note           TEXT
);
CREATE TABLE grant_revocations (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grant_id       TEXT    NOT NULL UNIQUE REFERENCES grants (id),
    revoked_at_ms  BIGINT  NOT NULL,
    revoked_by     TEXT    NOT NULL CHECK (length(revoked_by) BETWEEN 1 AND 256)
);
CREATE INDEX actions_by_rule ON actions (rule_id) WHERE rule_id LIKE 'grant:%';

CREATE TABLE edits (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    original_input TEXT    NOT NULL,
    edited_input   TEXT    NOT NULL,
    edited_hash    BYTEA   NOT NULL CHECK (length(edited_hash) = 32),
    edited_by      TEXT    NOT NULL CHECK (length(edited_by) BETWEEN 1 AND 256),
    recorded_at_ms BIGINT  NOT NULL
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['grants', 'grant_revocations', 'edits'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()', t || '_no_truncate', t);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        EXECUTE 'GRANT SELECT, INSERT ON grants, grant_revocations, edits TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
    END IF;
END $$;
