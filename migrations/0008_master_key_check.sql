-- Issue 19: the key check value of the master key, so that every node on one database is proven to hold the same
-- master key before it starts. A node with another key could not unwrap the data keys the others made (their pushes
-- would be lost) and would wrap new ones the others cannot read. The value is HMAC-SHA256 of a fixed label under a
-- key derived from the master key (MasterKey.CheckValue): it tells whether a key matches, never the key. One row.
create table if not exists master_key_check (
    id          smallint    primary key default 1 check (id = 1),
    check_value bytea       not null,
    created_at  timestamptz not null default now()
);
