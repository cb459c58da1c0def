using Microsoft.Extensions.Logging;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Events;
using Monal.Push.Purge.Locating;
using Npgsql;

namespace Monal.Push.Purge.Erasing;

/// <summary>
/// Erases a device: crypto-shreds its data key and hard-deletes its events and stream with
/// EventStore.DeleteStreamAsync, whose deletion hooks remove the read-model rows in the same transaction (devices and
/// push_log by Monal.Push.Projections, push_queue by Monal.Push.Delivery). A <see cref="DeviceErased"/> receipt
/// without personal data goes to the Gdpr system stream. Used by `gdpr erase` and by the invalid-token job.
/// </summary>
/// <remarks>
/// The receipt counts what was held just before the delete, all tables in one statement (one snapshot).
/// DeleteStreamAsync does not report what its hooks deleted, so a push-log row the async projection adds between
/// the count and the delete is deleted but not counted. Queue rows and throttle state that outlive the stream
/// (a host that did not compose Delivery's hook, such as the admin verbs) are removed afterwards: they are keyed by
/// the device UUID, and a queued push of an erased device would otherwise be sent and re-create its stream.
/// </remarks>
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

    /// <summary>Cause recorded for a token Apple declared invalid (410).</summary>
    public const string CauseInvalidToken = "invalid-token";

    /// <summary>Cause recorded for a token Apple rejected for its topic or environment (400 BadDeviceToken, DeviceTokenNotForTopic).</summary>
    public const string CauseRejectedToken = "rejected-token";

    /// <summary>Cause recorded for a registration the device ended (v1 unregister, HTTP or ad-hoc).</summary>
    public const string CauseUnregistered = "unregistered";

    // Category -> count expression, for the receipt and the export's "stored in". $1 is the device UUID.
    private static readonly (string Category, string Sql)[] Held =
    [
        ("events", "select count(*) from events where stream_id = $1"),
        ("push_events", "select count(*) from push_events where stream_id = $1"),
        ("streams", "select count(*) from streams where id = $1"),
        ("data_keys", "select count(*) from data_keys where device_id = $1"),
        (ReadModelTables.Devices, "select count(*) from devices where device_id = $1"),
        (ReadModelTables.PushLog, "select count(*) from push_log where device_id = $1"),
        (ReadModelTables.PushQueue, "select count(*) from push_queue where device_id = $1"),
        (ReadModelTables.DeadTokens, "select count(*) from dead_tokens where device_id = $1"),
    ];

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

    /// <summary>
    /// Erases one device (or, with <paramref name="dryRun"/>, counts what would go). With <paramref name="onlyIf"/>
    /// (a SQL condition over <c>$1</c>, the device id, checked under the stream's lock) the device is left alone when
    /// the condition no longer holds, e.g. it registered again since it was picked: the receipt then deletes nothing.
    /// </summary>
    public async Task<EraseReceipt> EraseDeviceAsync(Guid deviceId, string cause, bool dryRun, CancellationToken ct, string? onlyIf = null)
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
        if (await store.DeleteStreamAsync(deviceId, onlyIf, ct) < 0)
        {
            return new EraseReceipt(Guid.Empty, cause, now, false, new SortedDictionary<string, long>(StringComparer.Ordinal));
        }

        dataKeys.Forget(deviceId);
        foreach (var (table, rows) in await DeleteLeftoversAsync(deviceId, cause, ct))
        {
            deleted[table] = Math.Max(rows, deleted.GetValueOrDefault(table));
        }

        if (!deleted.Values.Any(v => v > 0))
        {
            return new EraseReceipt(Guid.Empty, cause, now, false, deleted);
        }

        var receipt = new EraseReceipt(Guid.CreateVersion7(), cause, now, false, deleted);
        await store.AppendAsync(
            SystemStreams.Gdpr,
            StreamTypes.System,
            ExpectedVersion.Any,
            [new DeviceErased(receipt.ReceiptId, cause, new Dictionary<string, long>(deleted, StringComparer.Ordinal), now)],
            ct: CancellationToken.None);
        Log.DeviceErased(logger, keyedHash.Redact(deviceId), cause, receipt.ReceiptId);
        return receipt;
    }

    /// <summary>
    /// Where the device's data is held: rows per table (events, push_events, streams, data_keys, devices, push_log,
    /// push_queue, and throttle_state where that table exists).
    /// </summary>
    public async Task<IReadOnlyDictionary<string, long>> InventoryAsync(Guid deviceId, CancellationToken ct) =>
        await CountAsync(deviceId, ct);

    private async Task<SortedDictionary<string, long>> CountAsync(Guid deviceId, CancellationToken ct)
    {
        var held = Held.ToList();
        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.ThrottleState, ct))
        {
            held.Add((ReadModelTables.ThrottleState, "select count(*) from throttle_state where device_id = $1"));
        }

        // One statement, so every count comes from the same snapshot.
        await using var cmd = dataSource.CreateCommand("select " + string.Join(", ", held.Select(h => $"({h.Sql})")));
        cmd.Parameters.Add(new() { Value = deviceId });
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var counts = new SortedDictionary<string, long>(StringComparer.Ordinal);
        for (var i = 0; i < held.Count; i++)
        {
            counts[held[i].Category] = reader.GetInt64(i);
        }

        return counts;
    }

    private async Task<List<(string Table, long Rows)>> DeleteLeftoversAsync(Guid deviceId, string cause, CancellationToken ct)
    {
        var tables = new List<string> { ReadModelTables.PushQueue };
        if (cause == CauseRequest)
        {
            // The keyed id of a dead token outlives the device so a publish cannot create it again; the data subject's
            // erasure takes it too (at worst Apple is asked once more and declares the token dead again).
            tables.Add(ReadModelTables.DeadTokens);
        }

        if (await ReadModelTables.ExistsAsync(dataSource, ReadModelTables.ThrottleState, ct))
        {
            tables.Add(ReadModelTables.ThrottleState);
        }

        var result = new List<(string, long)>();
        await using var connection = await dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        foreach (var table in tables)
        {
            await using var cmd = new NpgsqlCommand($"delete from {table} where device_id = $1", connection, tx);
            cmd.Parameters.Add(new() { Value = deviceId });
            result.Add((table, await cmd.ExecuteNonQueryAsync(ct)));
        }

        await tx.CommitAsync(ct);
        return result;
    }
}
