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
/// State is in memory and bounded (<c>Throttle:MaxDevices</c>); an entry is useless once its window has passed and
/// is swept. After a restart or an eviction the worst case is one extra push, never a lost one.
/// </para>
/// </summary>
internal sealed class PushThrottle
{
    private readonly ConcurrentDictionary<Guid, Entry> _entries = new();
    private readonly TimeSpan _window;
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
            DateTimeOffset? notBefore;
            ThrottleDecision decision;
            Task<PublishOutcome>? ride = null;
            lock (entry)
            {
                if (entry.Removed)
                {
                    continue;
                }

                if (entry.Last is { } due && due > now && entry.Pending is not null)
                {
                    ride = entry.Pending;
                    mine = null!;
                    previousLast = null;
                    previousPending = null;
                    notBefore = null;
                    decision = ThrottleDecision.Coalesced;
                }
                else
                {
                    previousLast = entry.Last;
                    previousPending = entry.Pending;
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

            if (ride is not null)
            {
                return new ThrottledOutcome(decision, await ride.WaitAsync(ct));
            }

            PublishOutcome outcome;
            try
            {
                outcome = await push(notBefore);
            }
            catch
            {
                GiveBack(entry, mine.Task, previousLast, previousPending);
                mine.TrySetResult(PublishOutcome.InternalServerError);
                throw;
            }

            if (!outcome.IsAccepted)
            {
                GiveBack(entry, mine.Task, previousLast, previousPending);
            }

            mine.TrySetResult(outcome);
            return new ThrottledOutcome(decision, outcome);
        }
    }

    /// <summary>
    /// Forgets devices whose window has passed (and, above <c>Throttle:MaxDevices</c>, settled ones until 90% of it
    /// is left). Returns how many were forgotten.
    /// </summary>
    internal int Sweep(DateTimeOffset now)
    {
        var removed = 0;
        foreach (var (id, entry) in _entries)
        {
            if (TryRemove(id, entry, e => e.Last is not { } last || now >= last + _window))
            {
                removed++;
            }
        }

        var target = _maxDevices - (_maxDevices / 10);
        if (Count >= _maxDevices)
        {
            foreach (var (id, entry) in _entries)
            {
                if (Count <= target)
                {
                    break;
                }

                // Forgetting a live device costs at most one extra push; one whose push is still being appended keeps it.
                if (TryRemove(id, entry, static _ => true))
                {
                    removed++;
                }
            }
        }

        Interlocked.Exchange(ref _lastSweepTicks, now.UtcTicks);
        Log.ThrottleSwept(_logger, removed, Count);
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

    private static void GiveBack(Entry entry, Task<PublishOutcome> mine, DateTimeOffset? previousLast, Task<PublishOutcome>? previousPending)
    {
        lock (entry)
        {
            // Only if nobody scheduled a later push on top of ours meanwhile; that one stays and covers its riders.
            if (ReferenceEquals(entry.Pending, mine))
            {
                entry.Last = previousLast;
                entry.Pending = previousPending;
            }
        }
    }

    /// <summary>One device's window, guarded by its own lock.</summary>
    private sealed class Entry
    {
        /// <summary>When the latest push was (or will be, if delayed) sent.</summary>
        public DateTimeOffset? Last { get; set; }

        /// <summary>The append of that push; riders wait for it.</summary>
        public Task<PublishOutcome>? Pending { get; set; }

        /// <summary>Swept: a caller that locked it must look the device up again.</summary>
        public bool Removed { get; set; }
    }
}
