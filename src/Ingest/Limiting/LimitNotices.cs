using System.Collections.Concurrent;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// Rate-limits the log lines about limits themselves: a flooding sender must not flood the log too. A key (a domain,
/// or one shared key for all HTTP clients) gets at most one line per minute, and all keys together at most
/// <see cref="PerMinute"/> lines per minute; refusals in between are counted into the next line.
/// </summary>
internal sealed class LimitNotices(TimeProvider clock)
{
    public const int PerMinute = 20;

    private static readonly TimeSpan Every = TimeSpan.FromMinutes(1);
    private readonly ConcurrentDictionary<string, Notice> _notices = new(StringComparer.Ordinal);
    private readonly TokenBucket _lines = new(PerMinute, PerMinute / 60.0, clock.GetUtcNow());

    /// <summary>Counts a refusal for <paramref name="key"/>; true (with the refusals since the last line) when a line may be written now.</summary>
    public bool ShouldLog(string key, out long refused)
    {
        var now = clock.GetUtcNow();
        if (_notices.Count > 10_000)
        {
            foreach (var (k, n) in _notices)
            {
                if (now - n.LastAt > Every)
                {
                    _notices.TryRemove(k, out _);
                }
            }
        }

        var notice = _notices.GetOrAdd(key, static _ => new Notice());
        lock (notice)
        {
            notice.Refused++;
            if (notice.LastAt != default && now - notice.LastAt < Every)
            {
                refused = 0;
                return false;
            }

            lock (_lines)
            {
                if (!_lines.TryTake(now))
                {
                    refused = 0;
                    return false;
                }
            }

            refused = notice.Refused;
            notice.Refused = 0;
            notice.LastAt = now;
            return true;
        }
    }

    private sealed class Notice
    {
        public DateTimeOffset LastAt { get; set; }

        public long Refused { get; set; }
    }
}
