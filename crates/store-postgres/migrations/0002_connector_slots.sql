-- Hub-wide connector concurrency (Store::acquire_slot): a connector with
-- `max_concurrency = n` has slots 0..n-1; a row is a taken slot, held by
-- an instance until `expires_at` (database clock). A crashed holder's slot
-- frees itself when it expires.
CREATE TABLE drehscheibe_connector_slots (
    key        text        NOT NULL,
    slot       int4        NOT NULL,
    holder     text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (key, slot)
);
