using Monal.Push.Cli.Commands;
using Monal.Push.Tests.Purge;

namespace Monal.Push.Tests.Cli;

/// <summary>`monal-push audit retention` answers with its exit code: 0 when compliant, 1 with the causes named.</summary>
[Trait("Category", "Postgres")]
public sealed class AuditCommandTests
{
    [Fact]
    public async Task AuditRetention_Should_Exit1AndNameTheCause_When_AViolationIsPlanted()
    {
        var connectionString = await PurgeHost.NewDatabaseAsync();
        var dataPath = Directory.CreateTempSubdirectory("monal-audit-").FullName;
        try
        {
            var report = Path.Combine(dataPath, "report.txt");
            string[] args =
            [
                "audit", "retention", "--output", report, $"--ConnectionStrings:Ledger={connectionString}", $"--Data:Path={dataPath}",
                $"--Ledger:MasterKey={PurgeHost.MasterKeyBase64}",
            ];

            Assert.Equal(0, await MonalCommands.Build().Parse(args).InvokeAsync());
            Assert.Contains("COMPLIANT", await File.ReadAllTextAsync(report), StringComparison.Ordinal);

            await using (var host = await PurgeHost.CreateAsync(connectionString, dataPath: dataPath))
            await using (var cmd = host.DataSource.CreateCommand(
                "insert into domain_usage (day, domain, pushes) values (current_date - 20, 'solo.example', 7)"))
            {
                await cmd.ExecuteNonQueryAsync();
            }

            Assert.Equal(1, await MonalCommands.Build().Parse(args).InvokeAsync());
            var text = await File.ReadAllTextAsync(report);
            Assert.Contains("NOT COMPLIANT", text, StringComparison.Ordinal);
            Assert.Contains("domain_usage", text, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dataPath, recursive: true);
        }
    }
}
