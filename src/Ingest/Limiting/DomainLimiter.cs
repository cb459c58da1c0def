using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// The per-domain publish limits of one process (issue 18): a token bucket of publishes per second and a cap on the
/// domain's publishes being handled at once. Both answer at once, without touching the ledger, so a flooding domain's
/// excess costs a parse and a reply and never holds the component link's in-flight slots that every other domain
/// shares (docs/architecture.md, "Abuse resistance"). In memory: after a restart a domain starts with a full bucket,
/// which costs one burst at most; what must survive a restart, the new-device quota, is in the ledger
/// (<see cref="NewDeviceQuota"/>). Bounded by <c>Limits:MaxDomains</c>: beyond it, domains share one overflow entry.
/// </summary>
internal sealed class DomainLimiter
{
    private static readonly TimeSpan LimitedFor = TimeSpan.FromMinutes(1);

    /// <summary>Below this many publishes pending in all, none is refused for overload: too few to be a queue worth refusing.</summary>
    private const int OverloadFloor = 256;

    /// <summary>A domain with fewer publishes pending than this is never refused for overload, whatever its share.</summary>
    private const int OverloadDomainFloor = 64;

    private readonly ConcurrentDictionary<string, DomainSlot> _domains = new(StringComparer.Ordinal);
    private readonly LimitsOptions _options;
    private readonly TimeProvider _clock;
    private readonly LimitNotices _notices;
    private readonly IngestMetrics _metrics;
    private readonly ILogger<DomainLimiter> _logger;
    private readonly DomainSlot _overflow;
    private readonly StandingQueue _queue;
    private int _pending;
    private int _activeDomains;
    private int _sweeping;
    private long _lastSweepTicks;

    public DomainLimiter(IOptions<LimitsOptions> options, TimeProvider clock, IngestMetrics metrics, ILogger<DomainLimiter> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _clock = clock;
        _metrics = metrics;
        _logger = logger;
        _notices = new LimitNotices(clock);
        _overflow = NewSlot(clock.GetUtcNow());
        _queue = new StandingQueue(_options.QueueDelayTarget, _options.QueueDelayInterval, clock);
        _lastSweepTicks = clock.GetUtcNow().UtcTicks;
    }

    /// <summary>Domains remembered now.</summary>
    public int Tracked => _domains.Count;

    /// <summary>Domains refused within the last minute (a gauge: never which ones).</summary>
    public int Limited
    {
        get
        {
            var since = _clock.GetUtcNow() - LimitedFor;
            return _domains.Values.Count(s => s.LastRefusedAt > since);
        }
    }

    /// <summary>Publishes admitted and not yet answered, all domains together.</summary>
    public int Pending => Volatile.Read(ref _pending);

    /// <summary>
    /// Admits one publish of <paramref name="domain"/>, or names the limit that refuses it. An admitted publish holds
    /// <paramref name="admission"/> until <see cref="Exit"/>.
    /// </summary>
    /// <remarks>
    /// Besides the domain's own limits, the process's: while publishes queue steadily (<see cref="StandingQueue"/>),
    /// a domain holding at least its share of the pending publishes (all pending ÷ domains with any pending) is
    /// refused, so a flood is answered at once and a quiet domain still gets in.
    /// </remarks>
    public LimitKind? TryEnter(string domain, out Admission admission)
    {
        ArgumentNullException.ThrowIfNull(domain);
        var now = _clock.GetUtcNow();
        MaybeSweep(now);
        var slot = SlotOf(domain, now);
        admission = new Admission(slot, _queue.Now());
        LimitKind? refused = null;
        var pending = Pending;
        var overloaded = pending >= OverloadFloor && _queue.IsStanding(pending);
        lock (slot)
        {
            if (slot.Pending >= _options.MaxPendingPerDomain)
            {
                refused = LimitKind.DomainPending;
            }
            else if (overloaded && slot.Pending >= OverloadDomainFloor
                     && (long)slot.Pending * Math.Max(1, Volatile.Read(ref _activeDomains)) >= pending)
            {
                refused = LimitKind.Overload;
            }
            else if (!slot.Bucket.TryTake(now))
            {
                refused = LimitKind.PublishRate;
            }
            else
            {
                if (slot.Pending++ == 0)
                {
                    Interlocked.Increment(ref _activeDomains);
                }

                Interlocked.Increment(ref _pending);
            }

            if (refused is not null)
            {
                slot.LastRefusedAt = now;
            }
        }

        if (refused is { } kind)
        {
            _metrics.Limit(kind, allowed: false);
            if (_notices.ShouldLog(domain, out var count))
            {
                Log.DomainLimited(_logger, domain, kind.Tag(), count, Setting(kind));
            }

            return kind;
        }

        _metrics.Limit(LimitKind.PublishRate, allowed: true);
        return null;
    }

