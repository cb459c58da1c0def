using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Ingest.Throttling;

/// <summary>What the throttle made of one publish.</summary>
internal enum ThrottleDecision
{
    /// <summary>No push in the device's window: push now.</summary>
    Immediate,

    /// <summary>A push went out in the window: one delayed push at the window's end (NotBefore).</summary>
    Delayed,

    /// <summary>A push that is not due yet already covers this publish: nothing is appended.</summary>
    Coalesced,
}

/// <summary>The throttle's decision and the publish's answer.</summary>
internal readonly record struct ThrottledOutcome(ThrottleDecision Decision, PublishOutcome Outcome);

/// <summary>
/// At most one push per device per window (<c>Throttle:Window</c>), without losing a wake-up: the first publish is
/// pushed at once; a publish inside the window schedules one push at the window's end (an appended PushRequested with
/// NotBefore, so the dispatcher's queue keeps it across restarts); every later publish while that push is not yet due
/// rides on it and appends nothing. A device is woken after its last message either way, because the push a publish
/// rides on is sent after the publish arrived.
/// <para>
/// A coalesced publish is answered only once the push it rides on is committed, and with that push's outcome: if the
/// append failed, its riders get the same error (wait or cancel) and never a result for a push that does not exist.
/// A failed append hands the slot back, so the next publish tries again.
/// </para>
/// <para>
/// State is in memory and bounded (<c>Throttle:MaxDevices</c>). An entry is kept for <see cref="KeepFor"/> after its
/// device's last push, although its window ended long before, so that a device published to every minute or two reuses
/// its entry: allocating one per publish, held for a minute, was a good part of what every young-generation
/// collection had to copy (docs/benchmarks.md). Above the bound, entries whose window has passed go first. After a
/// restart or an eviction the worst case is one extra push, never a lost one.
/// </para>
/// </summary>
internal sealed class PushThrottle
{
    /// <summary>How long an entry outlives its device's last push (or the window, if longer).</summary>
    internal static readonly TimeSpan KeepFor = TimeSpan.FromMinutes(10);

    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private readonly TimeSpan _window;
    private readonly TimeSpan _keep;
    private readonly int _maxDevices;
    private readonly TimeProvider _clock;
    private readonly ILogger<PushThrottle> _logger;
    private int _count;
    private int _sweeping;
    private long _lastSweepTicks;

    public PushThrottle(IOptions<ThrottleOptions> options, TimeProvider clock, ILogger<PushThrottle> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _window = options.Value.Window;
        _keep = _window > KeepFor ? _window : KeepFor;
        _maxDevices = Math.Max(1, options.Value.MaxDevices);
        _clock = clock;
        _logger = logger;
        _lastSweepTicks = clock.GetUtcNow().UtcTicks;
    }

