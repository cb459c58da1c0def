using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Projections.Devices;

/// <summary>
/// The devices table, kept inline: its statements join the append's one-round-trip batch, so the row never lags
/// an acknowledged append, and a PushRequested to a device that is missing, unregistered, invalidated or rejected
/// makes the whole append fail with SQLSTATE MPG01 (AppendRejectedException): nothing is stored, nothing is
/// acknowledged. The SQL lives in migrations/0003_read_models.sql (monal_device_apply and friends).
/// </summary>
/// <remarks>
/// Hot path (a PushRequested, PushDelivered or PushFailed for a device with no lifecycle event in the batch): two
/// set-based statements over unnest()ed arrays. A first publish's new stateless device (its events in the batch: a
/// stateless DeviceRegistered, then only pushes) is created set-wise too (monal_devices_create_stateless,
/// migrations/0014), before its pushes join the hot path's check. Other devices with a lifecycle event in the batch (registration, renewal,
/// unregistration, invalidation, rejection) fold all their events, pushes included, in stream order through
/// monal_devices_apply, so "register then push" in one batch is accepted and "invalidate then push" is refused.
/// Rows are visited in device-id order. Deadlocks between batches are impossible anyway: the append statement that
/// precedes ours already holds each stream's row lock (taken in id order), and a device's row is only ever written
/// by appends to its own stream, by an erase (which locks the stream row first) or by a rebuild (table lock).
/// </remarks>
internal sealed class DeviceProjection(DeviceDirectory? directory = null) : IInlineProjection, IStreamDeletionHook
{
    public const string Name = "devices";

    private const string AcceptPushesSql = "select monal_devices_accept_pushes($1, $2)";

    private const string CreateStatelessSql =
        "select monal_devices_create_stateless($1, $2::text[]::timestamptz[], $3, $4, $5)";

    private const string ApplySql =
        "select monal_devices_apply($1, $2, $3::text[]::timestamptz[], $4, $5, $6, $7, $8, $9::text[]::timestamptz[], $10)";

    // Delivered and failed pushes only move "latest" timestamps, which commute, so they are folded set-wise.
    private const string OutcomesSql = """
        update devices d set
            last_push_at = greatest(d.last_push_at, u.delivered_at),
            last_error_at = case when u.failed_at is not null and (u.failed_at, u.reason collate "C")
                > (coalesce(d.last_error_at, '-infinity'), coalesce(d.last_error_reason, '') collate "C")
                then u.failed_at else d.last_error_at end,
            last_error_reason = case when u.failed_at is not null and (u.failed_at, u.reason collate "C")
                > (coalesce(d.last_error_at, '-infinity'), coalesce(d.last_error_reason, '') collate "C")
                then u.reason else d.last_error_reason end
        from (
            select id,
                   max(at) filter (where not failed) as delivered_at,
                   (array_agg(at order by at desc, reason collate "C" desc) filter (where failed))[1] as failed_at,
                   (array_agg(reason order by at desc, reason collate "C" desc) filter (where failed))[1] as reason
            from unnest($1::uuid[], $2::text[]::timestamptz[], $3::bool[], $4::text[]) as t(id, at, failed, reason)
            group by id order by id
        ) u
        where d.device_id = u.id
        """;

    public AfterCommit? Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(events);
        HashSet<Guid>? lifecycle = null;
        foreach (var e in events)
        {
            if (IsLifecycle(e.Data))
            {
                (lifecycle ??= []).Add(DeviceOf(e.Data));
            }
        }

        if (lifecycle is not null)
        {
            AddStatelessCreations(batch, events, lifecycle);
            if (lifecycle.Count > 0)
            {
                AddLifecycle(batch, events, lifecycle);
            }
        }

