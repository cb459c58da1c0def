using System.Collections.Concurrent;
using System.Globalization;
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
/// Per-device data keys for crypto-shredding: personal fields (the APNs token, the secret) are encrypted with the
/// device's own AES-256-GCM key before they reach an event or a read model. Keys are stored wrapped by the master key
/// in <c>data_keys</c>; deleting a device's rows is what erases its token everywhere, backups included.
/// <para>
/// A device's key has generations (migrations/0007): <see cref="RotateAsync"/> makes the next one, new ciphertexts use
/// the newest, and <see cref="RetireSupersededAsync"/> deletes the ones older than the generation the device's current
/// token uses, so a token replaced by re-registration becomes unreadable wherever it is still stored. A ciphertext
/// names its generation: <c>v1:&lt;base64&gt;</c> is generation 1, <c>v2:&lt;n&gt;:&lt;base64&gt;</c> generation n.
/// </para>
/// </summary>
/// <para>
/// The unwrapped keys of at most <see cref="MaxCachedKeys"/> devices are cached (by default): beyond it an arbitrary tenth is forgotten (a later use unwraps the key again, one round trip), so memory does not grow with the number of devices
/// ever seen.
/// </para>
public sealed class DataKeys
{
    /// <summary>Devices whose unwrapped keys are kept in memory by default (about 0.16 KB each; a device usually has one key).</summary>
    public const int MaxCachedKeys = 200_000;

    /// <summary>Most keys one creating statement makes.</summary>
    internal const int MaxKeysPerStatement = 256;

    /// <summary>Key-creating statements in flight at once: while they run, the next creations gather.</summary>
    internal const int CreatingStatementsInFlight = 4;

    private const string PrefixV1 = "v1:";
    private const string PrefixV2 = "v2:";
    // One entry per device, holding every generation unwrapped so far (usually one): a single map instead of a map of
    // keys and a map of newest generations saves a dictionary node per device (docs/benchmarks.md, "Issue 16, sixth pass").
    private readonly ConcurrentDictionary<Guid, CachedKey> _keys = new();
    private readonly Lock _trimming = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly MasterKey _master;
    private readonly TimeProvider _clock;
    private readonly int _maxCachedKeys;
    // New keys are made in shared statements (docs/benchmarks.md, "Issue 16, eleventh pass"): up to
    // CreatingStatementsInFlight at once, so that a creation does not wait for another when the server is not busy.
    private readonly Gatherer<PendingKey> _creations;
    private int _cached;

