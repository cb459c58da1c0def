using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Projections.Daemon;
using Monal.Push.Projections.Rebuilding;

namespace Monal.Push.Cli.Commands;

/// <summary>`monal-push projections status|rebuild [NAME]`.</summary>
internal static class ProjectionsCommand
{
    public static Command Create()
    {
        var command = new Command("projections", "Read models folded from the ledger.");
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Rebuild());
        return command;
    }

    private static Command Status()
    {
        var status = new Command("status", "Each projection's position, lag and last error.");
        status.SetAction(async (parse, ct) =>
        {
            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var rows = await host.Services.GetRequiredService<ProjectionStatus>().GetStatusAsync(ct);
            WriteStatus(Console.Out, rows);
            return 0;
        });
        return status;
    }

    /// <summary>The status table (also printed by `monal-push demo`).</summary>
    public static void WriteStatus(TextWriter output, IReadOnlyList<ProjectionStatusRow> rows, string indent = "")
    {
        output.WriteLine($"{indent}{"projection",-14} {"kind",-7} {"position",12} {"high-water",12} {"lag",10}  {"updated",-20}  last error");
        foreach (var r in rows)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{indent}{r.Name,-14} {r.Kind,-7} {r.Position,12} {r.HighWater,12} {r.Lag,10}  {r.UpdatedAt?.ToString("u", CultureInfo.InvariantCulture) ?? "-",-20}  {(r.LastError is null ? "-" : $"{r.LastError} at {r.LastErrorAt:u}")}"));
        }
    }

    private static Command Rebuild()
    {
        var name = new Argument<string?>("name") { Description = "devices or push_log (with domain_usage; all when omitted)", Arity = ArgumentArity.ZeroOrOne };
        var rebuild = new Command("rebuild", "Rebuild projections from the event log; the gateway keeps working meanwhile.") { name };
        rebuild.SetAction(async (parse, ct) =>
        {
            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var rebuilder = host.Services.GetRequiredService<ProjectionRebuilder>();
            var which = parse.GetValue(name);
            if (which is not null && !rebuilder.Names.Contains(which, StringComparer.Ordinal))
            {
                await Console.Error.WriteLineAsync($"Unknown projection '{which}'. Known: {string.Join(", ", rebuilder.Names)}.");
                return 2;
            }

            var bar = new ProgressBar(Console.Error);
            var results = await rebuilder.RebuildAsync(which, bar, ct);
            bar.Finish();
            foreach (var r in results)
            {
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{r.Name}: {r.Events} events in {r.Elapsed.TotalSeconds:F1} s ({r.EventsPerSecond:N0} events/s)"));
            }

            return 0;
        });
        return rebuild;
    }

    /// <summary>A one-line progress bar on standard error (only redrawn when a whole percent changes).</summary>
    private sealed class ProgressBar(TextWriter output) : IProgress<(long Done, long Total)>
    {
        private int _last = -1;

        public void Report((long Done, long Total) value)
        {
            var percent = value.Total <= 0 ? 100 : (int)Math.Clamp(value.Done * 100 / value.Total, 0, 100);
            if (percent == _last)
            {
                return;
            }

            _last = percent;
            var filled = percent / 5;
            output.Write(string.Create(CultureInfo.InvariantCulture,
                $"\r[{new string('#', filled)}{new string('.', 20 - filled)}] {percent,3}%  {value.Done}/{value.Total}"));
        }

        public void Finish()
        {
            if (_last >= 0)
            {
                output.WriteLine();
            }
        }
    }
}
