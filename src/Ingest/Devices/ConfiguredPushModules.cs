using System.Collections.Frozen;
using Microsoft.Extensions.Configuration;
using Monal.Push.Ledger.Events;

namespace Monal.Push.Ingest.Devices;

/// <summary>
/// The names of the push modules configured under <c>PushModules:&lt;name&gt;</c>. Ingest only needs the names (to
/// refuse a publish naming an unknown module); Delivery owns what a module means, and Ingest does not reference it.
/// Names compare by <see cref="PushModuleNames.Comparer"/>, the rule Delivery uses too.
/// </summary>
internal sealed class ConfiguredPushModules
{
    public const string Section = "PushModules";

    private readonly FrozenSet<string> _names;

    public ConfiguredPushModules(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _names = configuration.GetSection(Section).GetChildren().Select(c => c.Key).ToFrozenSet(PushModuleNames.Comparer);
    }

    public ConfiguredPushModules(IEnumerable<string> names) => _names = names.ToFrozenSet(PushModuleNames.Comparer);

    public IReadOnlySet<string> Names => _names;

    public bool Contains(string? name) => name is not null && _names.Contains(name);
}
