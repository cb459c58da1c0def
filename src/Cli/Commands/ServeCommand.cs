using System.CommandLine;
using Monal.Push.Cli.Hosting;

namespace Monal.Push.Cli.Commands;

/// <summary>`monal-push serve`: runs the pipeline until SIGTERM or Ctrl-C.</summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var command = new Command("serve", "Run the push server: XMPP component, registration API, delivery, projections, retention jobs.");
        command.SetAction(async (parse, ct) =>
        {
            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Serve, ct);
            await host.WaitForShutdownAsync(ct);
            return 0;
        });
        return command;
    }
}
