using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Projections;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Devices;
using Monal.Push.Projections.PushLog;
using Monal.Push.Projections.Rebuilding;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Projections;

/// <summary>Builders and probes shared by the projection tests.</summary>
internal static class ProjectionKit
{
    public static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    public static DeviceRegistered Registered(Guid id, DateTimeOffset? at = null, string domain = "example.org", string token = "v1:AAAA") =>
        new(id, DeviceMode.Registered, "monalProdiOS", token, "hash", domain, at ?? T0);

    public static DeviceRegistered Stateless(Guid id, DateTimeOffset? at = null, string token = "v1:SSSS") =>
        new(id, DeviceMode.Stateless, "monalProdCatalyst", token, null, "stateless.example", at ?? T0);

    public static RegistrationRenewed Renewed(Guid id, DateTimeOffset at, string token = "v1:BBBB", string domain = "example.org") =>
        new(id, "monalProdiOS-sandbox", token, domain, at);

    public static PushRequested Requested(Guid device, string domain = "example.org", Guid? pushId = null, DateTimeOffset? at = null) =>
        new(pushId ?? Guid.CreateVersion7(), device, domain, at ?? T0, (at ?? T0).AddHours(1));

    public static ProjectionsOptions Options(int pageSize = 1000, int rangeSize = 10_000) => new()
    {
        PageSize = pageSize,
        RangeSize = rangeSize,
        GatherDelay = TimeSpan.FromMilliseconds(20),
        RebuildPageSize = 50,
        RebuildRange = 7,
        PollInterval = TimeSpan.FromMilliseconds(200),
        LeaderRetry = TimeSpan.FromMilliseconds(200),
        MaxErrorBackoff = TimeSpan.FromMilliseconds(100),
        DeviceCacheTtl = TimeSpan.FromMinutes(10),
    };

    public static IAsyncProjection[] AsyncProjections() => [new PushLogProjection()];

    /// <summary>A store with the device projection inline and the erase hooks, as AddProjections wires it.</summary>
    public static EventStore Store(NpgsqlDataSource dataSource, DeviceDirectory? directory = null, bool groupCommit = true)
    {
        var devices = new DeviceProjection(directory);
        return TestLedger.Store(dataSource, groupCommit, inline: [devices], hooks: [devices, new PushLogProjection()]);
    }

    public static ProjectionDaemon Daemon(EventStore store, EventNotifications notifications, ProjectionsOptions options, params IAsyncProjection[] projections) =>
        new(store, notifications, projections.Length > 0 ? projections : AsyncProjections(),
            Microsoft.Extensions.Options.Options.Create(options), NullLogger<ProjectionDaemon>.Instance);

    public static ProjectionRebuilder Rebuilder(EventStore store, ProjectionsOptions options) =>
        new(store, AsyncProjections(), Microsoft.Extensions.Options.Options.Create(options), NullLogger<ProjectionRebuilder>.Instance);

    public static DeviceDirectory Directory(NpgsqlDataSource dataSource, ProjectionsOptions? options = null) =>
        new(dataSource, TimeProvider.System, Microsoft.Extensions.Options.Options.Create(options ?? Options()), NullLogger<DeviceDirectory>.Instance);

    public static async Task<T> ScalarAsync<T>(NpgsqlDataSource dataSource, string sql, params object[] args)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return (T)(await cmd.ExecuteScalarAsync())!;
    }

    /// <summary>Every row of a query as text, in the query's order: equal snapshots mean equal tables.</summary>
    public static async Task<List<string>> RowsAsync(NpgsqlDataSource dataSource, string sql, params object[] args)
    {
        await using var cmd = dataSource.CreateCommand($"select t::text from ({sql}) t");
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        var rows = new List<string>();
        await using var reader = await cmd.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    public static async Task<DeviceRow?> DeviceAsync(NpgsqlDataSource dataSource, Guid id)
    {
        await using var cmd = dataSource.CreateCommand("""
            select mode, push_module, encrypted_token, secret_hash, registered_at, renewed_at, last_push_at, last_error_at,
                   last_error_reason, invalidated_at, apple_timestamp, rejected_at, unregistered_at, domains
            from devices where device_id = $1
            """);
        cmd.Parameters.Add(new() { Value = id });
        await using var r = await cmd.ExecuteReaderAsync();
        if (!await r.ReadAsync())
        {
            return null;
        }

        DateTimeOffset? At(int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);
        string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        return new DeviceRow(r.GetString(0), r.GetString(1), Text(2), Text(3), r.GetFieldValue<DateTimeOffset>(4), At(5), At(6), At(7),
            Text(8), At(9), At(10), At(11), At(12), r.GetFieldValue<string[]>(13));
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan? timeout = null, string? because = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting: {because}");
            }

            await Task.Delay(25);
        }
    }

    public static Task<long> CheckpointAsync(NpgsqlDataSource dataSource, string name) =>
        ScalarAsync<long>(dataSource, "select coalesce((select position from projection_checkpoints where name = $1), 0)", name);

    public static Task<long> HighWaterAsync(NpgsqlDataSource dataSource) =>
        ScalarAsync<long>(dataSource, "select greatest(coalesce((select max(seq) from events), 0), coalesce((select max(seq) from push_events), 0))");

    public static async Task WaitCaughtUpAsync(NpgsqlDataSource dataSource)
    {
        var high = await HighWaterAsync(dataSource);
        await WaitUntilAsync(
            async () => await CheckpointAsync(dataSource, "push_log") >= high,
            because: $"the daemon to reach {high}");
    }
}

internal sealed record DeviceRow(
    string Mode,
    string PushModule,
    string? EncryptedToken,
    string? SecretHash,
    DateTimeOffset RegisteredAt,
    DateTimeOffset? RenewedAt,
    DateTimeOffset? LastPushAt,
    DateTimeOffset? LastErrorAt,
    string? LastErrorReason,
    DateTimeOffset? InvalidatedAt,
    DateTimeOffset? AppleTimestamp,
    DateTimeOffset? RejectedAt,
    DateTimeOffset? UnregisteredAt,
    string[] Domains);
