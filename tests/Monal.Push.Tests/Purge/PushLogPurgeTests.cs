using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Tests.Purge;

[Trait("Category", "Postgres")]
public sealed class PushLogPurgeTests
{
    [Fact]
    public async Task RunAsync_Should_DeleteOnlyPushesOlderThanTheWindow_When_PushLogsJobRuns()
    {
        await using var host = await PurgeHost.CreateAsync();
        var start = host.Clock.GetUtcNow();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        var old = await host.PushAsync(device);               // day 0
        host.Clock.Advance(TimeSpan.FromDays(10));
        var young = await host.PushAsync(device);             // day 10
        host.Clock.Advance(TimeSpan.FromDays(5));             // now day 15: the window (14 d) ends at day 1

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.PushLogs, dryRun: false, CancellationToken.None);

        Assert.Equal(RetentionJobs.Succeeded, run.Outcome);
        Assert.Equal(start.AddDays(1), run.Cutoff);
        Assert.Equal(2, run.Deleted["push_events"]);          // requested + delivered of the old push
        Assert.Equal(1, run.Deleted["push_log"]);
        Assert.False(run.Deleted.ContainsKey("domain_usage_pushes"));
        var types = (await host.Store.ReadStreamAsync(device)).Select(e => e.Type).ToList();
        Assert.Equal(["device_registered.v1", "push_requested.v1", "push_delivered.v1"], types);
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from push_log where push_id = $1", old));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from push_log where push_id = $1", young));
        // The per-day counters go with the window too (on a one-user domain they count one person's messages):
        // day 0's row, whose day started before the cutoff, is gone; day 10's stays.
        Assert.Equal(1, run.Deleted["domain_usage"]);
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from domain_usage where pushes = 1 and delivered = 1"));
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from domain_usage where day = $1",
            DateOnly.FromDateTime(start.UtcDateTime)));
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from devices where device_id = $1", device));
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from push_events where \"timestamp\" < $1", run.Cutoff));
    }

    [Fact]
    public async Task RunAsync_Should_DeleteNothingAndRecordADryRun_When_DryRunIsAsked()
    {
        await using var host = await PurgeHost.CreateAsync();
        var device = await host.RegisterAsync(PurgeHost.NewToken());
        await host.PushAsync(device);
        await host.PushAsync(device, delivered: false);
        host.Clock.Advance(TimeSpan.FromDays(15));

        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.PushLogs, dryRun: true, CancellationToken.None);

        Assert.True(run.DryRun);
        Assert.Equal(3, run.Deleted["push_events"]);
        Assert.Equal(2, run.Deleted["push_log"]);
        Assert.Equal(3L, await host.ScalarAsync<long>("select count(*) from push_events where stream_id = $1", device));
        Assert.Equal(2L, await host.ScalarAsync<long>("select count(*) from push_log where device_id = $1", device));
        var evidence = Assert.Single(await host.SystemEventsAsync(SystemStreams.Retention));
        AssertSameRun(run, (RetentionRun)evidence.Data);
    }

    [Fact]
    public async Task RunAllAsync_Should_RecordARetentionRunPerJob_When_EveryJobRuns()
    {
        await using var host = await PurgeHost.CreateAsync();
        var runs = await host.Get<RetentionJobs>().RunAllAsync(dryRun: false, CancellationToken.None);

        Assert.Equal(RetentionJobNames.All, runs.Select(r => r.Job));
        var recorded = (await host.SystemEventsAsync(SystemStreams.Retention)).Select(e => (RetentionRun)e.Data).ToList();
        Assert.Equal(runs.Count, recorded.Count);
        foreach (var (expected, actual) in runs.Zip(recorded))
        {
            AssertSameRun(expected, actual);
        }

        Assert.All(recorded, r => Assert.Equal(RetentionJobs.Succeeded, r.Outcome));
    }

    [Fact]
    public async Task RunAsync_Should_RecordTheFailure_When_TheJobFails()
    {
        await using var host = await PurgeHost.CreateAsync();
        await using (var cmd = host.DataSource.CreateCommand("alter table push_log rename to push_log_hidden; create view push_log as select 1/0 as requested_at"))
        {
            await cmd.ExecuteNonQueryAsync();
        }

        var device = await host.RegisterAsync(PurgeHost.NewToken());
        host.Clock.Advance(TimeSpan.FromDays(20));
        var run = await host.Get<RetentionJobs>().RunAsync(RetentionJobNames.PushLogs, dryRun: false, CancellationToken.None);

        Assert.StartsWith("failed: ", run.Outcome, StringComparison.Ordinal);
        Assert.True(run.Deleted.ContainsKey("push_events"), "what was deleted before the failure is still reported");
        AssertSameRun(run, (RetentionRun)Assert.Single(await host.SystemEventsAsync(SystemStreams.Retention)).Data);
        Assert.Equal(1L, await host.ScalarAsync<long>("select count(*) from events where stream_id = $1", device));
    }

    [Fact]
    public async Task RunAsync_Should_LoseNoYoungPush_When_PushesAreAppendedDuringThePurge()
    {
        await using var host = await PurgeHost.CreateAsync();
        var devices = new List<Guid>();
        for (var i = 0; i < 4; i++)
        {
            devices.Add(await host.RegisterAsync(PurgeHost.NewToken()));
        }

        for (var day = 0; day < 6; day++)
        {
            foreach (var d in devices)
            {
                await host.PushAsync(d, delivered: false);
                await host.PushAsync(d, delivered: false);
            }

            host.Clock.Advance(TimeSpan.FromDays(1));
        }

        host.Clock.Set(host.Clock.GetUtcNow().AddDays(14));
        var appended = new List<Guid>();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var i = 0;
            while (!stop.IsCancellationRequested || i < 50)
            {
                appended.Add(await host.PushAsync(devices[i++ % devices.Count], delivered: false));
            }
        });

        var jobs = host.Get<RetentionJobs>();
        for (var i = 0; i < 3; i++)
        {
            var run = await jobs.RunAsync(RetentionJobNames.PushLogs, dryRun: false, CancellationToken.None);
            Assert.Equal(RetentionJobs.Succeeded, run.Outcome);
        }

        await stop.CancelAsync();
        await writer;

        var kept = await host.ScalarAsync<long>("select count(*) from push_events where data->>'push_id' = any($1)",
            new object[] { appended.Select(a => a.ToString()).ToArray() });
        Assert.Equal(appended.Count, (int)kept);
        Assert.Equal(appended.Count, (int)await host.ScalarAsync<long>("select count(*) from push_log where push_id = any($1)", new object[] { appended.ToArray() }));
        Assert.Equal(0L, await host.ScalarAsync<long>("select count(*) from push_events where \"timestamp\" < $1",
            host.Clock.GetUtcNow().AddDays(-14)));
    }

    internal static void AssertSameRun(RetentionRun expected, RetentionRun actual)
    {
        Assert.Equal(expected with { Deleted = actual.Deleted }, actual);
        Assert.Equal(expected.Deleted.OrderBy(p => p.Key), actual.Deleted.OrderBy(p => p.Key));
    }
}