    /// <summary>Keys stored in <paramref name="dataSource"/>'s data_keys, wrapped by <paramref name="master"/>.</summary>
    public DataKeys(NpgsqlDataSource dataSource, MasterKey master, TimeProvider clock, int maxCachedKeys = MaxCachedKeys)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        ArgumentNullException.ThrowIfNull(master);
        ArgumentNullException.ThrowIfNull(clock);
        _dataSource = dataSource;
        _master = master;
        _clock = clock;
        _maxCachedKeys = maxCachedKeys;
        _creations = new Gatherer<PendingKey>(MaxKeysPerStatement, CreatingStatementsInFlight, CreateBatchAsync,
            static (p, e) => p.Completion.TrySetException(e));
    }

    /// <summary>Encrypts a personal field with the device's newest key, creating the key if the device has none.</summary>
    public async Task<string> EncryptAsync(Guid deviceId, string plaintext, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(plaintext);
        var (generation, key) = await GetOrCreateAsync(deviceId, ct);
        var sealedText = Convert.ToBase64String(Aead.Seal(key, Encoding.UTF8.GetBytes(plaintext), deviceId));
        return generation == 1
            ? PrefixV1 + sealedText
            : string.Create(CultureInfo.InvariantCulture, $"{PrefixV2}{generation}:{sealedText}");
    }

    /// <summary>
    /// Decrypts a field; throws <see cref="DataKeyShreddedException"/> when the key it was made with was deleted (the
    /// device was erased, or the field is a token replaced since).
    /// </summary>
    public async Task<string> DecryptAsync(Guid deviceId, string ciphertext, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(ciphertext);
        var (generation, body) = Parse(ciphertext);
        var key = await GetAsync(deviceId, generation, ct) ?? throw new DataKeyShreddedException(deviceId);
        return Encoding.UTF8.GetString(Aead.Open(key, Convert.FromBase64String(body), deviceId));
    }

    /// <summary>
    /// Makes the device's next key generation, which the following <see cref="EncryptAsync"/> calls use. Older
    /// generations stay readable until <see cref="RetireSupersededAsync"/>, so a failed append loses nothing.
    /// </summary>
    public async Task RotateAsync(Guid deviceId, CancellationToken ct = default)
    {
        for (var attempt = 0; ; attempt++)
        {
            var key = RandomNumberGenerator.GetBytes(32);
            await using var cmd = _dataSource.CreateCommand("""
                insert into data_keys (device_id, generation, wrapped_key, created_at)
                select $1, coalesce(max(generation), 0) + 1, $2, $3 from data_keys where device_id = $1
                returning generation
                """);
            cmd.Parameters.Add(new() { Value = deviceId });
            cmd.Parameters.Add(new() { Value = _master.Wrap(deviceId, key) });
            cmd.Parameters.Add(new() { Value = _clock.GetUtcNow() });
            try
            {
                var generation = (int)(await cmd.ExecuteScalarAsync(ct))!;
                Remember(deviceId, generation, key, newest: true);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && attempt < 3)
            {
                // Another rotation took that generation a moment ago: take the next one.
            }
        }
    }

    /// <summary>
    /// Deletes the device's key generations older than the one its current token (devices row) is encrypted with:
    /// everything encrypted with them, in the live tables and in backups, becomes unreadable. Returns how many went.
    /// </summary>
    public async Task<long> RetireSupersededAsync(Guid deviceId, CancellationToken ct = default)
    {
        await using var cmd = _dataSource.CreateCommand("select monal_retire_data_keys($1)");
        cmd.Parameters.Add(new() { Value = deviceId });
        var retired = (long)(await cmd.ExecuteScalarAsync(ct))!;
        Forget(deviceId);
        return retired;
    }

    /// <summary>Deletes the device's keys, every generation (crypto-shredding). Returns whether a key existed.</summary>
    public async Task<bool> DeleteAsync(Guid deviceId, CancellationToken ct = default)
    {
        Forget(deviceId);
        await using var cmd = _dataSource.CreateCommand("delete from data_keys where device_id = $1");
        cmd.Parameters.Add(new() { Value = deviceId });
        return await cmd.ExecuteNonQueryAsync(ct) > 0;
    }

    /// <summary>Forgets the cached keys of a device (another process may have shredded or rotated them).</summary>
    public void Forget(Guid deviceId)
    {
        if (_keys.TryRemove(deviceId, out _))
        {
            Interlocked.Decrement(ref _cached);
        }
    }

    /// <summary>Statements that created keys so far (each for the creations that gathered; for tests).</summary>
    internal long CreatingStatements => _creations.Batches;

    /// <summary>Devices whose unwrapped keys are currently cached (for tests).</summary>
    internal int CachedKeys => Volatile.Read(ref _cached);

    private void Remember(Guid deviceId, int generation, byte[] key, bool newest)
    {
        if (Volatile.Read(ref _cached) >= _maxCachedKeys)
        {
            Trim();
        }

        while (true)
        {
            if (_keys.TryGetValue(deviceId, out var cached))
            {
                var updated = cached.With(generation, key, newest);
                if (ReferenceEquals(updated, cached) || _keys.TryUpdate(deviceId, updated, cached))
                {
                    return;
                }
            }
            else if (_keys.TryAdd(deviceId, new CachedKey(generation, key, newest, null)))
            {
                Interlocked.Increment(ref _cached);
                return;
            }
        }
    }

    // Forgets an arbitrary tenth of the devices. Their keys stay in the database; the next use unwraps them again.
    private void Trim()
    {
        lock (_trimming)
        {
            if (Volatile.Read(ref _cached) < _maxCachedKeys)
            {
                return;
            }

            foreach (var device in _keys.Keys.Take(Math.Max(1, _maxCachedKeys / 10)).ToList())
            {
                Forget(device);
            }
        }
    }

    private static (int Generation, string Body) Parse(string ciphertext)
    {
        if (ciphertext.StartsWith(PrefixV1, StringComparison.Ordinal))
        {
            return (1, ciphertext[PrefixV1.Length..]);
        }

        var colon = ciphertext.IndexOf(':', PrefixV2.Length);
        if (ciphertext.StartsWith(PrefixV2, StringComparison.Ordinal) && colon > 0
            && int.TryParse(ciphertext.AsSpan(PrefixV2.Length, colon - PrefixV2.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var generation)
            && generation > 1)
        {
            return (generation, ciphertext[(colon + 1)..]);
        }

        throw new CryptographicException("Unknown ciphertext format.");
    }

    private async Task<byte[]?> GetAsync(Guid deviceId, int generation, CancellationToken ct)
    {
        if (_keys.TryGetValue(deviceId, out var cached) && cached.Find(generation) is { } known)
        {
            return known;
        }

        await using var cmd = _dataSource.CreateCommand("select wrapped_key from data_keys where device_id = $1 and generation = $2");
        cmd.Parameters.Add(new() { Value = deviceId });
        cmd.Parameters.Add(new() { Value = generation });
        if (await cmd.ExecuteScalarAsync(ct) is not byte[] wrapped)
        {
            return null;
        }

        var key = _master.Unwrap(deviceId, wrapped);
        Remember(deviceId, generation, key, newest: false);
        return key;
    }

    private Task<(int Generation, byte[] Key)> GetOrCreateAsync(Guid deviceId, CancellationToken ct)
    {
        if (_keys.TryGetValue(deviceId, out var cached) && cached.IsNewest)
        {
            return Task.FromResult((cached.Generation, cached.Key));
        }

        var key = RandomNumberGenerator.GetBytes(32);
        var pending = new PendingKey(deviceId, _master.Wrap(deviceId, key));
        _creations.Add(pending);

        // A caller that gives up stops waiting; the statement goes on for the others in its batch.
        return ct.CanBeCanceled ? pending.Completion.Task.WaitAsync(ct) : pending.Completion.Task;
    }

    private async Task CreateBatchAsync(List<PendingKey> batch)
    {
        // One statement: insert generation 1 for each device that has no key, and read back each device's newest
        // stored key (ours through RETURNING, an existing one through the select; both share the statement's
        // snapshot, so exactly one of them answers for a device). The keys' commit need not wait for its own WAL
        // flush: nothing stored under them is acknowledged until a later synchronous commit (the append of the
        // event that carries the ciphertext), and flushing that commit flushes this earlier one too. A crash before
        // then loses only unused keys.
        var first = new Dictionary<Guid, PendingKey>(batch.Count);
        foreach (var p in batch)
        {
            first.TryAdd(p.DeviceId, p);
        }

        var found = new Dictionary<Guid, (int Generation, byte[] Key)>(first.Count);
        await using (var create = TransactionSetting.Batch(_dataSource, TransactionSetting.AsynchronousCommit(), """
                with r as (
                    select * from unnest($1::uuid[], $2::bytea[]) as r(device_id, wrapped_key)
                ), ins as (
                    insert into data_keys (device_id, generation, wrapped_key, created_at)
                    select r.device_id, 1, r.wrapped_key, $3 from r
                    where not exists (select 1 from data_keys k where k.device_id = r.device_id)
                    order by r.device_id
                    on conflict (device_id, generation) do nothing
                    returning device_id, generation, wrapped_key
                )
                select device_id, generation, wrapped_key from ins
                union all
                select k.device_id, k.generation, k.wrapped_key
                from r cross join lateral (
                    select device_id, generation, wrapped_key from data_keys k
                    where k.device_id = r.device_id order by generation desc limit 1) k
                """, out var upsert))
        {
            upsert.Parameters.Add(new() { Value = first.Keys.ToArray() });
            upsert.Parameters.Add(new() { Value = first.Values.Select(p => p.Wrapped).ToArray() });
            upsert.Parameters.Add(new() { Value = _clock.GetUtcNow() });
            await using var reader = await TransactionSetting.ReadAsync(create, CancellationToken.None);
            await ReadKeysAsync(reader, found);
        }

        if (found.Count < first.Count)
        {
            // A concurrent creator committed its key after our snapshot was taken (our insert waited for it and did
            // nothing): a fresh statement sees it.
            await using var latest = _dataSource.CreateCommand("""
                select distinct on (device_id) device_id, generation, wrapped_key from data_keys
                where device_id = any($1) order by device_id, generation desc
                """);
            latest.Parameters.Add(new() { Value = first.Keys.Where(d => !found.ContainsKey(d)).ToArray() });
            await using var reader = await latest.ExecuteReaderAsync(CancellationToken.None);
            await ReadKeysAsync(reader, found);
        }

        foreach (var p in batch)
        {
            if (found.TryGetValue(p.DeviceId, out var key))
            {
                p.Completion.TrySetResult(key);
            }
            else
            {
                p.Completion.TrySetException(new InvalidOperationException("The data key vanished while it was being created."));
            }
        }
    }

    private async Task ReadKeysAsync(NpgsqlDataReader reader, Dictionary<Guid, (int Generation, byte[] Key)> found)
    {
        while (await reader.ReadAsync(CancellationToken.None))
        {
            var deviceId = reader.GetGuid(0);
            var generation = reader.GetInt32(1);
            var key = _master.Unwrap(deviceId, reader.GetFieldValue<byte[]>(2));
            Remember(deviceId, generation, key, newest: true);
            found[deviceId] = (generation, key);
        }
    }

    private sealed class PendingKey(Guid deviceId, byte[] wrapped)
    {
        public Guid DeviceId { get; } = deviceId;

        public byte[] Wrapped { get; } = wrapped;

        public TaskCompletionSource<(int Generation, byte[] Key)> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>
    /// The unwrapped keys of one device, newest generation first, immutable (replaced as a whole, so readers never lock).
    /// Only the first may be marked <see cref="IsNewest"/>: known to be the generation new ciphertexts use.
    /// </summary>
    private sealed class CachedKey(int generation, byte[] key, bool isNewest, CachedKey? older)
    {
        public int Generation { get; } = generation;

        public byte[] Key { get; } = key;

        public bool IsNewest { get; } = isNewest;

        public CachedKey? Older { get; } = older;

        public byte[]? Find(int wanted)
        {
            for (var k = this; k is not null; k = k.Older)
            {
                if (k.Generation == wanted)
                {
                    return k.Key;
                }
            }

            return null;
        }

        /// <summary>This device's keys with <paramref name="added"/>'s generation too (this instance if nothing changes).</summary>
        public CachedKey With(int added, byte[] addedKey, bool newest)
        {
            if (newest)
            {
                return Generation == added && IsNewest ? this : new CachedKey(added, addedKey, true, Without(added));
            }

            return Find(added) is not null ? this : new CachedKey(Generation, Key, IsNewest, new CachedKey(added, addedKey, false, Older));
        }

        // The chain without the given generation (the newest moves to the front instead).
        private CachedKey? Without(int generation)
        {
            if (Generation == generation)
            {
                return Older?.Without(generation);
            }

            var rest = Older?.Without(generation);
            return ReferenceEquals(rest, Older) && !IsNewest ? this : new CachedKey(Generation, Key, false, rest);
        }
    }
}
