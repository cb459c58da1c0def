using Monal.Push.Ledger;
using Monal.Push.Ledger.Events;
using Npgsql;

namespace Monal.Push.Projections.Devices;

/// <summary>
/// Reads devices from the <c>devices</c> table for <see cref="DeviceDirectory"/>'s cache misses, many in one round trip:
/// lookups queue here and a couple of readers each take whatever queued while their previous read ran (as group
/// commit does for appends). Idle, a lookup is read alone at once; busy, the misses of hundreds of concurrent
/// publishes share a few statements instead of taking a connection and a round trip each, which on a busy server was
/// most of the round trips PostgreSQL served (docs/benchmarks.md, "Issue 16, seventh pass").
/// </summary>
internal sealed class DeviceLoader : IAsyncDisposable
{
    /// <summary>Most devices one statement reads.</summary>
    internal const int MaxBatch = 256;

    /// <summary>Statements in flight at once: while one reads, the next batch gathers.</summary>
    internal const int Readers = 2;

    private const string SelectSql = """
        select device_id, mode, push_module, encrypted_token, secret_hash, registered_at, renewed_at,
               invalidated_at, apple_timestamp, rejected_at, unregistered_at
        from devices where device_id = any($1)
        """;

    private readonly NpgsqlDataSource _dataSource;
    private readonly Gatherer<Pending> _reads;
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationToken _stopping;

    public DeviceLoader(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _stopping = _stop.Token;
        _reads = new Gatherer<Pending>(MaxBatch, Readers, ReadBatchAsync, static (p, e) => p.Completion.TrySetException(e));
    }

    /// <summary>Statements run so far (each reads one batch).</summary>
    public long Statements => _reads.Batches;

    /// <summary>The device's row, or null when there is none. Completes when the batch it joined was read.</summary>
    public Task<DeviceState?> LoadAsync(Guid deviceId, CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(_stopping.IsCancellationRequested, this);
        var pending = new Pending(deviceId);
        _reads.Add(pending);

        // A caller that gives up stops waiting; the read itself goes on for the others in its batch.
        return ct.CanBeCanceled ? pending.Completion.Task.WaitAsync(ct) : pending.Completion.Task;
    }

    private async Task ReadBatchAsync(List<Pending> batch)
    {
        var found = await ReadAsync([.. batch.Select(p => p.DeviceId).Distinct()], _stopping);
        foreach (var p in batch)
        {
            p.Completion.TrySetResult(found.GetValueOrDefault(p.DeviceId));
        }
    }

    private async Task<Dictionary<Guid, DeviceState>> ReadAsync(Guid[] ids, CancellationToken ct)
    {
        var found = new Dictionary<Guid, DeviceState>(ids.Length);
        await using var cmd = _dataSource.CreateCommand(SelectSql);
        cmd.Parameters.Add(new() { Value = ids });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var state = new DeviceState(
                reader.GetGuid(0),
                DeviceModes.Parse(reader.GetString(1)),
                reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetFieldValue<DateTimeOffset>(5),
                Nullable(reader, 6),
                Nullable(reader, 7),
                Nullable(reader, 8),
                Nullable(reader, 9),
                Nullable(reader, 10));
            found[state.DeviceId] = state;
        }

        return found;
    }

    private static DateTimeOffset? Nullable(NpgsqlDataReader reader, int i) =>
        reader.IsDBNull(i) ? null : reader.GetFieldValue<DateTimeOffset>(i);

    /// <summary>Ends the reads in flight (their lookups fail) and refuses new ones.</summary>
    public ValueTask DisposeAsync()
    {
        // Reads that start after this see the cancelled token and fail at once; the token stays readable after the
        // source is disposed.
        _stop.Cancel();
        _stop.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class Pending(Guid deviceId)
    {
        public Guid DeviceId { get; } = deviceId;

        public TaskCompletionSource<DeviceState?> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
