-- The engine's journal and its leadership lease (DESIGN.md §4).
--
-- Fencing lives in the database: every journal_events / fills statement is checked by a
-- statement-level trigger against the lease row, read FOR SHARE so a concurrent takeover
-- (UPDATE of the lease) serialises with it. A deposed engine, holding a stale epoch,
-- cannot record anything, whatever its code does.

CREATE TABLE engine_leases (
    name        text PRIMARY KEY,
    holder      text,
    epoch       bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    acquired_at timestamptz,
    expires_at  timestamptz NOT NULL DEFAULT '-infinity'
);
INSERT INTO engine_leases (name) VALUES ('trading');

CREATE TABLE journal_events (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    lease           text NOT NULL DEFAULT 'trading',
    epoch           bigint NOT NULL,
    instance        text NOT NULL,
    kind            text NOT NULL,
    client_order_id text,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    body            jsonb NOT NULL
);
CREATE INDEX journal_events_by_order ON journal_events (client_order_id)
    WHERE client_order_id IS NOT NULL;
CREATE INDEX journal_events_by_kind ON journal_events (kind, seq);

CREATE TABLE fills (
    venue           text NOT NULL,
    trade_id        text NOT NULL,
    lease           text NOT NULL DEFAULT 'trading',
    epoch           bigint NOT NULL,
    instance        text NOT NULL,
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    price           numeric NOT NULL CHECK (price > 0),
    qty             numeric NOT NULL CHECK (qty > 0),
    fee             numeric NOT NULL DEFAULT 0,
    fee_asset       text,
    traded_at       timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (venue, trade_id)
);
CREATE INDEX fills_by_order ON fills (client_order_id);

-- Derived from fills; the version column gives optimistic locking to its writers.
CREATE TABLE positions (
    symbol     text PRIMARY KEY,
    qty        numeric NOT NULL DEFAULT 0,
    cost       numeric NOT NULL DEFAULT 0,
    version    bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The kill switch every engine polls: engaged means halt, cancel everything, send nothing.
CREATE TABLE kill_switch (
    name       text PRIMARY KEY,
    engaged    boolean NOT NULL DEFAULT false,
    reason     text,
    changed_by text,
    changed_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO kill_switch (name) VALUES ('desk');

CREATE FUNCTION bot4_refuse_stale_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    stale record;
BEGIN
    SELECT n.lease, n.epoch, n.instance, l.epoch AS current_epoch, l.holder
      INTO stale
      FROM (SELECT DISTINCT lease, epoch, instance FROM new_rows) n
      LEFT JOIN LATERAL (
          SELECT epoch, holder FROM engine_leases WHERE name = n.lease FOR SHARE
      ) l ON true
     WHERE l.epoch IS DISTINCT FROM n.epoch OR l.holder IS DISTINCT FROM n.instance
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'stale epoch: % wrote with epoch % of lease %, current epoch % held by %',
            stale.instance, stale.epoch, stale.lease, stale.current_epoch, stale.holder
            USING ERRCODE = 'BT001';
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER journal_events_fenced AFTER INSERT ON journal_events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bot4_refuse_stale_epoch();
CREATE TRIGGER fills_fenced AFTER INSERT ON fills
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION bot4_refuse_stale_epoch();

-- Append-only: the journal is never rewritten.
CREATE FUNCTION bot4_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'BT002';
END;
$$;
CREATE TRIGGER journal_events_append_only BEFORE UPDATE OR DELETE ON journal_events
    FOR EACH STATEMENT EXECUTE FUNCTION bot4_refuse_rewrite();
CREATE TRIGGER fills_append_only BEFORE UPDATE OR DELETE ON fills
    FOR EACH STATEMENT EXECUTE FUNCTION bot4_refuse_rewrite();
