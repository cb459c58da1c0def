using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Tests.Purge;

/// <summary>
/// TEST SCAFFOLDING, not product code. The read models belong to Monal.Push.Projections
/// (migrations/0003_read_models.sql), which was not merged when these tests were written. This creates the tables
/// with the names the brief gives (if they are missing) and keeps them up to date with a small inline projection,
/// so purge, export, erase and audit can be tested against read-model rows built from events.
/// </summary>
public static class ReadModelScaffolding
{
    public const string Ddl = """
        create table if not exists devices (
            device_id uuid primary key, mode text, push_module text, encrypted_token text, secret_hash text,
            registered_at timestamptz, renewed_at timestamptz, last_push_at timestamptz, last_error_at timestamptz,
            last_error_reason text, invalidated_at timestamptz, apple_timestamp timestamptz, rejected_at timestamptz,
            unregistered_at timestamptz, domains text[] not null default '{}');
        create table if not exists push_log (
            push_id uuid primary key, device_id uuid not null, domain text, requested_at timestamptz not null,
            outcome text, status int, reason text, outcome_at timestamptz, latency_ms double precision);
        create table if not exists domain_usage (day date, domain text, requested bigint, delivered bigint, failed bigint,
            primary key (day, domain));
        create table if not exists projection_checkpoints (name text primary key, position bigint not null);
        create table if not exists throttle_state (device_id uuid primary key, last_push_at timestamptz);
        """;

    public static async Task CreateAsync(NpgsqlDataSource dataSource)
    {
        await using var cmd = dataSource.CreateCommand(Ddl);
        await cmd.ExecuteNonQueryAsync();
    }

    /// <summary>Folds device events into devices and push_log in the append transaction.</summary>
    public sealed class Projection : IInlineProjection
    {
        public void Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
        {
            foreach (var e in events)
            {
                switch (e.Data)
                {
                    case DeviceRegistered r:
                        Add(batch, """
                            insert into devices (device_id, mode, push_module, encrypted_token, secret_hash, registered_at, domains)
                            values ($1, $2, $3, $4, $5, $6, case when $7::text is null then '{}' else array[$7::text] end)
                            on conflict (device_id) do update set encrypted_token = excluded.encrypted_token
                            """, r.DeviceId, r.Mode.ToString(), r.PushModule, r.EncryptedToken, (object?)r.SecretHash ?? DBNull.Value,
                            r.RegisteredAt, (object?)r.Domain ?? DBNull.Value);
                        break;
                    case RegistrationRenewed r:
                        Add(batch, "update devices set renewed_at = $2, encrypted_token = $3, push_module = $4 where device_id = $1",
                            r.DeviceId, r.RenewedAt, r.EncryptedToken, r.PushModule);
                        break;
                    case DeviceUnregistered u:
                        Add(batch, "update devices set unregistered_at = $2 where device_id = $1", u.DeviceId, u.UnregisteredAt);
                        break;
                    case PushRequested p:
                        Add(batch, "insert into push_log (push_id, device_id, domain, requested_at, outcome) values ($1, $2, $3, $4, 'requested')",
                            p.PushId, p.DeviceId, p.Domain, p.RequestedAt);
                        Add(batch, "update devices set domains = array(select distinct unnest(domains || array[$2::text])) where device_id = $1",
                            p.DeviceId, p.Domain);
                        break;
                    case PushDelivered d:
                        Add(batch, "update push_log set outcome = 'delivered', outcome_at = $2, latency_ms = $3 where push_id = $1",
                            d.PushId, d.DeliveredAt, d.LatencyMs);
                        Add(batch, "update devices set last_push_at = $2 where device_id = $1", d.DeviceId, d.DeliveredAt);
                        break;
                    case PushFailed f:
                        Add(batch, "update push_log set outcome = 'failed', status = $2, reason = $3, outcome_at = $4 where push_id = $1",
                            f.PushId, f.Status, (object?)f.Reason ?? DBNull.Value, f.FailedAt);
                        Add(batch, "update devices set last_error_at = $2, last_error_reason = $3 where device_id = $1",
                            f.DeviceId, f.FailedAt, (object?)f.Reason ?? DBNull.Value);
                        break;
                    case TokenInvalidated i:
                        Add(batch, "update devices set invalidated_at = $2, apple_timestamp = $3 where device_id = $1",
                            i.DeviceId, i.InvalidatedAt, i.AppleTimestamp);
                        break;
                    case TokenRejected j:
                        Add(batch, "update devices set rejected_at = $2 where device_id = $1", j.DeviceId, j.RejectedAt);
                        break;
                }
            }
        }

        private static void Add(NpgsqlBatch batch, string sql, params object[] values)
        {
            var c = new NpgsqlBatchCommand(sql);
            foreach (var v in values)
            {
                c.Parameters.Add(new() { Value = v });
            }

            batch.BatchCommands.Add(c);
        }
    }
}
