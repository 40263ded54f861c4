-- Gatehouse PostgreSQL ledger, schema version 1: the same records, columns and hash chain as the
-- SQLite ledger's schema 5 (src/chain.rs encodes a record's columns the same way in both), so the
-- chain format is one. Integers are BIGINT, reals DOUBLE PRECISION, text TEXT, blobs BYTEA.
-- Facts are appended, never rewritten: triggers refuse UPDATE, DELETE and TRUNCATE on every
-- table, and the role the daemons should connect as (gatehouse_writer) may only SELECT and INSERT.

CREATE TABLE actions (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id             TEXT    NOT NULL UNIQUE,
    created_at_ms  BIGINT  NOT NULL,
    tool           TEXT    NOT NULL,
    input          TEXT    NOT NULL,
    session_id     TEXT,
    agent          TEXT,
    tool_use_id    TEXT,
    cwd            TEXT,
    context        TEXT,
    verdict        TEXT    NOT NULL CHECK (verdict IN ('allow', 'reject', 'pending')),
    decided_by     TEXT    NOT NULL CHECK (decided_by IN ('rule', 'default', 'error')),
    rule_id        TEXT,
    reason         TEXT    NOT NULL,
    deadline_ms    BIGINT,
    tier2_status   TEXT    NOT NULL CHECK (tier2_status IN ('pending', 'dropped', 'disabled')),
    action_hash    BYTEA   CHECK (action_hash IS NULL OR length(action_hash) = 32),
    peer_uid       BIGINT,
    peer_pid       BIGINT,
    observed_effect TEXT   CHECK (observed_effect IN ('reject', 'pause')),
    CHECK ((verdict = 'pending') = (deadline_ms IS NOT NULL))
);
-- A re-sent check (same session and tool_use_id) re-attaches to its action, on any replica.
CREATE UNIQUE INDEX actions_by_tool_use ON actions (session_id, tool_use_id)
    WHERE session_id IS NOT NULL AND tool_use_id IS NOT NULL;
CREATE INDEX actions_paused ON actions (seq) WHERE verdict = 'pending';

CREATE TABLE scores (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    recorded_at_ms BIGINT  NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('scored', 'error', 'timeout', 'dropped')),
    score          DOUBLE PRECISION CHECK (score IS NULL OR (score >= 0 AND score <= 1)),
    label          TEXT,
    model          TEXT,
    explanation    TEXT,
    error          TEXT,
    disagreement   BIGINT  NOT NULL DEFAULT 0 CHECK (disagreement IN (0, 1)),
    CHECK ((status = 'scored') = (score IS NOT NULL))
);
CREATE INDEX scores_by_action ON scores (action_id, seq);
CREATE INDEX scores_disagreements ON scores (seq) WHERE disagreement = 1;

-- At most one decision per action, whichever replica lands it: the primary key.
CREATE TABLE decisions (
    action_id      TEXT    PRIMARY KEY REFERENCES actions (id),
    decided_at_ms  BIGINT  NOT NULL,
    verdict        TEXT    NOT NULL CHECK (verdict IN ('allow', 'reject')),
    decided_by     TEXT    NOT NULL CHECK (decided_by IN ('human', 'timeout', 'error')),
    note           TEXT,
    action_hash    BYTEA   CHECK (action_hash IS NULL OR length(action_hash) = 32)
);

CREATE TABLE labels (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    NOT NULL REFERENCES actions (id),
    label          TEXT    NOT NULL CHECK (label IN ('malicious', 'benign')),
    reviewer       TEXT,
    note           TEXT,
    recorded_at_ms BIGINT  NOT NULL
);
CREATE INDEX labels_by_action ON labels (action_id, seq);

CREATE TABLE outcomes (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action_id      TEXT    REFERENCES actions (id),
    session_id     TEXT,
    tool_use_id    TEXT,
    tool           TEXT    NOT NULL,
    agent          TEXT,
    cwd            TEXT,
    ran            BIGINT  NOT NULL CHECK (ran IN (0, 1)),
    exit_code      BIGINT,
    error          TEXT,
    duration_ms    BIGINT,
    findings       TEXT,
    flag           TEXT    CHECK (flag IS NULL OR flag IN ('unchecked', 'not_allowed')),
    recorded_at_ms BIGINT  NOT NULL
);
CREATE INDEX outcomes_by_action ON outcomes (action_id, seq);
CREATE INDEX outcomes_flagged ON outcomes (seq) WHERE flag IS NOT NULL;

-- The hash chain: one entry per record, 1, 2, 3... with no gaps. Every writing transaction takes
-- the ledger's advisory transaction lock first (the serialisation point), so the chain is one
-- line across all replicas.
CREATE TABLE chain (
    seq        BIGINT  PRIMARY KEY CHECK (seq >= 1),
    kind       TEXT    NOT NULL CHECK (length(kind) BETWEEN 1 AND 32),
    record     BIGINT  NOT NULL,
    prev_hash  BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
    hash       BYTEA   NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE checkpoints (
    seq            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chain_seq      BIGINT  NOT NULL,
    head_hash      BYTEA   NOT NULL CHECK (length(head_hash) = 32),
    created_at_ms  BIGINT  NOT NULL,
    public_key     BYTEA   NOT NULL CHECK (length(public_key) = 32),
    signature      BYTEA   NOT NULL CHECK (length(signature) = 64)
);

CREATE FUNCTION gatehouse_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END $$;

DO $$
DECLARE t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['actions', 'scores', 'decisions', 'labels', 'outcomes', 'chain', 'checkpoints'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION gatehouse_append_only()', t || '_append_only', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION gatehouse_append_only()', t || '_no_truncate', t);
    END LOOP;
END $$;

-- A decision only lands on a paused action, and only on the action whose hash it names.
CREATE FUNCTION gatehouse_decision_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE a RECORD;
BEGIN
    SELECT verdict, action_hash INTO a FROM actions WHERE id = NEW.action_id;
    IF a.verdict IS DISTINCT FROM 'pending' THEN
        RAISE EXCEPTION 'only a paused action can be decided';
    END IF;
    IF NEW.action_hash IS NOT NULL AND a.action_hash IS NOT NULL
       AND a.action_hash IS DISTINCT FROM NEW.action_hash THEN
        RAISE EXCEPTION 'the decision names another action hash';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER decisions_guard BEFORE INSERT ON decisions
    FOR EACH ROW EXECUTE FUNCTION gatehouse_decision_guard();

-- The role daemons connect as in production: read and append, nothing else. Creating a role
-- needs CREATEROLE; without it the schema still works and docs/TEAM.md says how to add it.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        CREATE ROLE gatehouse_writer NOLOGIN;
    END IF;
EXCEPTION
    WHEN insufficient_privilege THEN
        RAISE NOTICE 'gatehouse_writer was not created (no CREATEROLE): create it as docs/TEAM.md says';
    -- Roles are per cluster: a ledger in another database may have created it meanwhile.
    WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gatehouse_writer') THEN
        EXECUTE 'GRANT SELECT, INSERT ON actions, scores, decisions, labels, outcomes, chain, checkpoints TO gatehouse_writer';
        EXECUTE 'GRANT SELECT ON gatehouse_schema TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
        EXECUTE 'GRANT USAGE ON ALL SEQUENCES IN SCHEMA ' || quote_ident(current_schema()) || ' TO gatehouse_writer';
    END IF;
END $$;
