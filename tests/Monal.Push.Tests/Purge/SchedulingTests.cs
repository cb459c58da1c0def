using Monal.Push.Ledger.Events;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Purge;

/// <summary>Quartz with the clustered ADO store on PostgreSQL, as `serve` runs it (real Quartz timing).</summary>
[Trait("Category", "Postgres")]
public sealed class SchedulingTests
{
    private static readonly Dictionary<string, string?> Hourly = new()
    {
        ["Retention:PurgeInterval"] = "01:00:00",
        ["Retention:InvalidTokenInterval"] = "01:00:00",
    };

    private static async Task<Dictionary<string, int>> RunsAsync(PurgeHost host)
    {
        var runs = (await host.SystemEventsAsync(SystemStreams.Retention)).Select(e => (RetentionRun)e.Data);
        return runs.GroupBy(r => r.Job).ToDictionary(g => g.Key, g => g.Count());
    }

    /// <summary>
    /// Instead of sleeping "long enough for a duplicate to show up": waits until no retention trigger is acquired or
    /// executing (Quartz keeps a qrtz_fired_triggers row from acquisition to completion, and a run appends its
    /// evidence before it completes), then checks that none is due within 50 minutes. The run counts read next are
    /// then final: every firing that happened is counted, and none can start during the test.
    /// </summary>
    private static async Task AssertNothingFiringOrDueAsync(PurgeHost host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await host.ScalarAsync<long>("select count(*) from qrtz_fired_triggers where trigger_group = 'retention'") > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "a retention job is still firing after 60 s");
            await Task.Delay(100);
        }

        var next = await host.ScalarAsync<long>("select min(next_fire_time) from qrtz_triggers where trigger_group = 'retention'");
        Assert.True(new DateTimeOffset(next, TimeSpan.Zero) > DateTimeOffset.UtcNow.AddMinutes(50), "no retention trigger is due");
    }

    private static async Task<Dictionary<string, int>> WaitForRunsAsync(PurgeHost host, int each)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            var runs = await RunsAsync(host);
            if (runs.Count == 3 && runs.Values.All(v => v >= each))
            {
                return runs;
            }

            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not run every job in time: " + string.Join(", ", runs));
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task Scheduler_Should_RunEachJobOnce_When_TwoClusteredSchedulersShareTheDatabase()
    {
        var database = await PurgeHost.NewDatabaseAsync();
        var clock = new ManualClock();
        await using var first = await PurgeHost.CreateAsync(database, clock, scheduler: true, settings: Hourly);
        // The second node joins once the first has fired its triggers. A node that starts while another has
        // acquired a trigger it has never fired replaces it relative to its start time (Quartz's DoRescheduleJob
        // takes the first fire time after the old start), so that first run moves one interval out: harmless for
        // retention (the audit allows two intervals), but not what this test is about.
        await WaitForRunsAsync(first, 1);
        await using var second = await PurgeHost.CreateAsync(database, clock, scheduler: true, settings: Hourly);

        // The second node's first cluster check-in is when it would recover or fire anything: wait for it.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await first.ScalarAsync<long>("select count(distinct instance_name) from qrtz_scheduler_state") < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the second scheduler did not join the cluster");
            await Task.Delay(100);
        }

        await AssertNothingFiringOrDueAsync(first);
        var runs = await RunsAsync(first);
        Assert.All(runs.Values, count => Assert.Equal(1, count));
        Assert.Equal(3L, await first.ScalarAsync<long>("select count(*) from qrtz_triggers where trigger_group = 'retention'"));
    }

    [Fact]
    public async Task Scheduler_Should_FireAMissedRunOnceAtStart_When_EverySchedulerWasDownAtItsTime()
    {
        var database = await PurgeHost.NewDatabaseAsync();
        var clock = new ManualClock();
        await using (var before = await PurgeHost.CreateAsync(database, clock, scheduler: true, settings: Hourly))
        {
            await WaitForRunsAsync(before, 1);
        }

        await using (var restarted = await PurgeHost.CreateAsync(database, clock, scheduler: true, settings: Hourly))
        {
            // A restart before the next fire time does not fire again: the replaced trigger keeps its history.
            await AssertNothingFiringOrDueAsync(restarted);
            Assert.All((await RunsAsync(restarted)).Values, count => Assert.Equal(1, count));
        }

        // Pretend every scheduler was down for three hours: each trigger's next run is long past.
        // Quartz stores times as UTC ticks.
        var due = DateTimeOffset.UtcNow.AddHours(-2).UtcTicks;
        await using (var down = await PurgeHost.CreateAsync(database, clock, scheduler: false))
        {
            Assert.Equal(3, await down.ScalarAsync<int>(
                "with u as (update qrtz_triggers set next_fire_time = $1, prev_fire_time = $2 where trigger_group = 'retention' returning 1) select count(*)::int from u",
                due, due - TimeSpan.TicksPerHour));
        }

        await using var after = await PurgeHost.CreateAsync(database, clock, scheduler: true, settings: Hourly);
        await WaitForRunsAsync(after, 2);
        await AssertNothingFiringOrDueAsync(after);

        Assert.All((await RunsAsync(after)).Values, count => Assert.Equal(2, count));
        var next = await after.ScalarAsync<long>("select min(next_fire_time) from qrtz_triggers where trigger_group = 'retention'");
        Assert.True(new DateTimeOffset(next, TimeSpan.Zero) > DateTimeOffset.UtcNow.AddMinutes(50), "the schedule resumed from the catch-up run");
        // A run missed while a scheduler is up but late (beyond the misfire threshold) fires once now, too.
        Assert.Equal((int)Quartz.SimpleTriggerMisfireInstruction.NowWithExistingCount, await after.ScalarAsync<int>(
            "select min(misfire_instr)::int from qrtz_triggers where trigger_group = 'retention'"));
        Assert.Equal(3L, await after.ScalarAsync<long>(
            "select count(*) from qrtz_triggers where trigger_group = 'retention' and misfire_instr = $1",
            (short)(int)Quartz.SimpleTriggerMisfireInstruction.NowWithExistingCount));
    }
}
