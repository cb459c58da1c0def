using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Purge.Scheduling;
using Monal.Push.Tests.Fixtures;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 6's "done when": after a run of the whole pipeline, with the clock moved 15 days ahead, the retention jobs
/// leave no push event, push-log row or log file older than 14 days, the token Apple invalidated is gone from a
/// full dump, and RetentionRun events say what was deleted.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class RetentionEndToEndTests
{
    [Fact]
    public async Task PurgeRun_Should_LeaveNothingOlderThanTheWindow_When_TheClockMovesFifteenDaysAhead()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var harness = await ServeHarness.CreateAsync();
        var tokens = Enumerable.Range(0, 20).Select(_ => ServeHarness.NewToken()).ToArray();
        var invalid = tokens[0];
        harness.Apns.RespondToToken(invalid, 410, "Unregistered", clock.GetUtcNow().AddMinutes(-1)); // Apple's timestamp is in the past
        await harness.StartAsync(clock);
        for (var i = 0; i < tokens.Length; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"p{i}", tokens[i]), CancellationToken.None);
        }

        await ServeHarness.WaitAsync(async () => harness.Replies.Count == tokens.Length
            && await harness.CountAsync("select count(*) from push_events where type = 'push_delivered.v1'") == tokens.Length - 1
            && await harness.CountAsync("select count(*) from events where type = 'token_invalidated.v1'") == 1
            && await harness.CountAsync("select count(*) from push_log where outcome <> 'pending'") == tokens.Length);
        Assert.All(harness.Replies.Values, r => Assert.True(r.IsResult));
        var invalidCipher = await harness.ScalarAsync("""
            select data->>'encrypted_token' from events where type = 'device_registered.v1'
            and stream_id = (select stream_id from events where type = 'token_invalidated.v1')
            """);
        Assert.Contains(invalidCipher, await harness.DumpAsync(), StringComparison.Ordinal);

        clock.Advance(TimeSpan.FromDays(15));
        var cutoff = clock.GetUtcNow().AddDays(-14);
        var runs = await harness.Host!.Services.GetRequiredService<RetentionJobs>().RunAllAsync(dryRun: false, CancellationToken.None);

        Assert.All(runs, r => Assert.Equal(RetentionJobs.Succeeded, r.Outcome));
        Assert.Equal(0L, await harness.CountAsync("select count(*) from push_events where \"timestamp\" < $1", cutoff));
        Assert.Equal(0L, await harness.CountAsync("select count(*) from push_log where requested_at < $1", cutoff));
        Assert.False(File.Exists(Path.Combine(harness.DataPath, "logs", $"monal-push-{clock.GetUtcNow().AddDays(-15):yyyyMMdd}.log")),
            "the log file of the run's day is older than the window and must be gone");
        var dump = await harness.DumpAsync();
        Assert.DoesNotContain(invalid, dump, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(invalidCipher, dump, StringComparison.Ordinal);
        Assert.Equal(tokens.Length - 1, await harness.CountAsync("select count(*) from devices"));

        var evidence = (await harness.Host.Services.GetRequiredService<EventStore>().ReadStreamAsync(SystemStreams.Retention))
            .Select(e => e.Data).OfType<RetentionRun>().ToList();
        Assert.Equal(RetentionJobNames.All.Order(), evidence.Select(r => r.Job).Order());
        // The invalid-token job ran first and erased the invalidated device with its stream; the purge took the rest.
        Assert.Equal((tokens.Length - 1) * 2L, evidence.Single(r => r.Job == RetentionJobNames.PushLogs).Deleted["push_events"]);
        Assert.Equal(1L, evidence.Single(r => r.Job == RetentionJobNames.InvalidTokens).Deleted["devices_erased"]);
        Assert.True(evidence.Single(r => r.Job == RetentionJobNames.LogFiles).Deleted["log_files"] >= 1);
    }
}
