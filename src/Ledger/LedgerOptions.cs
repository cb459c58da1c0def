namespace Monal.Push.Ledger;

/// <summary>Options of the ledger (configuration section <c>Ledger</c>).</summary>
public sealed class LedgerOptions
{
    /// <summary>Apply migrations when the host starts.</summary>
    public bool MigrateOnStart { get; set; } = true;

    /// <summary>Group commit: many concurrent appends share one transaction and one round trip.</summary>
    public bool GroupCommit { get; set; } = true;

    /// <summary>At most this many appends share one transaction.</summary>
    public int MaxBatch { get; set; } = 512;

    /// <summary>Concurrent group-commit writers (connections). MEASURED.md: about 8 connections is the sweet spot.</summary>
    public int Writers { get; set; } = 4;

    /// <summary>The master key as base64 (32 bytes); when empty, <see cref="MasterKeyFile"/> is used.</summary>
    public string? MasterKey { get; set; }

    /// <summary>Where the master key file lives; default <c>master.key</c> under the data folder, created on first start.</summary>
    public string? MasterKeyFile { get; set; }
}

/// <summary>The data folder (configuration section <c>Data</c>).</summary>
public sealed class DataOptions
{
    /// <summary>Embedded database, log files and key file live here.</summary>
    public string Path { get; set; } = "var";
}
