using System.Security.Cryptography;
using System.Text;

namespace Monal.Push.Ledger.Schema;

/// <summary>One migration file: its name (<c>NNNN_description.sql</c>), its SQL and the checksum recorded when applied.</summary>
public sealed record Migration(string Name, string Sql)
{
    /// <summary>SHA-256 of the file's text with line endings normalised.</summary>
    public string Checksum { get; } = Convert.ToHexStringLower(
        SHA256.HashData(Encoding.UTF8.GetBytes(Sql.Replace("\r\n", "\n", StringComparison.Ordinal))));
}

/// <summary>Where migrations come from: the files embedded in the ledger (the top-level migrations/ folder) or a folder.</summary>
public static class MigrationSource
{
    /// <summary>The migrations compiled into this build, in order.</summary>
    public static IReadOnlyList<Migration> Embedded()
    {
        var assembly = typeof(MigrationSource).Assembly;
        var list = new List<Migration>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("migrations/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            list.Add(new Migration(name["migrations/".Length..], reader.ReadToEnd()));
        }

        return [.. list.OrderBy(m => m.Name, StringComparer.Ordinal)];
    }

    /// <summary>The <c>*.sql</c> files of a folder, in order.</summary>
    public static IReadOnlyList<Migration> FromDirectory(string path) =>
        [.. Directory.GetFiles(path, "*.sql")
            .Order(StringComparer.Ordinal)
            .Select(f => new Migration(Path.GetFileName(f), File.ReadAllText(f)))];
}
