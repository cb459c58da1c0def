#!/usr/bin/env bash
# The floor of the event store's append design, measured without any client code: pgbench (C, prepared statements,
# 8 connections, 100 rows per statement, no two connections touching the same stream) runs
#   raw.sql    a multi-row INSERT into a table with a primary key only (the ledger benchmark's raw ceiling),
#   push.sql   the same rows into push_events (day partition, event_seq, the (stream_id, version) index),
#   append.sql one statement doing only what the design needs at the least: upsert the streams rows (the version
#              authority, migrations/0001) and insert the events with the versions it returns.
# It prints rows/s and the machine's CPU per row for each, twice. Starts and drops its own private cluster.
# Usage: tests/Monal.Push.Benchmarks/Ledger/pgbench/ideal-append.sh [seconds per run, default 8]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
seconds="${1:-8}"
bin="$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
dir="$(mktemp -d /tmp/monal-ideal-append.XXXXXX)"
as=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as=(runuser -u postgres --); fi
port=$((20000 + RANDOM % 20000))
cleanup() { "${as[@]}" "$bin/pg_ctl" -D "$dir/data" stop -m immediate >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses='' -c shared_buffers=256MB -c max_wal_size=2GB" start >/dev/null
psql=("$bin/psql" -h "$dir" -p "$port" -U postgres -qAt -v ON_ERROR_STOP=1)
"${psql[@]}" -f "$root/migrations/0001_event_store.sql" >/dev/null
"${psql[@]}" >/dev/null <<'SQL'
select monal_ensure_push_partition(current_date);
select monal_ensure_push_partition(current_date + 1);
create table raw (seq bigint primary key default nextval('event_seq'), stream_id uuid not null, version bigint not null,
                  type text not null, data jsonb not null, metadata jsonb, "timestamp" timestamptz not null);
insert into streams select ('00000000-0000-0000-0000-' || lpad(to_hex(i), 12, '0'))::uuid, 'device', 1, now(), now()
from generate_series(0, 9999) i;
checkpoint;
SQL
busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
hz=$(getconf CLK_TCK)
for round in 1 2; do
    for script in raw push append; do
        before=$(busy)
        tps=$("${as[@]}" "$bin/pgbench" -h "$dir" -p "$port" -U postgres -n -M prepared -c 8 -j 2 -T "$seconds" \
              -f "$here/$script.sql" postgres 2>&1 | awk '/^tps/{print $3}')
        after=$(busy)
        awk -v s="$script" -v t="$tps" -v b="$before" -v a="$after" -v hz="$hz" -v sec="$seconds" 'BEGIN {
            rows = t * 100; printf "%-7s %9.0f rows/s  %5.1f us CPU per row (machine)\n", s, rows, (a - b) / hz * 1e6 / (rows * sec) }'
    done
done
