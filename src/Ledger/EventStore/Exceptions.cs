namespace Monal.Push.Ledger.EventStore;

/// <summary>Base class of the ledger's domain failures.</summary>
public abstract class LedgerException : Exception
{
    /// <summary>Creates the exception.</summary>
    protected LedgerException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The stream was not at the version the caller expected: another writer won.</summary>
public sealed class StreamVersionConflictException(Guid streamId, long expected, Exception? inner = null)
    : LedgerException($"Stream {streamId} was not at the expected version {expected}.", inner)
{
    /// <summary>The stream that conflicted.</summary>
    public Guid StreamId { get; } = streamId;

    /// <summary>The version the caller expected.</summary>
    public long Expected { get; } = expected;
}

/// <summary>The stream does not exist.</summary>
public sealed class StreamNotFoundException(Guid streamId) : LedgerException($"Stream {streamId} does not exist.")
{
    /// <summary>The missing stream.</summary>
    public Guid StreamId { get; } = streamId;
}

/// <summary>
/// An inline projection refused the append in its transaction (SQLSTATE MPG01), for example a push to a device
/// that was erased a moment ago. Nothing of the append was stored.
/// </summary>
public sealed class AppendRejectedException(string reason, Exception? inner = null)
    : LedgerException($"The append was rejected: {reason}.", inner)
{
    /// <summary>Why, as the projection put it (the constraint name; never personal data).</summary>
    public string Reason { get; } = reason;
}

/// <summary>An applied migration file was edited afterwards.</summary>
public sealed class MigrationChecksumMismatchException(string file)
    : LedgerException($"Migration {file} was changed after it was applied. Migrations are forward-only: restore the file and add a new one.")
{
    /// <summary>The edited file.</summary>
    public string File { get; } = file;
}
