using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Npgsql;

namespace Monal.Push.Ledger.Crypto;

/// <summary>The device's data key is gone: the device was erased, and what was encrypted with it is unreadable.</summary>
public sealed class DataKeyShreddedException(Guid deviceId)
    : CryptographicException($"The data key of device {deviceId} has been deleted; its personal fields are erased.")
{
    /// <summary>The erased device.</summary>
    public Guid DeviceId { get; } = deviceId;
}

/// <summary>
/// Per-device data keys for crypto-shredding: personal fields (the APNs token) are encrypted with the device's
/// own AES-256-GCM key before they reach an event or a read model. Keys are stored wrapped by the master key in
/// <c>data_keys</c>; deleting a device's row is what erases its token everywhere, backups included.
/// </summary>
public sealed class DataKeys(NpgsqlDataSource dataSource, MasterKey master, TimeProvider clock)
{
    private const string Prefix = "v1:";
    private readonly ConcurrentDictionary<Guid, byte[]> _cache = new();

    /// <summary>Encrypts a personal field with the device's key, creating the key if the device has none.</summary>
    public async Task<string> EncryptAsync(Guid deviceId, string plaintext, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        var key = await GetOrCreateAsync(deviceId, ct);
        return Prefix + Convert.ToBase64String(Aead.Seal(key, Encoding.UTF8.GetBytes(plaintext), deviceId));
    }

    /// <summary>Decrypts a field; throws <see cref="DataKeyShreddedException"/> when the device's key was deleted.</summary>
    public async Task<string> DecryptAsync(Guid deviceId, string ciphertext, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ciphertext);
        if (!ciphertext.StartsWith(Prefix, StringComparison.Ordinal))
        {
            throw new CryptographicException("Unknown ciphertext format.");
        }

        var key = await GetAsync(deviceId, ct) ?? throw new DataKeyShreddedException(deviceId);
        return Encoding.UTF8.GetString(Aead.Open(key, Convert.FromBase64String(ciphertext[Prefix.Length..]), deviceId));
    }

    /// <summary>Deletes the device's key (crypto-shredding). Returns whether a key existed.</summary>
    public async Task<bool> DeleteAsync(Guid deviceId, CancellationToken ct = default)
    {
        _cache.TryRemove(deviceId, out _);
        await using var cmd = dataSource.CreateCommand("delete from data_keys where device_id = $1");
        cmd.Parameters.Add(new() { Value = deviceId });
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    /// <summary>Forgets a cached key (another process may have shredded it).</summary>
    public void Forget(Guid deviceId) => _cache.TryRemove(deviceId, out _);

    private async Task<byte[]?> GetAsync(Guid deviceId, CancellationToken ct)
    {
        if (_cache.TryGetValue(deviceId, out var cached))
        {
            return cached;
        }

        await using var cmd = dataSource.CreateCommand("select wrapped_key from data_keys where device_id = $1");
        cmd.Parameters.Add(new() { Value = deviceId });
        if (await cmd.ExecuteScalarAsync(ct) is not byte[] wrapped)
        {
            return null;
        }

        var key = master.Unwrap(deviceId, wrapped);
        _cache[deviceId] = key;
        return key;
    }

    private async Task<byte[]> GetOrCreateAsync(Guid deviceId, CancellationToken ct)
    {
        if (_cache.TryGetValue(deviceId, out var cached))
        {
            return cached;
        }

        // One round trip: insert a fresh key unless the device has one, and read back whichever is stored (ours
        // through RETURNING, an older one through the select; both share the statement's snapshot, so exactly one
        // of them answers). The key's commit need not wait for its own WAL flush: nothing stored under it is
        // acknowledged until a later synchronous commit (the append of the event that carries the ciphertext),
        // and flushing that commit flushes this earlier one too. A crash before then loses only an unused key.
        var key = RandomNumberGenerator.GetBytes(32);
        await using (var batch = dataSource.CreateBatch())
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand("set local synchronous_commit = off"));
            var upsert = new NpgsqlBatchCommand("""
                with ins as (
                    insert into data_keys (device_id, wrapped_key, created_at) values ($1, $2, $3)
                    on conflict (device_id) do nothing
                    returning wrapped_key
                )
                select wrapped_key from ins
                union all
                select wrapped_key from data_keys where device_id = $1
                """);
            upsert.Parameters.Add(new() { Value = deviceId });
            upsert.Parameters.Add(new() { Value = master.Wrap(deviceId, key) });
            upsert.Parameters.Add(new() { Value = clock.GetUtcNow() });
            batch.BatchCommands.Add(upsert);
            await using var reader = await batch.ExecuteReaderAsync(ct);
            do
            {
                // Skips the SET's empty result, whether or not the reader starts on it.
                if (reader.FieldCount > 0 && await reader.ReadAsync(ct))
                {
                    var stored = master.Unwrap(deviceId, reader.GetFieldValue<byte[]>(0));
                    _cache[deviceId] = stored;
                    return stored;
                }
            }
            while (await reader.NextResultAsync(ct));
        }

        // A concurrent creator committed its key after our snapshot was taken (our insert waited for it and did
        // nothing): a fresh statement sees it.
        return await GetAsync(deviceId, ct) ?? throw new InvalidOperationException("The data key vanished while it was being created.");
    }
}
