using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Purge.Auditing;

namespace Monal.Push.Cli.Commands;

/// <summary>`monal-push audit retention`: proof, for a privacy officer, that nothing is held longer or in more detail than the policy says.</summary>
internal static class AuditCommand
{
    public static Command Create()
    {
        var format = new Option<string>("--format") { Description = "text, json or html", DefaultValueFactory = _ => "text" };
        var output = new Option<string?>("--output") { Description = "Write to this file instead of standard output" };
        var retention = new Command("retention", "Inventory, retention runs of the last 30 days, pending deletions and a personal-data scan. Exit 0 when compliant.")
        {
            format, output,
        };
        retention.SetAction(async (parse, ct) =>
        {
            var fmt = parse.GetValue(format)?.ToLowerInvariant() switch
            {
                "text" => ReportFormat.Text,
                "json" => ReportFormat.Json,
                "html" => ReportFormat.Html,
                _ => (ReportFormat?)null,
            };
            if (fmt is null)
            {
                await Console.Error.WriteLineAsync("--format must be text, json or html.");
                return ExitCodes.Usage;
            }

            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var report = await host.Services.GetRequiredService<RetentionAuditor>().AuditAsync(ct);
            await GdprCommand.WriteAsync(parse.GetValue(output), RetentionReportRenderer.Render(report, fmt.Value), ct);
            if (!report.Compliant)
            {
                await Console.Error.WriteLineAsync($"NOT COMPLIANT: {report.Violations.Count} violation(s).");
            }

            return report.Compliant ? ExitCodes.Ok : ExitCodes.Failed;
        });
        var command = new Command("audit", "Audits for privacy officers.");
        command.Subcommands.Add(retention);
        return command;
    }
}
