-- Control plane (issue 6): API keys and the append-only, hash-chained audit log.

-- Keys: only a salted SHA-256 of the secret is kept (bot4/api/keys.py says why a fast hash).
CREATE TABLE api_keys (
    id            text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{16}$'),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    role          text NOT NULL CHECK (role IN ('viewer', 'trader', 'operator', 'admin')),
    salt          bytea NOT NULL CHECK (length(salt) = 16),
    hash          bytea NOT NULL CHECK (length(hash) = 32),
    created_at    timestamptz NOT NULL,
    created_by    text NOT NULL,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    revoked_by    text,
    revoke_reason text,
    rotated_from  text REFERENCES api_keys (id),
    rotated_to    text REFERENCES api_keys (id),
    retires_at    timestamptz,
    CHECK ((rotated_to IS NULL) = (retires_at IS NULL))
);
CREATE INDEX api_keys_by_creation ON api_keys (created_at DESC);

-- The audit log: one row per request, appended only. seq is assigned by the writer under
-- the chain head's row lock, so it is gapless and in chain order (see bot4/api/chain.py).
CREATE TABLE audit_log (
    seq            bigint PRIMARY KEY CHECK (seq > 0),
    at             timestamptz NOT NULL,
    correlation_id text NOT NULL,
    client         text NOT NULL,
    key_id         text,
    key_name       text,
    role           text,
    method         text NOT NULL,
    route          text NOT NULL,
    params         text NOT NULL,  -- canonical JSON, secrets redacted, sensitive values encrypted
    status         integer NOT NULL,
    outcome        text NOT NULL,
    reason         text,
    duration_us    bigint NOT NULL,
    prev_hash      text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash       text NOT NULL UNIQUE CHECK (row_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX audit_log_by_key ON audit_log (key_id, seq);
CREATE INDEX audit_log_by_correlation ON audit_log (correlation_id);

-- The head of the chain: one row, locked FOR UPDATE by every append (API workers, the
-- bootstrap command), so concurrent writers cannot fork the chain.
CREATE TABLE audit_chain_head (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq      bigint NOT NULL,
    row_hash text NOT NULL
);
INSERT INTO audit_chain_head (seq, row_hash) VALUES (0, repeat('0', 64));

CREATE FUNCTION bot4_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'BT002',
              HINT = 'The audit log is evidence; rows are never changed or removed.';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION bot4_audit_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION bot4_audit_append_only();

CREATE FUNCTION bot4_audit_head_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.seq <= OLD.seq THEN
        RAISE EXCEPTION 'audit_chain_head only moves forward (% refused)', TG_OP
            USING ERRCODE = 'BT002';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_chain_head_forward BEFORE UPDATE OR DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION bot4_audit_head_forward_only();
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION bot4_audit_append_only();

-- No role but the owner gets anything by default; the triggers hold for the owner too.
-- (A superuser can still disable triggers: that is what `bot4 audit verify` is for.)
REVOKE ALL ON audit_log, audit_chain_head, api_keys FROM PUBLIC;
