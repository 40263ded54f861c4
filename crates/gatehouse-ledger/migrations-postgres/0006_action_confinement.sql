-- PostgreSQL ledger, schema version 6: as SQLite's 0013_action_confinement.sql — the confinement
-- applied to each action whose rule required one (`confine = "PROFILE"`), written and chained
-- (`action_confinement`) in the transaction that records the action: the profile, a digest of
-- it as resolved then, what it allowed in one line, and whether it was applied or the rule's
-- fallback verdict applied instead. The same columns (the chain encodes them the same way),
-- append-only.

CREATE TABLE action_confinement (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL UNIQUE REFERENCES actions (id),
    profile        TEXT    NOT NULL CHECK (length(profile) BETWEEN 1 AND 256),
    profile_digest BYTEA   CHECK (profile_digest IS NULL OR length(profile_digest) = 32),
    summary        TEXT,
    applied        TEXT    NOT NULL CHECK (applied IN ('confined', 'fallback')),
    fallback       TEXT    CHECK ((applied = 'fallback') = (fallback IS NOT NULL)),
    recorded_at_ms BIGINT  NOT NULL
);

CREATE TRIGGER action_confinement_append_only BEFORE UPDATE OR DELETE ON action_confinement
    FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only();
CREATE TRIGGER action_confinement_no_truncate BEFORE TRUNCATE ON action_confinement
    FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only();

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        EXECUTE 'GRANT SELECT, INSERT ON action_confinement TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
    END IF;
END $$;
