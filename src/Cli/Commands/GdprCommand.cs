using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Purge.Erasing;
using Monal.Push.Purge.Exporting;
using Monal.Push.Purge.Locating;
using Monal.Push.Purge.Scheduling;

namespace Monal.Push.Cli.Commands;

/// <summary>
/// `monal-push gdpr export|erase --node N | --token T`: GDPR Art. 15 export and Art. 17 erasure. Standard output
/// carries only the export document or the erase receipts; everything for the operator goes to standard error. A
/// request that finds nothing exits with <see cref="ExitCodes.NothingFound"/>, so a mistyped token never passes for
/// a done erasure.
/// </summary>
internal static class GdprCommand
{
    public static Command Create()
    {
        var command = new Command("gdpr", "Answer subject access (export) and erasure requests for one device.");
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Erase());
        return command;
    }

    private static (Option<string?> Node, Option<string?> Token) SubjectOptions() =>
        (new Option<string?>("--node") { Description = "The device's node: a registered device UUID, or a stateless node (its APNs token)" },
         new Option<string?>("--token") { Description = "The device's APNs token (hex)" });

    private static SubjectQuery? Query(ParseResult parse, Option<string?> node, Option<string?> token)
    {
        var n = parse.GetValue(node);
        var t = parse.GetValue(token);
        return (n, t) switch
        {
            ({ Length: > 0 }, null) => SubjectQuery.ByNode(n),
            (null, { Length: > 0 }) => SubjectQuery.ByToken(t),
            _ => null,
        };
    }

    private static Command Export()
    {
        var (node, token) = SubjectOptions();
        var format = new Option<string>("--format") { Description = "json or text", DefaultValueFactory = _ => "json" };
        var output = new Option<string?>("--output") { Description = "Write to this file instead of standard output" };
        var export = new Command("export", "Everything held about one device, with purposes, retention periods, recipients and source.")
        {
            node, token, format, output,
        };
        export.SetAction(async (parse, ct) =>
        {
            if (Query(parse, node, token) is not { } query)
            {
                await Console.Error.WriteLineAsync("Give exactly one of --node or --token.");
                return ExitCodes.Usage;
            }

            var fmt = parse.GetValue(format)?.ToLowerInvariant() switch
            {
                "json" => ExportFormat.Json,
                "text" => ExportFormat.Text,
                _ => (ExportFormat?)null,
            };
            if (fmt is null)
            {
                await Console.Error.WriteLineAsync("--format must be json or text.");
                return ExitCodes.Usage;
            }

            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var result = await host.Services.GetRequiredService<SubjectAccessExporter>().ExportAsync(query, fmt.Value, ct);
            // The document is written either way: "no data is held" is itself the answer to give the requester.
            await WriteAsync(parse.GetValue(output), result.Document, ct);
            if (result.Export.Devices.Count == 0)
            {
                await Console.Error.WriteLineAsync(NothingFound(query));
                return ExitCodes.NothingFound;
            }

            return ExitCodes.Ok;
        });
        return export;
    }

    private static Command Erase()
    {
        var (node, token) = SubjectOptions();
        var dryRun = new Option<bool>("--dry-run") { Description = "List what would be deleted; delete nothing" };
        var erase = new Command("erase", "Crypto-shred and hard-delete one device, its read models and throttle state; print a receipt.")
        {
            node, token, dryRun,
        };
        erase.SetAction(async (parse, ct) =>
        {
            if (Query(parse, node, token) is not { } query)
            {
                await Console.Error.WriteLineAsync("Give exactly one of --node or --token.");
                return ExitCodes.Usage;
            }

            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var receipts = await host.Services.GetRequiredService<DeviceEraser>().EraseAsync(query, parse.GetValue(dryRun), ct);
            if (receipts.Count == 0)
            {
                await Console.Error.WriteLineAsync(NothingFound(query) + " Nothing was erased.");
                return ExitCodes.NothingFound;
            }

            foreach (var r in receipts)
            {
                Console.Out.WriteLine($"{(r.DryRun ? "Would erase" : "Erased")} at {r.ErasedAt:u}, receipt {r.ReceiptId}: {RetentionJobs.Describe(r.Deleted)}");
            }

            return ExitCodes.Ok;
        });
        return erase;
    }

    private static string NothingFound(SubjectQuery query) =>
        $"NOT FOUND: nothing is held about a device with that {query.Kind} (a token or hex node is matched ignoring case; " +
        "check that it was copied whole, and that the device used this server).";

    internal static async Task WriteAsync(string? file, string document, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(file))
        {
            await Console.Out.WriteAsync(document);
            if (!document.EndsWith('\n'))
            {
                await Console.Out.WriteLineAsync();
            }

            return;
        }

        await File.WriteAllTextAsync(file, document, ct);
        await Console.Error.WriteLineAsync($"Written to {file}");
    }
}
