using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Projections.Devices;

/// <summary>
/// Looks devices up for the ingest gateway and the dispatcher, with a small in-memory cache in front of the
/// <c>devices</c> table.
/// </summary>
/// <remarks>
/// The database is the authority and the cache only a fast path. What makes a stale "active" harmless is the
/// append itself: DeviceProjection refuses a PushRequested to a device that is not active inside the append's
/// transaction (SQLSTATE MPG01), after waiting for the device's stream lock, so a publish that races an erase or an
/// invalidation is never acknowledged, whatever any cache said. The cache still tries hard never to answer "active"
/// for a device that is no longer:
/// <list type="bullet">
/// <item>every lifecycle change and every erase NOTIFYs <see cref="NotifyChannel"/> in its own transaction, and every
/// process LISTENs and evicts the device (PostgreSQL delivers the notification right after the commit);</item>
/// <item>this process's own inline projection evicts the device while it builds the append;</item>
/// <item>a load that overlaps any eviction is not kept (the epoch check below), so a read that started before a
/// commit cannot re-insert the old state after the notification was handled;</item>
/// <item>while the LISTEN connection is down (notifications may be lost) nothing is served from the cache, and the
/// cache is emptied when it comes back;</item>
/// <item>and every entry expires after a TTL (<see cref="ProjectionsOptions.DeviceCacheTtl"/>, 30 s; 2 s for a device that
/// is not active), which bounds what a half-open connection could hide.</item>
/// </list>
/// An unknown device is never cached: it is asked of the database each time, so that a device created by another
/// process (whose first publish does not NOTIFY, for the sake of group commit) is seen at once.
/// The cache is bounded (<see cref="ProjectionsOptions.DeviceCacheSize"/> devices, about 0.4 KB each). Misses are read
/// through <see cref="DeviceLoader"/>, which reads the misses of concurrent lookups in one statement; each read begins
/// after its lookup took the epoch, so the epoch check holds for a batch as for a single read.
/// </remarks>
public sealed class DeviceDirectory : IAsyncDisposable
{
    /// <summary>The channel on which device changes and erasures are announced (payload: the device UUID, or *).</summary>
    public const string NotifyChannel = "monal_devices";

    private readonly NpgsqlDataSource _dataSource;
    private readonly DeviceLoader _loader;
    private readonly TimeProvider _clock;
    private readonly ILogger<DeviceDirectory> _logger;
    private readonly TimeSpan _ttl;
    private readonly int _maxEntries;
    private readonly ConcurrentDictionary<Guid, Entry> _cache = new();
    private readonly ConcurrentDictionary<string, string> _modules = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly object _gate = new();
    private Task? _listener;
    // Eviction counters: one for "everything" and one per stripe of devices, so that a load is discarded only when
    // its own device (or one sharing its stripe) was evicted meanwhile, not whenever any device changed somewhere.
    private const int Stripes = 4096;
    private static readonly TimeSpan InactiveTtl = TimeSpan.FromSeconds(2);
    private readonly long[] _stripes = new long[Stripes];
    private long _epoch;
    private int _count;
    private volatile bool _listening;

    /// <summary>Creates the directory; it starts listening on first use.</summary>
    public DeviceDirectory(NpgsqlDataSource dataSource, TimeProvider clock, IOptions<ProjectionsOptions> options, ILogger<DeviceDirectory> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _dataSource = dataSource;
        _loader = new DeviceLoader(dataSource);
        _clock = clock;
        _logger = logger;
        _ttl = options.Value.DeviceCacheTtl;
        _maxEntries = Math.Max(1, options.Value.DeviceCacheSize);
    }

    /// <summary>True while device changes are being received (the cache is in use).</summary>
    public bool IsListening => _listening;

    /// <summary>Statements that read devices from the database so far (cache misses, read in batches).</summary>
    internal long Reads => _loader.Statements;

    /// <summary>Devices currently cached.</summary>
    public int CachedCount => _cache.Count;