    /// <summary>
    /// The admitted publish is answered. Its time counts towards the standing-queue check only when it
    /// <paramref name="wentThroughTheLedger"/> (accepted): quick refusals are not what waits in the queue.
    /// </summary>
    public void Exit(Admission admission, bool wentThroughTheLedger = true)
    {
        var slot = admission.Slot;
        ArgumentNullException.ThrowIfNull(slot);
        lock (slot)
        {
            if (--slot.Pending == 0)
            {
                Interlocked.Decrement(ref _activeDomains);
            }
        }

        Interlocked.Decrement(ref _pending);
        if (wentThroughTheLedger)
        {
            _queue.Answered(admission.AdmittedAt);
        }
    }

    private string Setting(LimitKind kind) => kind switch
    {
        LimitKind.DomainPending => $"Limits:MaxPendingPerDomain = {_options.MaxPendingPerDomain}",
        LimitKind.Overload => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"Limits:QueueDelayTarget = {_options.QueueDelayTarget.TotalMilliseconds:0} ms over Limits:QueueDelayInterval = {_options.QueueDelayInterval.TotalMilliseconds:0} ms; {Pending} publishes pending"),
        _ => string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"Limits:PublishesPerSecond = {_options.PublishesPerSecond:0.##}, Limits:PublishBurst = {_options.PublishBurst}"),
    };

    private DomainSlot SlotOf(string domain, DateTimeOffset now)
    {
        if (_domains.TryGetValue(domain, out var slot))
        {
            return slot;
        }

        if (_domains.Count >= _options.MaxDomains)
        {
            TrySweep(now);
            if (_domains.Count >= _options.MaxDomains)
            {
                return _overflow;
            }
        }

        return _domains.GetOrAdd(domain, static (_, self) => self.NewSlot(self._clock.GetUtcNow()), this);
    }

    private DomainSlot NewSlot(DateTimeOffset now) => new(new TokenBucket(_options.PublishBurst, _options.PublishesPerSecond, now));

    private void MaybeSweep(DateTimeOffset now)
    {
        if (now.UtcTicks - Interlocked.Read(ref _lastSweepTicks) >= LimitedFor.Ticks)
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
            // A domain with nothing pending and a full bucket is the same as a domain never seen: forget it.
            foreach (var (domain, slot) in _domains)
            {
                bool idle;
                lock (slot)
                {
                    idle = slot.Pending == 0 && slot.Bucket.IsFull(now);
                }

                if (idle)
                {
                    _domains.TryRemove(new KeyValuePair<string, DomainSlot>(domain, slot));
                }
            }

            Interlocked.Exchange(ref _lastSweepTicks, now.UtcTicks);
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    /// <summary>An admitted publish: its domain's slot and when it was admitted (for <see cref="StandingQueue"/>).</summary>
    internal readonly record struct Admission(DomainSlot Slot, long AdmittedAt);

    /// <summary>One domain's state, guarded by its own lock.</summary>
    internal sealed class DomainSlot(TokenBucket bucket)
    {
        public TokenBucket Bucket { get; } = bucket;

        public int Pending { get; set; }

        public DateTimeOffset LastRefusedAt { get; set; }
    }
}
