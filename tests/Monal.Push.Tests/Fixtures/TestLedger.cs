using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Npgsql;

namespace Monal.Push.Tests.Fixtures;

/// <summary>Builders for ledger pieces on the run's database.</summary>
public static class TestLedger
{
    public static async Task<EventStore> StoreAsync(
        bool groupCommit = true,
        TimeProvider? clock = null,
        IEnumerable<IInlineProjection>? inline = null,
        IEnumerable<IStreamDeletionHook>? hooks = null,
        int maxBatch = 512,
        TimeSpan? deferredLinger = null)
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        return Store(dataSource, groupCommit, clock, inline, hooks, maxBatch, deferredLinger);
    }

    public static EventStore Store(
        NpgsqlDataSource dataSource,
        bool groupCommit = true,
        TimeProvider? clock = null,
        IEnumerable<IInlineProjection>? inline = null,
        IEnumerable<IStreamDeletionHook>? hooks = null,
        int maxBatch = 512,
        TimeSpan? deferredLinger = null) =>
        new(dataSource, clock ?? TimeProvider.System, inline ?? [], hooks ?? [],
            Options.Create(new LedgerOptions
            {
                GroupCommit = groupCommit,
                MaxBatch = maxBatch,
                DeferredLinger = deferredLinger ?? new LedgerOptions().DeferredLinger,
            }),
            NullLogger<EventStore>.Instance);

    public static MasterKey MasterKey { get; } = new(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
}