    /// <summary>The device, or null when it is unknown (never registered, or erased).</summary>
    public async Task<DeviceState?> GetAsync(Guid deviceId, CancellationToken ct = default)
    {
        EnsureListening();
        if (_listening && _cache.TryGetValue(deviceId, out var hit) && _clock.GetElapsedTime(hit.LoadedAt) is var age && age < _ttl)
        {
            // A device that is not active may become active again (registered anew); its entry is trusted only briefly,
            // so a lost notification cannot make us answer item-not-found (which makes a server drop the registration)
            // for longer than that.
            var cached = hit.ToState(deviceId);
            if (cached.IsActive || age < InactiveTtl)
            {
                return cached;
            }
        }

        var epoch = Epoch(deviceId);
        var started = _clock.GetTimestamp();
        var state = await _loader.LoadAsync(deviceId, ct);
        if (state is not null)
        {
            // Only found devices are kept: a device created a moment later is then never hidden by a cached "unknown",
            // so its creation needs no announcement (migrations/0010_quiet_stateless_creation.sql).
            if (!TryRenew(deviceId, state, started, epoch))
            {
                Remember(deviceId, new Entry(Intern(state), started), epoch);
            }
        }

        return state;
    }

    /// <summary>Forgets one device (its state changed or it was erased).</summary>
    internal void Evict(Guid deviceId)
    {
        Interlocked.Increment(ref _stripes[Stripe(deviceId)]);
        if (_cache.TryRemove(deviceId, out _))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    /// <summary>Forgets every device.</summary>
    internal void EvictAll()
    {
        Interlocked.Increment(ref _epoch);
        _cache.Clear();
        Interlocked.Exchange(ref _count, 0);
    }

    /// <summary>Caches a state as if it had just been loaded (for memory measurements).</summary>
    internal void Seed(DeviceState state) =>
        Remember(state.DeviceId, new Entry(Intern(state), _clock.GetTimestamp()), Epoch(state.DeviceId), force: true);

    private static int Stripe(Guid deviceId) => deviceId.GetHashCode() & (Stripes - 1);

    // What a load of this device must find unchanged to be kept: the all-devices counter and its stripe's.
    private (long All, long Stripe) Epoch(Guid deviceId) =>
        (Interlocked.Read(ref _epoch), Interlocked.Read(ref _stripes[Stripe(deviceId)]));

    // A reload that found what the expired entry holds renews that entry in place instead of caching a new one. On a
    // busy server most reloads find nothing changed, and a new entry per reload is a few hundred bytes that outlive
    // the next collection of the youngest generation: copying them was most of its pause (docs/benchmarks.md).
    private bool TryRenew(Guid deviceId, DeviceState state, long loadedAt, (long All, long Stripe) epoch)
    {
        if (!_listening || !_cache.TryGetValue(deviceId, out var entry) || !entry.Holds(state) || Epoch(deviceId) != epoch)
        {
            return false;
        }

        entry.Renew(loadedAt);

        // As in Remember: an eviction since the load began may have missed the renewal; take the entry out.
        if ((Epoch(deviceId) != epoch || !_listening) && _cache.TryRemove(KeyValuePair.Create(deviceId, entry)))
        {
            Interlocked.Decrement(ref _count);
        }

        return true;
    }

    private void Remember(Guid deviceId, Entry entry, (long All, long Stripe) epoch, bool force = false)
    {
        if (!_listening && !force)
        {
            return;
        }

        if (Volatile.Read(ref _count) >= _maxEntries)
        {
            Sweep();
        }

        if (_cache.TryAdd(deviceId, entry))
        {
            Interlocked.Increment(ref _count);
        }
        else
        {
            _cache[deviceId] = entry;
        }

        // Evictions increment the epoch (EvictAll) or the device's stripe (Evict) before they remove. If one happened
        // since the load began, the loaded state may predate it: take the entry back out (either we see the new epoch
        // here, or the eviction runs after our insert and removes it itself).
        if (!force && (Epoch(deviceId) != epoch || !_listening) && _cache.TryRemove(KeyValuePair.Create(deviceId, entry)))
        {
            Interlocked.Decrement(ref _count);
        }
    }

    private void Sweep()
    {
        lock (_gate)
        {
            if (Volatile.Read(ref _count) < _maxEntries)
            {
                return;
            }

            foreach (var (id, e) in _cache)
            {
                if (_clock.GetElapsedTime(e.LoadedAt) >= _ttl)
                {
                    _cache.TryRemove(id, out _);
                }
            }

            // Still full of fresh entries: drop an arbitrary tenth. Entries live for seconds, so recency hardly matters.
            var target = _maxEntries - Math.Max(1, _maxEntries / 10);
            if (_cache.Count > target)
            {
                foreach (var id in _cache.Keys.Take(_cache.Count - target).ToList())
                {
                    _cache.TryRemove(id, out _);
                }
            }

            Interlocked.Exchange(ref _count, _cache.Count);
        }
    }

    // Push module names repeat across every device: share one string per name.
    private DeviceState Intern(DeviceState state) =>
        _modules.Count < 1024 ? state with { PushModule = _modules.GetOrAdd(state.PushModule, state.PushModule) } : state;

    private void EnsureListening()
    {
        if (_listener is not null)
        {
            return;
        }

        lock (_gate)
        {
            _listener ??= Task.Run(() => ListenAsync(_stop.Token), CancellationToken.None);
        }
    }

    private void OnNotification(string payload)
    {
        if (Guid.TryParse(payload, out var id))
        {
            Evict(id);
        }
        else
        {
            EvictAll();
        }
    }

    private async Task ListenAsync(CancellationToken ct)
    {
        var backoff = Backoff.ForDatabase();
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(ct);
                connection.Notification += (_, e) => OnNotification(e.Payload);
                await using (var listen = new NpgsqlCommand($"listen {NotifyChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(ct);
                }

                // Whatever changed while nobody listened is unknown: start empty.
                EvictAll();
                _listening = true;
                backoff.Reset();
                Log.DirectoryListening(_logger);
                while (!ct.IsCancellationRequested)
                {
                    if (!await connection.WaitAsync(TimeSpan.FromSeconds(15), ct))
                    {
                        // A quiet channel: prove the connection is still alive.
                        await using var ping = new NpgsqlCommand("select 1", connection);
                        await ping.ExecuteNonQueryAsync(ct);
                    }
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The listener outlives any failure (issue 15): a pool timeout surfaces as a cancellation.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                _listening = false;
                EvictAll();
                Log.DirectoryListenerLost(_logger, TransientFaults.Describe(ex));
                await Task.Delay(backoff.Next(), ct).ContinueWith(_ => { }, TaskScheduler.Default);
            }
            finally
            {
                _listening = false;
            }
        }
    }

    /// <summary>Stops listening.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_listener is not null)
        {
            await _listener.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        await _loader.DisposeAsync();
        _stop.Dispose();
    }

    /// <summary>
    /// A cached lookup, stored compactly (under 0.4 KB per device instead of 0.65 KB as a DeviceState): UTF-8 bytes for
    /// the token and secret hash, ticks for the timestamps, and the four times that end a device's pushes held apart. A
    /// hit builds a fresh DeviceState, a few hundred bytes of short-lived garbage, which is cheaper than holding every
    /// cached device at twice the size.
    /// </summary>
    private sealed class Entry
    {
        private readonly string _pushModule;
        private readonly byte[]? _token;
        private readonly byte[]? _secret;
        private readonly long _registered;
        private readonly long _renewed;
        private readonly Ended? _ended;
        private readonly DeviceMode _mode;

        private long _loadedAt;

        public Entry(DeviceState state, long loadedAt)
        {
            _loadedAt = loadedAt;
            _pushModule = state.PushModule;
            _mode = state.Mode;
            _token = state.EncryptedToken is null ? null : System.Text.Encoding.UTF8.GetBytes(state.EncryptedToken);
            _secret = state.SecretHash is null ? null : System.Text.Encoding.UTF8.GetBytes(state.SecretHash);
            _registered = state.RegisteredAt.UtcTicks;
            _renewed = Ticks(state.RenewedAt);
            _ended = Ended.Of(state);
        }

        public long LoadedAt => Volatile.Read(ref _loadedAt);

        /// <summary>Marks the entry as loaded again at <paramref name="loadedAt"/> (never moving it back in time).</summary>
        public void Renew(long loadedAt)
        {
            var seen = Volatile.Read(ref _loadedAt);
            while (loadedAt > seen && Interlocked.CompareExchange(ref _loadedAt, loadedAt, seen) is var was && was != seen)
            {
                seen = was;
            }
        }

        /// <summary>True when the entry holds exactly this state (compared field by field, without allocating).</summary>
        public bool Holds(DeviceState state) =>
            state.Mode == _mode
            && string.Equals(state.PushModule, _pushModule, StringComparison.Ordinal)
            && SameText(_token, state.EncryptedToken)
            && SameText(_secret, state.SecretHash)
            && state.RegisteredAt.UtcTicks == _registered
            && Ticks(state.RenewedAt) == _renewed
            && Ended.Same(_ended, state);

        public DeviceState ToState(Guid deviceId) => new(
            deviceId,
            _mode,
            _pushModule,
            _token is null ? null : System.Text.Encoding.UTF8.GetString(_token),
            _secret is null ? null : System.Text.Encoding.UTF8.GetString(_secret),
            new DateTimeOffset(_registered, TimeSpan.Zero),
            Time(_renewed),
            Time(_ended?.Invalidated ?? 0),
            Time(_ended?.Apple ?? 0),
            Time(_ended?.Rejected ?? 0),
            Time(_ended?.Unregistered ?? 0));

        // The stored UTF-8 against the text, for ASCII text (tokens and hashes are base64 and hex); any other character
        // counts as a difference, which only costs a new entry.
        private static bool SameText(byte[]? utf8, string? text)
        {
            if (utf8 is null || text is null)
            {
                return utf8 is null && text is null;
            }

            if (utf8.Length != text.Length)
            {
                return false;
            }

            for (var i = 0; i < text.Length; i++)
            {
                if (text[i] >= 0x80 || utf8[i] != text[i])
                {
                    return false;
                }
            }

            return true;
        }

        // Ticks of a UTC time are never 0 for a real event, so 0 stands for "none".
        private static long Ticks(DateTimeOffset? t) => t?.UtcTicks ?? 0;

        private static DateTimeOffset? Time(long ticks) => ticks == 0 ? null : new DateTimeOffset(ticks, TimeSpan.Zero);

        /// <summary>
        /// The times that end a device's pushes, which most devices never have: held apart, so that an active device's
        /// entry carries one null reference instead of four empty times.
        /// </summary>
        private sealed record Ended(long Invalidated, long Apple, long Rejected, long Unregistered)
        {
            public static Ended? Of(DeviceState state) =>
                state.InvalidatedAt is null && state.AppleTimestamp is null && state.RejectedAt is null && state.UnregisteredAt is null
                    ? null
                    : new Ended(Ticks(state.InvalidatedAt), Ticks(state.AppleTimestamp), Ticks(state.RejectedAt), Ticks(state.UnregisteredAt));

            public static bool Same(Ended? ended, DeviceState state) =>
                Ticks(state.InvalidatedAt) == (ended?.Invalidated ?? 0)
                && Ticks(state.AppleTimestamp) == (ended?.Apple ?? 0)
                && Ticks(state.RejectedAt) == (ended?.Rejected ?? 0)
                && Ticks(state.UnregisteredAt) == (ended?.Unregistered ?? 0);
        }
    }
}
