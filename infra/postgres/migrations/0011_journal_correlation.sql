-- Correlation ids (issue 11): the operation that caused a journal row — an operator's API
-- request, carried through the Temporal workflow and its activities into the engine's
-- control call. NULL for the engine's own decisions. `bot4 trace ID` reads it.
ALTER TABLE journal_events ADD COLUMN correlation_id text;
CREATE INDEX journal_events_by_correlation ON journal_events (correlation_id)
    WHERE correlation_id IS NOT NULL;
