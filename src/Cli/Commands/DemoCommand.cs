using System.CommandLine;
using Monal.Push.Cli.Demonstrating;
using Monal.Push.Ledger.Embedded;

namespace Monal.Push.Cli.Commands;

/// <summary>
/// `monal-push demo [--once]`: a complete local stack on this machine (embedded PostgreSQL, a private Prosody with
/// mod_cloud_notify, the mock APNs and serve) that shows one push end to end, prints what to try next and keeps
/// running until Ctrl-C or SIGTERM, which stop everything in order.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var once = new Option<bool>("--once") { Description = "Stop after the first push is shown (for tests and CI)." };
        var command = new Command("demo", "Run a local stack (PostgreSQL, Prosody, mock APNs, serve) and show a push end to end.") { once };
        command.SetAction((parse, ct) => RunAsync(parse.UnmatchedTokens, parse.GetValue(once), Console.Out, Console.Error, Console.In, ct));
        return command;
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> switches, bool once, TextWriter output, TextWriter error, TextReader input,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        output.WriteLine("monal-push demo: starting a local stack on 127.0.0.1 (Ctrl-C stops it)");
        try
        {
            await using var stack = await DemoStack.StartAsync(switches, output, ct);
            output.WriteLine($"  data folder    {stack.DataPath}");
            try
            {
                await DemoRunner.RunAsync(stack, once, output, input, ct);
            }
            finally
            {
                output.WriteLine("monal-push demo: stopping serve, Prosody, the mock APNs and PostgreSQL…");
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C or SIGTERM: the stack was stopped in order on the way out.
        }
        catch (Exception e) when (e is DemoException or PostgresNotInstalledException)
        {
            error.WriteLine($"monal-push demo: {e.Message}");
            return 1;
        }

        output.WriteLine("monal-push demo: stopped.");
        return 0;
    }
}
