-- Model registry (issue 8): one row per model version, and every lifecycle change appended.
--
-- Lifecycle: registered -> shadow -> canary -> active -> retired, and any of registered,
-- shadow, canary, active -> rejected (a failed gate). retired -> active is the rollback of a
-- failed bake (the previous model returns). engine/models/registry.py holds the same table
-- of allowed moves and changes a state only with a conditional UPDATE under a row lock.
CREATE TABLE model_versions (
    version      text PRIMARY KEY CHECK (version ~ '^[A-Za-z0-9._-]{1,64}$'),
    kind         text NOT NULL CHECK (kind IN ('linear', 'mlp')),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    artifact_uri text NOT NULL,
    features     jsonb NOT NULL,
    training     jsonb NOT NULL,
    metrics      jsonb NOT NULL,
    state        text NOT NULL DEFAULT 'registered'
                 CHECK (state IN ('registered', 'shadow', 'canary', 'active', 'retired',
                                  'rejected')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- one desk, one active model: a second promotion must retire the first in the same commit
CREATE UNIQUE INDEX model_versions_one_active ON model_versions ((true)) WHERE state = 'active';
CREATE INDEX model_versions_by_creation ON model_versions (created_at DESC);

CREATE TABLE model_transitions (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version    text NOT NULL REFERENCES model_versions (version),
    from_state text NOT NULL,
    to_state   text NOT NULL,
    by         text NOT NULL,
    reason     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX model_transitions_by_version ON model_transitions (version, seq);

-- append-only: the history of a model is evidence, like the journal
CREATE FUNCTION model_transitions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'model_transitions is append-only';
END;
$$;
CREATE TRIGGER model_transitions_no_update BEFORE UPDATE OR DELETE ON model_transitions
    FOR EACH ROW EXECUTE FUNCTION model_transitions_append_only();
