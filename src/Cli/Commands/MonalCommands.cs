using System.CommandLine;

namespace Monal.Push.Cli.Commands;

/// <summary>The verbs of `monal-push`, like prosodyctl's. Tokens no verb knows are configuration switches (--Section:Key=value).</summary>
internal static class MonalCommands
{
    public static RootCommand Build()
    {
        var root = new RootCommand("monal-push: the Monal push app server (XEP-0357) with an auditable ledger.");
        root.Subcommands.Add(ServeCommand.Create());
        root.Subcommands.Add(MigrateCommand.Create());
        root.Subcommands.Add(DoctorCommand.Create());
        root.Subcommands.Add(ProjectionsCommand.Create());
        root.Subcommands.Add(PurgeCommand.Create());
        root.Subcommands.Add(GdprCommand.Create());
        root.Subcommands.Add(AuditCommand.Create());
        root.Subcommands.Add(DemoCommand.Create());
        foreach (var command in root.Subcommands)
        {
            AllowConfigurationSwitches(command);
        }

        return root;
    }

    private static void AllowConfigurationSwitches(Command command)
    {
        command.TreatUnmatchedTokensAsErrors = false;
        foreach (var sub in command.Subcommands)
        {
            AllowConfigurationSwitches(sub);
        }
    }
}
