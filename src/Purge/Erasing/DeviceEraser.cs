using Microsoft.Extensions.Logging;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.Exporting;
using Monal.Push.Purge.Scheduling;
using Npgsql;

namespace Monal.Push.Purge.Erasing;

/// <summary>
/// Erases a device: crypto-shreds its data key and hard-deletes its events and stream (EventStore.DeleteStreamAsync,
/// which also runs the registered deletion hooks), then its read-model rows (devices, push_log) and throttle state,
/// whether or not a hook already did. A <see cref="DeviceErased"/> receipt without personal data goes to the Gdpr
/// system stream. Used by `gdpr erase` and by the invalid-token job.
/// </summary>
public sealed class DeviceEraser(
    NpgsqlDataSource dataSource,
    EventStore store,
    DataKeys dataKeys,
    KeyedHash keyedHash,
    DeviceLocator locator,
    TimeProvider clock,
    ILogger<DeviceEraser> logger)
{
    /// <summary>Cause recorded for an erasure a data subject asked for.</summary>
    public const string CauseRequest = "gdpr-request";

    /// <summary>Cause recorded for a token Apple declared invalid.</summary>
    public const string CauseInvalidToken = "invalid-token";

    private static readonly string[] DeviceTables = [ReadModelTables.Devices, ReadModelTables.PushLog, ReadModelTables.ThrottleState];

    /// <summary>
    /// `gdpr erase --node N | --token T [--dry-run]`: erases every device the query finds (a token can name a
    /// stateless device per push module and a registered one) and returns one receipt per device; empty when
    /// nothing is held.
    /// </summary>
    public async Task<IReadOnlyList<EraseReceipt>> EraseAsync(SubjectQuery query, bool dryRun, CancellationToken ct)
    {
        var receipts = new List<EraseReceipt>();
        foreach (var id in await locator.LocateAsync(query, ct))
        {
            receipts.Add(await EraseDeviceAsync(id, CauseRequest, dryRun, ct));
        }

        return receipts;
    }

    /// <summary>Erases one device (or, with <paramref name="dryRun"/>, counts what would go).</summary>
    public async Task<EraseReceipt> EraseDeviceAsync(Guid deviceId, string cause, bool dryRun, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrEmpty(cause);
        var now = clock.GetUtcNow();
        var counts = await CountAsync(deviceId, ct);
        if (dryRun)
        {
            return new EraseReceipt(Guid.Empty, cause, now, true, counts);
        }

        // The key goes first inside DeleteStreamAsync: once it is gone every copy of the token is unreadable, even
        // if what follows fails and is retried.
        var deleted = new SortedDictionary<string, long>(counts, StringComparer.Ordinal);
        await store.DeleteStreamAsync(deviceId, ct);
        dataKeys.Forget(deviceId);
        foreach (var (table, rows) in await DeleteReadModelsAsync(deviceId, ct))
        {
            // A deletion hook may have removed them already; the receipt says what was held.
            deleted[table] = Math.Max(rows, deleted.GetValueOrDefault(table));
        }

        if (!deleted.Values.Any(v => v > 0))
        {
            return new EraseReceipt(Guid.Empty, cause, now, false, deleted);
        }

        var receipt = new EraseReceipt(Guid.CreateVersion7(), cause, now, false, deleted);
        await store.AppendAsync(
            SystemStreams.Gdpr,
            RetentionJobs.SystemStreamType,
            ExpectedVersion.Any,
            [new DeviceErased(receipt.ReceiptId, cause, new Dictionary<string, long>(deleted, StringComparer.Ordinal), now)],
            ct: CancellationToken.None);
        Log.DeviceErased(logger, keyedHash.Redact(deviceId), cause, receipt.ReceiptId);
        return receipt;
    }

    /// <summary>Where the device's data is held: rows per table (events, push_events, streams, data_keys, read models).</summary>
    public async Task<IReadOnlyDictionary<string, long>> InventoryAsync(Guid deviceId, CancellationToken ct) =>
        await CountAsync(deviceId, ct);

    private async Task<SortedDictionary<string, long>> CountAsync(Guid deviceId, CancellationToken ct)
    {
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal)
        {
            ["events"] = await CountAsync("select count(*) from events where stream_id = $1", deviceId, ct),
            ["push_events"] = await CountAsync("select count(*) from push_events where stream_id = $1", deviceId, ct),
            ["streams"] = await CountAsync("select count(*) from streams where id = $1", deviceId, ct),
            ["data_keys"] = await CountAsync("select count(*) from data_keys where device_id = $1", deviceId, ct),
        };
        foreach (var table in DeviceTables)
        {
            if (await ReadModelTables.ExistsAsync(dataSource, table, ct))
            {
                counts[table] = await CountAsync($"select count(*) from {table} where device_id = $1", deviceId, ct);
            }
        }

        return counts;
    }

    private async Task<long> CountAsync(string sql, Guid deviceId, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        cmd.Parameters.Add(new() { Value = deviceId });
        return (long)(await cmd.ExecuteScalarAsync(ct))!;
    }

    private async Task<List<(string Table, long Rows)>> DeleteReadModelsAsync(Guid deviceId, CancellationToken ct)
    {
        var tables = new List<string>();
        foreach (var table in DeviceTables)
        {
            if (await ReadModelTables.ExistsAsync(dataSource, table, ct))
            {
                tables.Add(table);
            }
        }

        var result = new List<(string, long)>();
        if (tables.Count == 0)
        {
            return result;
        }

        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        foreach (var table in tables)
        {
            await using var cmd = new NpgsqlCommand($"delete from {table} where device_id = $1", connection, tx);
            cmd.Parameters.Add(new() { Value = deviceId });
            var rows = await cmd.ExecuteNonQueryAsync(ct);
            result.Add((table, rows));
        }

        await tx.CommitAsync(ct);
        return result;
    }
}
