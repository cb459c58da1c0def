using System.Diagnostics;
using System.Globalization;
using System.Text;
using Monal.Push.Ledger.Embedded;
using Npgsql;

namespace Monal.Push.Tests.Fixtures;

/// <summary>A full `pg_dump` of a database, as a backup would hold it: what privacy and erasure tests search.</summary>
public static class PgDump
{
    public static async Task<string> DumpAsync(string connectionString)
    {
        var cs = new NpgsqlConnectionStringBuilder(connectionString);
        var psi = new ProcessStartInfo(Path.Combine(EmbeddedPostgres.FindBinaries(), "pg_dump"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in new[] { "-h", cs.Host!, "-p", cs.Port.ToString(CultureInfo.InvariantCulture), "-U", cs.Username!, "-d", cs.Database!, "--no-owner" })
        {
            psi.ArgumentList.Add(a);
        }

        if (!string.IsNullOrEmpty(cs.Password))
        {
            psi.Environment["PGPASSWORD"] = cs.Password;
        }

        using var process = Process.Start(psi)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, "pg_dump failed: " + await error);
        var dump = await output;
        Assert.Contains("CREATE TABLE public.events", dump, StringComparison.Ordinal);
        return dump;
    }
}
