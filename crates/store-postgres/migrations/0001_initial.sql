-- Drehscheibe store schema, version 1 (see the crate docs and ADR 0016).
-- Applied by `migrate` inside one transaction under an advisory lock;
-- never edit a released migration, add the next file instead.

-- Messages: the record as JSONB plus the columns the queries filter on.
-- `finished_at` is when the message entered `delivered`, `dead` or
-- `rejected` (the retention clock); `retention_stage` is its next stage:
-- 'p' payload of a delivered message, 'f' payload of a dead or rejected
-- one, 'r' the record (payload already purged), NULL while unfinished.
CREATE TABLE drehscheibe_messages (
    id                uuid        PRIMARY KEY,
    tenant            text,
    state             text        NOT NULL,
    received_at       timestamptz NOT NULL,
    revision          bigint      NOT NULL,
    finished_at       timestamptz,
    retention_stage   "char",
    payload_purged_at timestamptz,
    record            jsonb       NOT NULL
);
CREATE INDEX drehscheibe_messages_state ON drehscheibe_messages (state, id);
CREATE INDEX drehscheibe_messages_tenant ON drehscheibe_messages (tenant, id);
CREATE INDEX drehscheibe_messages_expiry ON drehscheibe_messages (retention_stage, tenant, finished_at)
    WHERE retention_stage IS NOT NULL;

-- The primary payload as received; the row goes at retention stage 1.
CREATE TABLE drehscheibe_payloads (
    message_id uuid  PRIMARY KEY REFERENCES drehscheibe_messages (id) ON DELETE CASCADE,
    body       bytea NOT NULL
);

-- Output documents by delivery index. A pass-through output (byte-equal
-- to the payload) is stored as `same_as_payload` without a body.
CREATE TABLE drehscheibe_outputs (
    message_id      uuid    NOT NULL REFERENCES drehscheibe_messages (id) ON DELETE CASCADE,
    idx             bigint  NOT NULL,
    same_as_payload boolean NOT NULL,
    body            bytea,
    PRIMARY KEY (message_id, idx)
);

-- The audit trail: one row per event, in `seq` order per message.
CREATE TABLE drehscheibe_audit (
    message_id uuid   NOT NULL REFERENCES drehscheibe_messages (id) ON DELETE CASCADE,
    seq        bigint NOT NULL,
    event      jsonb  NOT NULL,
    PRIMARY KEY (message_id, seq)
);

-- Idempotency keys, scoped by channel and sender. Inserted before the
-- message row in `accept` (so a duplicate costs no payload write): the
-- foreign key is checked at commit.
CREATE TABLE drehscheibe_idempotency (
    channel        text NOT NULL,
    sender         text NOT NULL,
    key            text NOT NULL,
    message_id     uuid NOT NULL REFERENCES drehscheibe_messages (id)
                       ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    payload_sha256 text NOT NULL,
    PRIMARY KEY (channel, sender, key)
);
CREATE INDEX drehscheibe_idempotency_message ON drehscheibe_idempotency (message_id);

-- The work queue: one row per job. `delivery` is -1 for a Route job.
-- A lease is (`lease_until`, `leased_by` = instance id); NULL = free.
CREATE TABLE drehscheibe_queue (
    message_id  uuid        NOT NULL,
    delivery    bigint      NOT NULL,
    due         timestamptz NOT NULL,
    lease_until timestamptz,
    leased_by   text,
    PRIMARY KEY (message_id, delivery)
);
CREATE INDEX drehscheibe_queue_due ON drehscheibe_queue (due, message_id, delivery);
CREATE INDEX drehscheibe_queue_leases ON drehscheibe_queue (leased_by) WHERE leased_by IS NOT NULL;

-- Configuration snapshots by digest.
CREATE TABLE drehscheibe_config_snapshots (
    digest    text        PRIMARY KEY,
    body      text        NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

-- Adapter state spaces (ordered key-value maps; bytea sorts bytewise).
CREATE TABLE drehscheibe_state (
    space text  NOT NULL,
    key   bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (space, key)
);

-- Retention: stored messages referencing each blob (one per attachment
-- entry of a message that still holds its payload), and blobs whose
-- count reached zero (candidates for the blob collector).
CREATE TABLE drehscheibe_blob_refs (
    sha256 text   PRIMARY KEY,
    refs   bigint NOT NULL CHECK (refs > 0)
);
CREATE TABLE drehscheibe_blob_garbage (
    sha256   text        PRIMARY KEY,
    since    timestamptz NOT NULL DEFAULT now()
);

-- Blob content (PgBlobStore): an upload streams its chunks under a fresh
-- `upload_id`; a finished blob names the upload that holds its bytes.
CREATE TABLE drehscheibe_blob_uploads (
    upload_id  uuid        PRIMARY KEY,
    instance   text        NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE drehscheibe_blob_chunks (
    upload_id uuid    NOT NULL REFERENCES drehscheibe_blob_uploads (upload_id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    data      bytea   NOT NULL,
    PRIMARY KEY (upload_id, seq)
);
-- Chunks are already-compressed attachments most of the time (PDF, JPEG):
-- no pglz attempt, stored out of line as they are.
ALTER TABLE drehscheibe_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
CREATE TABLE drehscheibe_blobs (
    sha256     text        PRIMARY KEY,
    size       bigint      NOT NULL,
    chunks     integer     NOT NULL,
    upload_id  uuid        NOT NULL UNIQUE REFERENCES drehscheibe_blob_uploads (upload_id),
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Stagings in flight per content hash (FsBlobStore keeps these in memory;
-- here every instance sees them).
CREATE TABLE drehscheibe_blob_holds (
    sha256     text        PRIMARY KEY,
    holders    integer     NOT NULL,
    kept       boolean     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- "Run once per hub" leases (PgStore::try_lease_singleton).
CREATE TABLE drehscheibe_singletons (
    name       text        PRIMARY KEY,
    holder     text        NOT NULL,
    guard      uuid        NOT NULL,
    token      bigint      NOT NULL,
    expires_at timestamptz NOT NULL
);
