-- Prefect flows (issue 10): backups and their restore tests, reconciliation runs and
-- breaks, reports. Each flow stores its typed report here; the object store holds the
-- bytes (dumps, manifests, report documents).

CREATE TABLE flow_backups (
    backup_id   text PRIMARY KEY CHECK (backup_id ~ '^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$'),
    uri         text NOT NULL,
    created_at  timestamptz NOT NULL,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    manifest    jsonb NOT NULL,
    -- uploaded: not yet restore-tested; verified: its restore test passed; failed: it did
    -- not (never counted as verified again); deleted: removed by retention
    status      text NOT NULL DEFAULT 'uploaded'
                CHECK (status IN ('uploaded', 'verified', 'failed', 'deleted')),
    verified_at timestamptz,
    restore_s   double precision,
    failure     text,
    deleted_at  timestamptz
);
CREATE INDEX flow_backups_by_creation ON flow_backups (created_at DESC);

CREATE TABLE flow_restore_tests (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    backup_id  text NOT NULL REFERENCES flow_backups (backup_id),
    ok         boolean NOT NULL,
    restore_s  double precision,
    problems   jsonb NOT NULL,
    tested_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reconciliation_runs (
    run_id        uuid PRIMARY KEY,
    venue         text NOT NULL,
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    fills_checked bigint NOT NULL,
    breaks        integer NOT NULL,
    escalated     integer NOT NULL,
    repaired      integer NOT NULL,
    summary       jsonb NOT NULL
);
CREATE INDEX reconciliation_runs_by_start ON reconciliation_runs (started_at DESC);

CREATE TABLE reconciliation_breaks (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id           uuid NOT NULL REFERENCES reconciliation_runs (run_id),
    kind             text NOT NULL CHECK (kind IN ('missing_fill', 'unknown_fill',
                     'unknown_open_order', 'quantity_mismatch', 'price_mismatch',
                     'balance_drift')),
    break_key        text NOT NULL,
    symbol           text,
    asset            text,
    expected         text,
    actual           text,
    detail           jsonb NOT NULL,
    consecutive_runs integer NOT NULL CHECK (consecutive_runs >= 1),
    escalated        boolean NOT NULL,
    repaired         boolean NOT NULL DEFAULT false,
    seen_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reconciliation_breaks_by_run ON reconciliation_breaks (run_id);
CREATE INDEX reconciliation_breaks_by_key ON reconciliation_breaks (break_key, seq DESC);

CREATE TABLE flow_reports (
    report_id  text PRIMARY KEY,
    kind       text NOT NULL CHECK (kind IN ('daily')),
    day        date NOT NULL,
    html_uri   text NOT NULL,
    json_uri   text NOT NULL,
    summary    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX flow_reports_by_day ON flow_reports (day DESC, created_at DESC);
