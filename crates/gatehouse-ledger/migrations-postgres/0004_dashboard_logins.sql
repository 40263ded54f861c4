-- PostgreSQL ledger, schema version 4: dashboard login codes and sessions shared by the replicas,
-- so a login link issued by one replica is redeemable on any (once), and a session opened on one
-- is valid on all. Not ledger records (nothing is decided by them; the chain does not cover
-- them): credentials, kept by the SHA-256 of their secret (the secret itself is never stored),
-- append-only like everything here. A code is spent by its one row in
-- `login_code_redemptions` (the primary key: exactly once, whichever replica).

CREATE TABLE dashboard_logins (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind           TEXT    NOT NULL CHECK (kind IN ('code', 'session')),
    secret_hash    BYTEA   NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    person         TEXT    NOT NULL CHECK (length(person) BETWEEN 1 AND 64),
    role           TEXT    NOT NULL CHECK (role IN ('approver', 'reviewer', 'admin')),
    -- A session's CSRF token (what its page echoes on state changes); NULL for a code.
    csrf           TEXT    CHECK ((kind = 'session') = (csrf IS NOT NULL)),
    expires_at_ms  BIGINT  NOT NULL,
    recorded_at_ms BIGINT  NOT NULL
);
CREATE INDEX dashboard_logins_by_expiry ON dashboard_logins (expires_at_ms);

CREATE TABLE login_code_redemptions (
    secret_hash    BYTEA   PRIMARY KEY REFERENCES dashboard_logins (secret_hash),
    redeemed_at_ms BIGINT  NOT NULL
);

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['dashboard_logins', 'login_code_redemptions'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()', t || '_no_truncate', t);
    END LOOP;
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        EXECUTE 'GRANT SELECT, INSERT ON dashboard_logins, login_code_redemptions TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
    END IF;
END $$;
