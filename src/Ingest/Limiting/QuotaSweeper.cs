using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Monal.Push.Ingest.Limiting;

/// <summary>
/// Deletes the new-device quota rows of full buckets every few minutes, on every process (the delete is idempotent
/// and cheap: an index on full_at). A failure logs and waits for the next round: the rows only grow stale.
/// </summary>
internal sealed class QuotaSweeper(NewDeviceQuota quota, TimeProvider clock, ILogger<QuotaSweeper> logger) : BackgroundService
{
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, clock);
        do
        {
            try
            {
                var deleted = await quota.SweepAsync(stoppingToken);
                Log.QuotaSwept(logger, deleted);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                Log.QuotaSweepFailed(logger, e.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }
}