        AddPushes(batch, events, lifecycle);
        return null;
    }

    public void OnDelete(NpgsqlBatch batch, Guid streamId)
    {
        ArgumentNullException.ThrowIfNull(batch);
        batch.BatchCommands.Add(Command("delete from devices where device_id = $1", streamId));
        batch.BatchCommands.Add(Command("select pg_notify('monal_devices', $1::text)", streamId));
        directory?.Evict(streamId);
    }

    /// <summary>
    /// Rebuilds every device row from the stored events in one transaction (tokens stay as encrypted as they are).
    /// Appends wait for it: the EXCLUSIVE lock blocks their inline statements, not readers.
    /// </summary>
    internal static async Task<long> RebuildAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using (var lockCmd = new NpgsqlCommand("set local work_mem = '256MB'; set local jit = off; lock table devices in exclusive mode", connection, tx))
        {
            await lockCmd.ExecuteNonQueryAsync(ct);
        }

        long events;
        await using (var rebuild = new NpgsqlCommand("select monal_devices_rebuild()", connection, tx))
        {
            rebuild.CommandTimeout = 0;
            events = (long)(await rebuild.ExecuteScalarAsync(ct))!;
        }

        await tx.CommitAsync(ct);
        return events;
    }

    /// <summary>
    /// Creates, in one statement, the devices whose events in the batch are a stateless DeviceRegistered followed by
    /// pushes only (a first publish), and takes them out of <paramref name="lifecycle"/>, so that their pushes are
    /// checked by the hot path's statement, which comes after this one in the batch.
    /// </summary>
    private void AddStatelessCreations(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events, HashSet<Guid> lifecycle)
    {
        Dictionary<Guid, DeviceRegistered?>? first = null;
        foreach (var e in events)
        {
            var id = DeviceOf(e.Data);
            if (e.Data is PushDelivered or PushFailed || !lifecycle.Contains(id))
            {
                continue;
            }

            first ??= [];
            if (!first.TryGetValue(id, out var created))
            {
                first[id] = e.Data is DeviceRegistered { Mode: DeviceMode.Stateless } r ? r : null;
            }
            else if (created is not null && e.Data is not PushRequested)
            {
                first[id] = null;
            }
        }

        var creations = first?.Values.OfType<DeviceRegistered>().OrderBy(r => r.DeviceId).ToArray();
        if (creations is not { Length: > 0 })
        {
            return;
        }

        foreach (var r in creations)
        {
            lifecycle.Remove(r.DeviceId);
            directory?.Evict(r.DeviceId);
        }

        var cmd = new NpgsqlBatchCommand(CreateStatelessSql);
        cmd.Parameters.Add(Array(creations.Select(r => r.DeviceId).ToArray(), NpgsqlDbType.Uuid));
        cmd.Parameters.Add(Array(creations.Select(r => PgTime.Iso(r.RegisteredAt)).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(creations.Select(r => r.PushModule).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(creations.Select(r => r.EncryptedToken).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(creations.Select(r => r.Domain).ToArray(), NpgsqlDbType.Text));
        batch.BatchCommands.Add(cmd);
    }

    private void AddLifecycle(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events, HashSet<Guid> lifecycle)
    {
        // Stable sort by device: each device's events keep their stream order.
        var ordered = events
            .Where(e => e.Data is not (PushDelivered or PushFailed) && lifecycle.Contains(DeviceOf(e.Data)))
            .Select(e => e.Data)
            .OrderBy(DeviceOf)
            .ToList();
        var n = ordered.Count;
        var kind = new string[n];
        var id = new Guid[n];
        var at = new DateTimeOffset[n];
        var apple = new DateTimeOffset?[n];
        var mode = new string?[n];
        var module = new string?[n];
        var token = new string?[n];
        var secret = new string?[n];
        var domain = new string?[n];
        var reason = new string?[n];
        for (var i = 0; i < n; i++)
        {
            id[i] = DeviceOf(ordered[i]);
            switch (ordered[i])
            {
                case DeviceRegistered r:
                    (kind[i], at[i], mode[i], module[i], token[i], secret[i], domain[i]) = ("registered", r.RegisteredAt,
                        r.Mode.Name(), r.PushModule, r.EncryptedToken, r.SecretHash, r.Domain);
                    break;
                case RegistrationRenewed r:
                    (kind[i], at[i], module[i], token[i], domain[i]) = ("renewed", r.RenewedAt, r.PushModule, r.EncryptedToken, r.Domain);
                    break;
                case DeviceUnregistered u:
                    (kind[i], at[i]) = ("unregistered", u.UnregisteredAt);
                    break;
                case TokenInvalidated t:
                    (kind[i], at[i], apple[i], reason[i]) = ("invalidated", t.InvalidatedAt, t.AppleTimestamp, t.Reason);
                    break;
                case TokenRejected t:
                    (kind[i], at[i], reason[i]) = ("rejected", t.RejectedAt, t.Reason);
                    break;
                case PushRequested p:
                    (kind[i], at[i], domain[i]) = ("requested", p.RequestedAt, p.Domain);
                    break;
            }

        }

        foreach (var d in lifecycle)
        {
            directory?.Evict(d);
        }

        var cmd = new NpgsqlBatchCommand(ApplySql);
        cmd.Parameters.Add(Array(kind, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(id, NpgsqlDbType.Uuid));
        cmd.Parameters.Add(Array(at.Select(PgTime.Iso).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(mode, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(module, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(token, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(secret, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(domain, NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(apple.Select(PgTime.Iso).ToArray(), NpgsqlDbType.Text));
        cmd.Parameters.Add(Array(reason, NpgsqlDbType.Text));
        batch.BatchCommands.Add(cmd);
    }

    private static void AddPushes(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events, HashSet<Guid>? lifecycle)
    {
        List<(Guid Id, string Domain)>? requested = null;
        List<(Guid Id, DateTimeOffset At, bool Failed, string? Reason)>? outcomes = null;
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case PushRequested p when lifecycle is null || !lifecycle.Contains(p.DeviceId):
                    (requested ??= []).Add((p.DeviceId, p.Domain));
                    break;
                case PushDelivered d:
                    (outcomes ??= []).Add((d.DeviceId, d.DeliveredAt, false, null));
                    break;
                case PushFailed f:
                    (outcomes ??= []).Add((f.DeviceId, f.FailedAt, true, ReasonOf(f)));
                    break;
            }
        }

        if (requested is not null)
        {
            requested.Sort((a, b) => a.Id.CompareTo(b.Id));
            var cmd = new NpgsqlBatchCommand(AcceptPushesSql);
            cmd.Parameters.Add(Array(requested.Select(r => r.Id).ToArray(), NpgsqlDbType.Uuid));
            cmd.Parameters.Add(Array(requested.Select(r => r.Domain).ToArray(), NpgsqlDbType.Text));
            batch.BatchCommands.Add(cmd);
        }

        if (outcomes is not null)
        {
            var cmd = new NpgsqlBatchCommand(OutcomesSql);
            cmd.Parameters.Add(Array(outcomes.Select(o => o.Id).ToArray(), NpgsqlDbType.Uuid));
            cmd.Parameters.Add(Array(outcomes.Select(o => PgTime.Iso(o.At)).ToArray(), NpgsqlDbType.Text));
            cmd.Parameters.Add(Array(outcomes.Select(o => o.Failed).ToArray(), NpgsqlDbType.Boolean));
            cmd.Parameters.Add(Array(outcomes.Select(o => o.Reason).ToArray(), NpgsqlDbType.Text));
            batch.BatchCommands.Add(cmd);
        }
    }

    /// <summary>The error text kept for a failed push: Apple's reason, or the HTTP status when there is none.</summary>
    internal static string ReasonOf(PushFailed f) =>
        f.Reason ?? f.Status.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static bool IsLifecycle(object data) =>
        data is DeviceRegistered or RegistrationRenewed or DeviceUnregistered or TokenInvalidated or TokenRejected;

    private static Guid DeviceOf(object data) => data switch
    {
        DeviceRegistered e => e.DeviceId,
        RegistrationRenewed e => e.DeviceId,
        DeviceUnregistered e => e.DeviceId,
        PushRequested e => e.DeviceId,
        PushDelivered e => e.DeviceId,
        PushFailed e => e.DeviceId,
        TokenInvalidated e => e.DeviceId,
        TokenRejected e => e.DeviceId,
        _ => Guid.Empty,
    };

    private static NpgsqlParameter Array<T>(T[] values, NpgsqlDbType type) =>
        new() { Value = values, NpgsqlDbType = NpgsqlDbType.Array | type };

    private static NpgsqlBatchCommand Command(string sql, Guid id)
    {
        var c = new NpgsqlBatchCommand(sql);
        c.Parameters.Add(new() { Value = id, NpgsqlDbType = NpgsqlDbType.Uuid });
        return c;
    }
}
