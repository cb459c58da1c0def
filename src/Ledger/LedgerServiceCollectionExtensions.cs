using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Crypto;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Ledger.Faults;
using Monal.Push.Ledger.Schema;
using Npgsql;

namespace Monal.Push.Ledger;

/// <summary>Composition of the ledger: `serve`, the admin verbs and the tests all call this.</summary>
public static class LedgerServiceCollectionExtensions
{
    /// <summary>
    /// Registers the data source (from <c>ConnectionStrings:Ledger</c>), the event store, data keys, keyed hashes,
    /// the migrator, and a hosted service that migrates at start (<c>Ledger:MigrateOnStart</c>). Register it before the
    /// other stages so it starts first.
    /// </summary>
    public static IServiceCollection AddLedger(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<LedgerOptions>().Bind(configuration.GetSection("Ledger"))
            .Validate(o => o.MaxBatch > 0 && o.Writers > 0, "Ledger:MaxBatch and Ledger:Writers must be positive.")
            .Validate(o => o.DeferredLinger >= TimeSpan.Zero && o.DeferredLinger <= TimeSpan.FromSeconds(1), "Ledger:DeferredLinger must be between 0 and 1 second.")
            .ValidateOnStart();
        services.AddOptions<DataOptions>().Bind(configuration.GetSection("Data"));
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton(sp =>
        {
            var connectionString = configuration.GetConnectionString("Ledger");
            if (string.IsNullOrWhiteSpace(connectionString))
            {
                throw new InvalidOperationException("ConnectionStrings:Ledger is not set.");
            }

            var builder = new NpgsqlDataSourceBuilder(connectionString);
            LedgerDataSource.PrepareStatements(builder, connectionString);
            ConnectionBudget.Apply(builder, connectionString);
            builder.UseLoggerFactory(sp.GetRequiredService<ILoggerFactory>());
            return builder.Build();
        });
        services.TryAddSingleton<MasterKey>();
        services.TryAddSingleton<KeyedHash>();
        services.TryAddSingleton<DataKeys>();
        services.TryAddSingleton<EventStore.EventStore>();
        services.TryAddSingleton(sp => sp.GetRequiredService<EventStore.EventStore>().Availability);
        services.TryAddSingleton<EventNotifications>();
        services.TryAddSingleton<SchemaMigrator>();
        services.TryAddSingleton<MasterKeyCheck>();
        services.TryAddSingleton<ConnectionBudget>();
        services.AddHostedService<LedgerStartup>();
        return services;
    }
}

/// <summary>
/// Migrates (when configured), proves the master key is the database's, logs the connection budget and prepares the
/// push partitions before the other stages start. `serve`, `migrate` and every admin verb pass through here, so none
/// of them runs with a master key other than the database's (issue 19). A database that is down or still starting is
/// waited for (with <see cref="LedgerOptions.WaitForDatabase"/>), with backoff and a line on standard error per attempt
/// (issue 15): hosted services start one after another, so nothing else touches the database before it answers. A
/// PostgreSQL out of connections is not waited for: the start fails with the budget's arithmetic and the fix.
/// </summary>
internal sealed class LedgerStartup(
    SchemaMigrator migrator,
    MasterKeyCheck keyCheck,
    ConnectionBudget budget,
    EventStore.EventStore store,
    TimeProvider clock,
    IOptions<LedgerOptions> options,
    ILogger<LedgerStartup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        while (true)
        {
            try
            {
                await PrepareAsync(cancellationToken);
                if (backoff.Failures > 0)
                {
                    Log.DatabaseReachable(logger, backoff.Failures + 1);
                }

                return;
            }
            catch (Exception ex) when (ex is not ConnectionBudgetException && options.Value.WaitForDatabase
                && TransientFaults.IsTransient(ex, cancellationToken))
            {
                var delay = backoff.Next();
                Log.WaitingForDatabase(logger, TransientFaults.Describe(ex), delay);
                await Task.Delay(delay, cancellationToken);
            }
        }
    }

    private async Task PrepareAsync(CancellationToken cancellationToken)
    {
        try
        {
            var snapshot = await budget.ReadAsync(cancellationToken);
            if (snapshot.NodesThatFit < 1)
            {
                Log.ConnectionBudgetTooSmall(logger, snapshot.ToString());
            }
            else
            {
                Log.ConnectionBudget(logger, snapshot.ToString());
            }

            if (options.Value.MigrateOnStart)
            {
                await migrator.MigrateAsync(MigrationSource.Embedded(), cancellationToken);
            }

            if (await keyCheck.VerifyAsync(cancellationToken) == MasterKeyCheck.Outcome.NotMigrated)
            {
                Log.MasterKeyNotChecked(logger);
            }

            var today = DateOnly.FromDateTime(clock.GetUtcNow().UtcDateTime);
            await store.EnsurePushPartitionsAsync(today, today.AddDays(2), cancellationToken);
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.TooManyConnections)
        {
            throw budget.Exceeded(ex);
        }
    }

    public async Task StopAsync(CancellationToken cancellationToken) => await store.DisposeAsync();
}
