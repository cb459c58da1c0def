using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Cli.Hosting;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.Schema;

namespace Monal.Push.Cli.Commands;

/// <summary>`monal-push migrate`: applies the migrations that are missing, and says which.</summary>
internal static class MigrateCommand
{
    public static Command Create()
    {
        var command = new Command("migrate", "Apply the database migrations that are missing (safe to run again).");
        command.SetAction(async (parse, ct) =>
        {
            await using var host = await MonalHost.StartAsync(parse.UnmatchedTokens, HostRole.Admin, ct);
            var migrator = host.Services.GetRequiredService<SchemaMigrator>();
            var applied = await migrator.MigrateAsync(MigrationSource.Embedded(), ct);
            // The host checked the key at start unless the schema had no master_key_check yet (Ledger:MigrateOnStart=false
            // on an older schema): the first migrate records this node's key, a later one refuses a different key.
            await host.Services.GetRequiredService<MasterKeyCheck>().VerifyAsync(ct);
            Console.Out.WriteLine(applied.Count == 0
                ? "The schema is up to date; nothing to apply."
                : $"Applied {applied.Count} migration(s): {string.Join(", ", applied)}");
            return 0;
        });
        return command;
    }
}
