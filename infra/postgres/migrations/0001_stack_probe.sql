-- Round-trip probes of the stack: written on the primary, read back on the standby
-- by `bot4 demo` and the stack's integration tests.
CREATE TABLE stack_probe (
    probe_id    uuid PRIMARY KEY,
    written_at  timestamptz NOT NULL DEFAULT now(),
    written_by  text NOT NULL,
    payload     text NOT NULL
);
