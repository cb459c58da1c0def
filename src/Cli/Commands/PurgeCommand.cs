using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Cli.Commands;

/// <summary>`monal-push purge run [--job NAME] [--dry-run]`: runs retention jobs now and prints what they deleted.</summary>
internal static class PurgeCommand
{
    public static Command Create()
    {
        var job = new Option<string?>("--job") { Description = $"One job: {string.Join(", ", RetentionJobNames.All)} (all when omitted)" };
        var dryRun = new Option<bool>("--dry-run") { Description = "Count what would be deleted; delete nothing" };
        var run = new Command("run", "Run retention jobs now; each run is recorded as RetentionRun evidence.") { job, dryRun };
        run.SetAction(async (parse, ct) =>
        {
            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var jobs = host.Services.GetRequiredService<RetentionJobs>();
            var name = parse.GetValue(job);
            var dry = parse.GetValue(dryRun);
            if (name is not null && !RetentionJobNames.All.Contains(name, StringComparer.OrdinalIgnoreCase))
            {
                await Console.Error.WriteLineAsync($"Unknown job '{name}'. Known jobs: {string.Join(", ", RetentionJobNames.All)}.");
                return 2;
            }

            var runs = name is null ? await jobs.RunAllAsync(dry, ct) : [await jobs.RunAsync(name, dry, ct)];
            var failed = 0;
            foreach (var r in runs)
            {
                Console.Out.WriteLine(
                    $"{r.Job}: {(r.DryRun ? "would delete" : "deleted")} {RetentionJobs.Describe(r.Deleted)} " +
                    $"(cutoff {r.Cutoff:u}, {r.DurationMs:F0} ms, {r.Outcome})");
                failed += r.Outcome == RetentionJobs.Succeeded ? 0 : 1;
            }

            return failed == 0 ? 0 : 1;
        });
        var command = new Command("purge", "Retention jobs.");
        command.Subcommands.Add(run);
        return command;
    }
}
