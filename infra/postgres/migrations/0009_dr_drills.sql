-- Disaster-recovery drills (issue 9): one row per drill, whether it passed or not, with
-- the measured RTO and RPO and the whole report (also in the reports object store).

CREATE TABLE dr_drills (
    drill_id    text PRIMARY KEY CHECK (drill_id ~ '^[0-9]{8}T[0-9]{6}Z-(switchover|failover)$'),
    mode        text NOT NULL CHECK (mode IN ('switchover', 'failover')),
    started_at  timestamptz NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now(),
    passed      boolean NOT NULL,
    rto_s       double precision CHECK (rto_s IS NULL OR rto_s >= 0),
    rpo_events  integer CHECK (rpo_events IS NULL OR rpo_events >= 0),
    report_uri  text,
    report      jsonb NOT NULL
);
CREATE INDEX dr_drills_by_start ON dr_drills (started_at DESC);
