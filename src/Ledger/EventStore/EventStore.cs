using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Faults;
using Npgsql;

namespace Monal.Push.Ledger.EventStore;

/// <summary>
/// The event store on PostgreSQL, shaped like Marten's: a streams table whose version row is the authority for
/// stream versions, an events table and a day-partitioned push_events table sharing one global sequence, inline
/// projections in the append transaction, and group commit on the hot path. Written by hand: Marten was not served
/// when the project began, and measured beside Marten 9 it is kept (docs/architecture.md "Why not Marten and
/// Wolverine"); docs/architecture.md explains the design.
/// </summary>
public sealed partial class EventStore : IAsyncDisposable
{
    /// <summary>The channel NOTIFY'd by every append, read by <see cref="EventNotifications"/>.</summary>
    public const string NotifyChannel = "monal_events";

    private readonly NpgsqlDataSource _dataSource;
    private readonly TimeProvider _clock;
    private readonly IInlineProjection[] _inline;
    private readonly IStreamDeletionHook[] _deletionHooks;
    private readonly LedgerOptions _options;
    private readonly ILogger<EventStore> _logger;
    private readonly GroupCommitter? _committer;
    private readonly AppendNotifier _notifier;

    /// <summary>Creates the store; group commit starts its writers at once when enabled.</summary>
    public EventStore(
        NpgsqlDataSource dataSource,
        TimeProvider clock,
        IEnumerable<IInlineProjection> inlineProjections,
        IEnumerable<IStreamDeletionHook> deletionHooks,
        IOptions<LedgerOptions> options,
        ILogger<EventStore> logger)
    {
        _dataSource = dataSource;
        _clock = clock;
        _inline = [.. inlineProjections];
        _deletionHooks = [.. deletionHooks];
        _options = options.Value;
        _logger = logger;
        _notifier = new AppendNotifier(dataSource, _options.NotifyInterval, logger);
        Availability = new LedgerAvailability(clock);
        if (_options.GroupCommit)
        {
            _committer = new GroupCommitter(this, Math.Max(1, _options.MaxBatch), Math.Max(1, _options.Writers), _options.DeferredLinger);
        }
    }

    /// <summary>What this process has seen of the database lately (appends and every background loop report here).</summary>
    public LedgerAvailability Availability { get; }

    /// <summary>The data source the store writes through (one per process).</summary>
    public NpgsqlDataSource DataSource => _dataSource;

    /// <summary>Observed batch sizes of group commit, for metrics.</summary>
    public event Action<int>? BatchCommitted;

    /// <summary>Stops accepting appends and waits for queued ones to commit.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_committer is not null)
        {
            await _committer.DisposeAsync();
        }

        await _notifier.DisposeAsync();
    }
}
