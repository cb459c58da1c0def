using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Rebuilding;

namespace Monal.Push.Tests.Cli;

/// <summary>
/// Issue 5's "done when": registration, push and outcome events of a real run show up in the three projections, a
/// rebuild reproduces them exactly, and `projections status` shows zero lag at rest.
/// </summary>
[Trait("Category", "Postgres")]
public sealed class ProjectionsEndToEndTests
{
    private const string Snapshot = """
        select 'd', count(*)::text, coalesce(string_agg(md5(t::text), ',' order by device_id), '') from devices t
        union all select 'p', count(*)::text, coalesce(string_agg(md5(t::text), ',' order by push_id), '') from push_log t
        union all select 'u', count(*)::text, coalesce(string_agg(md5(t::text), ',' order by day, domain), '') from domain_usage t
        """;

    [Fact]
    public async Task Projections_Should_HoldTheRunAndRebuildItExactly_When_ThePipelineRan()
    {
        await using var harness = await ServeHarness.CreateAsync();
        var tokens = Enumerable.Range(0, 12).Select(_ => ServeHarness.NewToken()).ToArray();
        harness.Apns.RespondToToken(tokens[0], 410, "Unregistered", DateTimeOffset.UtcNow.AddMinutes(-1));
        harness.Apns.RespondToToken(tokens[1], 400, "BadDeviceToken");
        await harness.StartAsync();
        for (var i = 0; i < tokens.Length; i++)
        {
            await harness.Link!.WriteAsync(ServeHarness.Publish($"p{i}", tokens[i]), CancellationToken.None);
        }

        await ServeHarness.WaitAsync(async () =>
            await harness.CountAsync("select count(*) from push_log where outcome <> 'pending'") == tokens.Length);
        var status = harness.Host!.Services.GetRequiredService<ProjectionStatus>();
        await ServeHarness.WaitAsync(async () => (await status.GetStatusAsync()).All(r => r.Lag == 0));

        Assert.Equal(tokens.Length, await harness.CountAsync("select count(*) from devices"));
        Assert.Equal(1, await harness.CountAsync("select count(*) from devices where invalidated_at is not null"));
        Assert.Equal(1, await harness.CountAsync("select count(*) from devices where rejected_at is not null"));
        Assert.Equal(tokens.Length - 2, await harness.CountAsync("select count(*) from devices where last_push_at is not null"));
        Assert.Equal(tokens.Length - 2, await harness.CountAsync("select count(*) from push_log where outcome = 'delivered'"));
        Assert.Equal(1, await harness.CountAsync("select count(*) from push_log where outcome = 'invalidated'"));
        Assert.Equal(1, await harness.CountAsync("select count(*) from push_log where outcome = 'rejected'"));
        Assert.Equal(tokens.Length, await harness.CountAsync("select sum(pushes) from domain_usage where domain = 'example.org'"));
        var before = await SnapshotAsync(harness);

        await harness.Host.Services.GetRequiredService<ProjectionRebuilder>().RebuildAsync(null);

        Assert.Equal(before, await SnapshotAsync(harness));
        Assert.All(await status.GetStatusAsync(), r => Assert.Equal(0, r.Lag));
    }

    private static async Task<string> SnapshotAsync(ServeHarness harness)
    {
        await using var cmd = harness.Db.CreateCommand(Snapshot);
        await using var reader = await cmd.ExecuteReaderAsync();
        var parts = new List<string>();
        while (await reader.ReadAsync())
        {
            parts.Add($"{reader.GetString(0)}:{reader.GetString(1)}:{reader.GetString(2)}");
        }

        return string.Join("\n", parts);
    }
}
