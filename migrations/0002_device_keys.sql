-- Per-device data keys for crypto-shredding (docs/architecture.md). Each key is a random AES-256 key wrapped
-- (AES-GCM) by the master key, which never enters the database. Deleting a row makes every ciphertext made with
-- that key unreadable, in the live tables and in every backup of them.
create table if not exists data_keys (
    device_id   uuid        primary key,
    wrapped_key bytea       not null,
    created_at  timestamptz not null
);
