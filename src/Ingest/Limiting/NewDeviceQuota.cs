using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// The new-device quota (issue 18): a token bucket per sender in the ledger's database (new_device_quota,
/// migrations/0009_new_device_quota.sql), so it survives a restart and every process on the database shares it. A
/// process takes tokens in small chunks (at most 1% of the bucket, 64 at most) and spends them locally: one round
/// trip per chunk, not per device, and never more devices than the bucket allows in total (a chunk left unspent at
/// a restart is lost, which errs on the safe side). An empty bucket is not asked again before one token has
/// accrued, so a sender over its quota costs the database nothing per publish.
/// </summary>
internal sealed class NewDeviceQuota(
    NpgsqlDataSource dataSource, IOptions<LimitsOptions> options, TimeProvider clock, IngestMetrics metrics, ILogger<NewDeviceQuota> logger)
{
    private const string TakeSql = "select monal_take_new_devices($1, $2, $3, $4, $5)";
    private const string SweepSql = "delete from new_device_quota where full_at <= $1";

    private readonly ConcurrentDictionary<string, Allowance> _local = new(StringComparer.Ordinal);
    private readonly LimitsOptions _options = options.Value;
    private readonly LimitNotices _notices = new(clock);

    /// <summary>
    /// Takes one new device from <paramref name="subject"/>'s quota; false when it is used up (answer "try later").
    /// Throws the database's failures (the caller answers them <c>wait</c> as well).
    /// </summary>
    public async ValueTask<bool> TryTakeAsync(QuotaSubject subject, CancellationToken ct)
    {
        var (capacity, perSecond) = BucketOf(subject);
        if (_local.Count > Math.Max(1_000, _options.MaxDomains))
        {
            // Bounded memory: forgetting unspent local tokens only makes the quota stricter.
            _local.Clear();
        }

        var allowance = _local.GetOrAdd(subject.Key, static _ => new Allowance());
        if (allowance.TryTake())
        {
            return Allowed();
        }

        await allowance.Gate.WaitAsync(ct);
        try
        {
            if (allowance.TryTake())
            {
                return Allowed();
            }

            var now = clock.GetUtcNow();
            if (now < allowance.EmptyUntil)
            {
                return Refused(subject);
            }

            var chunk = Math.Clamp(capacity / 100, 1, 64);
            var taken = await TakeAsync(subject.Key, chunk, capacity, perSecond, now, ct);
            if (taken == 0)
            {
                allowance.EmptyUntil = now + TimeSpan.FromSeconds(Math.Min(60, 1 / perSecond));
                return Refused(subject);
            }

            allowance.Add(taken - 1);
            return Allowed();
        }
        finally
        {
            allowance.Gate.Release();
        }
    }

    /// <summary>Deletes the rows of full buckets (they say nothing the absence of a row would not). Returns how many.</summary>
    public async Task<int> SweepAsync(CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(SweepSql);
        cmd.Parameters.Add(new() { Value = clock.GetUtcNow() });
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    private (int Capacity, double PerSecond) BucketOf(QuotaSubject subject) => subject.IsHttpClient
        ? (_options.Http.NewDeviceBurst, _options.Http.NewDevicesPerHour / 3600)
        : (_options.NewDeviceBurst, _options.NewDevicesPerHour / 3600);

    private async Task<int> TakeAsync(string key, int want, int capacity, double perSecond, DateTimeOffset now, CancellationToken ct)
    {
        await using var cmd = dataSource.CreateCommand(TakeSql);
        cmd.Parameters.Add(new() { Value = key });
        cmd.Parameters.Add(new() { Value = want });
        cmd.Parameters.Add(new() { Value = (double)capacity });
        cmd.Parameters.Add(new() { Value = perSecond });
        cmd.Parameters.Add(new() { Value = now });
        return Convert.ToInt32(await cmd.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private bool Allowed()
    {
        metrics.Limit(LimitKind.NewDevices, allowed: true);
        return true;
    }

    private bool Refused(QuotaSubject subject)
    {
        metrics.Limit(LimitKind.NewDevices, allowed: false);
        if (subject.IsHttpClient)
        {
            if (_notices.ShouldLog("http", out var refused))
            {
                Log.HttpClientLimited(logger, LimitKind.NewDevices.Tag(), refused, "Limits:Http:NewDevicesPerHour, Limits:Http:NewDeviceBurst");
            }
        }
        else if (_notices.ShouldLog(subject.Key, out var refused))
        {
            Log.DomainLimited(logger, subject.Key["xmpp:".Length..], LimitKind.NewDevices.Tag(), refused,
                string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"Limits:NewDevicesPerHour = {_options.NewDevicesPerHour:0.##}, Limits:NewDeviceBurst = {_options.NewDeviceBurst}"));
        }

        return false;
    }

    /// <summary>Tokens this process took from one sender's bucket and has not spent yet.</summary>
    private sealed class Allowance
    {
        private int _tokens;

        public SemaphoreSlim Gate { get; } = new(1, 1);

        public DateTimeOffset EmptyUntil { get; set; }

        public bool TryTake()
        {
            var current = Volatile.Read(ref _tokens);
            while (current > 0)
            {
                var seen = Interlocked.CompareExchange(ref _tokens, current - 1, current);
                if (seen == current)
                {
                    return true;
                }

                current = seen;
            }

            return false;
        }

        public void Add(int tokens) => Interlocked.Add(ref _tokens, tokens);
    }
}
