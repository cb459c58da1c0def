using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Monal.Push.Ledger;
using Monal.Push.Projections;

namespace Monal.Push.Benchmarks.Support;

/// <summary>A node of the ledger and its projections on a benchmark database, composed as serve composes them.</summary>
internal static class BenchNode
{
    public static ServiceProvider Build(BenchDatabase db, IDictionary<string, string?> settings)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        var values = new Dictionary<string, string?>(settings)
        {
            ["ConnectionStrings:Ledger"] = db.ConnectionString,
            ["Ledger:MigrateOnStart"] = "false",
        };
        var config = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        services.AddLedger(config).AddProjections(config);
        return services.BuildServiceProvider();
    }
}