    /// <summary>Devices currently remembered.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>
    /// Decides the publish for <paramref name="deviceId"/> and, unless it is coalesced, runs <paramref name="push"/>
    /// with the NotBefore to append (null for an immediate push). <paramref name="push"/> maps its own failures to
    /// outcomes; an exception it throws is rethrown to this caller and answered <c>wait</c> to riders.
    /// </summary>
    public async Task<ThrottledOutcome> RunAsync(
        Guid deviceId, Func<DateTimeOffset?, Task<PublishOutcome>> push, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(push);
        var now = _clock.GetUtcNow();
        MaybeSweep(now);

        while (true)
        {
            var entry = GetOrAdd(deviceId, now);
            TaskCompletionSource<PublishOutcome> mine;
            DateTimeOffset? previousLast;
            Task<PublishOutcome>? previousPending;
            PublishOutcome? previousSettled;
            DateTimeOffset? notBefore;
            ThrottleDecision decision;
            Task<PublishOutcome>? ride = null;
            PublishOutcome? settled = null;
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                if (entry.Last is { } due && due > now && (entry.Pending is not null || entry.Settled is not null))
                {
                    ride = entry.Pending;
                    settled = entry.Settled;
                    mine = null!;
                    previousLast = null;
                    previousPending = null;
                    previousSettled = null;
                    notBefore = null;
                    decision = ThrottleDecision.Coalesced;
                }
                else
                {
                    previousLast = entry.Last;
                    previousPending = entry.Pending;
                    previousSettled = entry.Settled;
                    if (entry.Last is not { } last || now >= last + _window)
                    {
                        decision = ThrottleDecision.Immediate;
                        notBefore = null;
                        entry.Last = now;
                    }
                    else
                    {
                        decision = ThrottleDecision.Delayed;
                        notBefore = last + _window;
                        entry.Last = notBefore;
                    }

                    mine = new TaskCompletionSource<PublishOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
                    entry.Pending = mine.Task;
                }
            }

            if (decision == ThrottleDecision.Coalesced)
            {
                return new ThrottledOutcome(decision, ride is not null ? await ride.WaitAsync(ct) : settled!.Value);
            }

            PublishOutcome outcome;
            try
            {
                outcome = await push(notBefore);
            }
            catch
            {
                GiveBack(entry, mine.Task, previousLast, previousPending, previousSettled);
                mine.TrySetResult(PublishOutcome.InternalServerError);
                throw;
            }

            if (outcome.IsAccepted)
            {
                Settle(entry, mine.Task, outcome);
            }
            else
            {
                GiveBack(entry, mine.Task, previousLast, previousPending, previousSettled);
            }

            mine.TrySetResult(outcome);
            return new ThrottledOutcome(decision, outcome);
        }
    }

    /// <summary>
    /// Forgets devices not pushed to for <see cref="KeepFor"/>; above <c>Throttle:MaxDevices</c>, then those whose
    /// window has passed, and then settled ones, until 90% of it is left. Returns how many were forgotten.
    /// </summary>
    internal int Sweep(DateTimeOffset now)
    {
        var removed = Forget(int.MinValue, e => e.Last is not { } last || now >= last + _keep);
        var target = _maxDevices - (_maxDevices / 10);
        if (Count >= _maxDevices)
        {
            // Forgetting a device whose window has passed costs nothing; one inside its window, at most one extra
            // push. One whose push is still being appended is kept (TryRemove).
            removed += Forget(target, e => e.Last is not { } last || now >= last + _window);
            removed += Forget(target, static _ => true);
        }

        Interlocked.Exchange(ref _lastSweepTicks, now.UtcTicks);
        Log.ThrottleSwept(_logger, removed, Count);
        return removed;
    }

    // Removes entries for which removable holds while more than target are left.
    private int Forget(int target, Func<Entry, bool> removable)
    {
        var removed = 0;
        foreach (var (id, entry) in _entries)
        {
            if (Count <= target)
            {
                break;
            }

            if (TryRemove(id, entry, removable))
            {
                removed++;
            }
        }

        return removed;
    }

    private Entry GetOrAdd(Guid deviceId, DateTimeOffset now)
    {
        while (true)
        {
            if (_entries.TryGetValue(deviceId, out var existing))
            {
                return existing;
            }

            // Make room before adding: a sweep after the add could forget the new entry before its caller locks it.
            if (Count >= _maxDevices)
            {
                TrySweep(now);
            }

            var fresh = new Entry();
            if (_entries.TryAdd(deviceId, fresh))
            {
                Interlocked.Increment(ref _count);
                return fresh;
            }
        }
    }

    private void MaybeSweep(DateTimeOffset now)
    {
        // Expired entries are swept about once per minute (or per window, if longer) so memory shrinks when idle.
        var every = _window > TimeSpan.FromMinutes(1) ? _window : TimeSpan.FromMinutes(1);
        if (now.UtcTicks - Interlocked.Read(ref _lastSweepTicks) >= every.Ticks)
        {
            TrySweep(now);
        }
    }

    private void TrySweep(DateTimeOffset now)
    {
        if (Interlocked.CompareExchange(ref _sweeping, 1, 0) != 0)
        {
            return;
        }

        try
        {
            Sweep(now);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private bool TryRemove(Guid id, Entry entry, Func<Entry, bool> removable)
    {
        lock (entry)
        {
            if (entry.Removed || entry.Pending is { IsCompleted: false } || !removable(entry))
            {
                return false;
            }

            entry.Removed = true;
        }

        if (_entries.TryRemove(new KeyValuePair<Guid, Entry>(id, entry)))
        {
            Interlocked.Decrement(ref _count);
        }

        return true;
    }

    // The push is appended: later riders take its outcome from the entry, and the task is no longer referenced from
    // it (the entry is long-lived; the task would outlive a young-generation collection with it).
    private static void Settle(Entry entry, Task<PublishOutcome> mine, PublishOutcome outcome)
    {
        lock (entry)
        {
            if (ReferenceEquals(entry.Pending, mine))
            {
                entry.Pending = null;
                entry.Settled = outcome;
            }
        }
    }

    private static void GiveBack(
        Entry entry, Task<PublishOutcome> mine, DateTimeOffset? previousLast, Task<PublishOutcome>? previousPending, PublishOutcome? previousSettled)
    {
        lock (entry)
        {
            // Only if nobody scheduled a later push on top of ours meanwhile; that one stays and covers its riders.
            if (ReferenceEquals(entry.Pending, mine))
            {
                entry.Last = previousLast;
                entry.Pending = previousPending;
                entry.Settled = previousSettled;
            }
        }
    }

    /// <summary>
    /// One device's window, guarded by its own lock. Kept small (48 bytes instead of 88): one is held per device for
    /// <see cref="KeepFor"/>, so the time is stored as ticks and a settled outcome as a shared box when it is the usual
    /// empty result.
    /// </summary>
    private sealed class Entry
    {
        private static readonly object AcceptedBox = PublishOutcome.Accepted;
        private long _lastTicks;
        private object? _settled;

        /// <summary>When the latest push was (or will be, if delayed) sent.</summary>
        public DateTimeOffset? Last
        {
            get => _lastTicks == 0 ? null : new DateTimeOffset(_lastTicks, TimeSpan.Zero);
            set => _lastTicks = value?.UtcTicks ?? 0;
        }

        /// <summary>The append of that push while it runs; riders wait for it.</summary>
        public Task<PublishOutcome>? Pending { get; set; }

        /// <summary>The outcome of that push once appended (always accepted); riders answer with it.</summary>
        public PublishOutcome? Settled
        {
            get => _settled is null ? null : (PublishOutcome)_settled;
            set => _settled = value is not { } outcome ? null : outcome == PublishOutcome.Accepted ? AcceptedBox : outcome;
        }

        /// <summary>Swept: a caller that locked it must look the device up again.</summary>
        public bool Removed { get; set; }
    }
}
