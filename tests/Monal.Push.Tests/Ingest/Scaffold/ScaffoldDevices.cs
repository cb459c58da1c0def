using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Tests.Ingest.Scaffold;

/// <summary>
/// TEMPORARY SCAFFOLD until the Projections stage (devices table + DeviceProjection) is merged into main: creates the
/// read-model schema from a copy of migration 0003 and folds every device event through its SQL function
/// (monal_devices_apply), which refuses a push to an inactive device with MPG01 exactly as the real projection does.
/// </summary>
internal sealed class ScaffoldDevices : IInlineProjection
{
    private static readonly SemaphoreSlim Gate = new(1, 1);
    private static bool _created;

    public static async Task EnsureSchemaAsync(NpgsqlDataSource dataSource)
    {
        await Gate.WaitAsync();
        try
        {
            if (_created)
            {
                return;
            }

            var sql = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Ingest", "Scaffold", "devices_scaffold.sql"));
            await using var cmd = dataSource.CreateCommand(sql);
            await cmd.ExecuteNonQueryAsync();
            _created = true;
        }
        finally
        {
            Gate.Release();
        }
    }

    public void Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
    {
        var rows = new List<(string Kind, Guid Id, DateTimeOffset At, string? Mode, string? Module, string? Token, string? Secret,
            string? Domain, DateTimeOffset? Apple, string? Reason)>();
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case DeviceRegistered r:
                    rows.Add(("registered", r.DeviceId, r.RegisteredAt, r.Mode.ToString().ToLowerInvariant(), r.PushModule,
                        r.EncryptedToken, r.SecretHash, r.Domain, null, null));
                    break;
                case RegistrationRenewed r:
                    rows.Add(("renewed", r.DeviceId, r.RenewedAt, null, r.PushModule, r.EncryptedToken, null, r.Domain, null, null));
                    break;
                case DeviceUnregistered u:
                    rows.Add(("unregistered", u.DeviceId, u.UnregisteredAt, null, null, null, null, null, null, null));
                    break;
                case TokenInvalidated t:
                    rows.Add(("invalidated", t.DeviceId, t.InvalidatedAt, null, null, null, null, null, t.AppleTimestamp, t.Reason));
                    break;
                case TokenRejected t:
                    rows.Add(("rejected", t.DeviceId, t.RejectedAt, null, null, null, null, null, null, t.Reason));
                    break;
                case PushRequested p:
                    rows.Add(("requested", p.DeviceId, p.RequestedAt, null, null, null, null, p.Domain, null, null));
                    break;
            }
        }

        if (rows.Count == 0)
        {
            return;
        }

        var cmd = new NpgsqlBatchCommand("select monal_devices_apply($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        Add(cmd, rows.Select(r => r.Kind).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Id).ToArray(), NpgsqlDbType.Uuid);
        Add(cmd, rows.Select(r => r.At.ToUniversalTime()).ToArray(), NpgsqlDbType.TimestampTz);
        Add(cmd, rows.Select(r => r.Mode).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Module).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Token).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Secret).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Domain).ToArray(), NpgsqlDbType.Text);
        Add(cmd, rows.Select(r => r.Apple?.ToUniversalTime()).ToArray(), NpgsqlDbType.TimestampTz);
        Add(cmd, rows.Select(r => r.Reason).ToArray(), NpgsqlDbType.Text);
        batch.BatchCommands.Add(cmd);
    }

    private static void Add(NpgsqlBatchCommand cmd, object value, NpgsqlDbType type) =>
        cmd.Parameters.Add(new NpgsqlParameter { Value = value, NpgsqlDbType = NpgsqlDbType.Array | type });
}
