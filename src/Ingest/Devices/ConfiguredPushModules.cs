using System.Collections.Frozen;
using Microsoft.Extensions.Configuration;

namespace Monal.Push.Ingest.Devices;

/// <summary>
/// The names of the push modules configured under <c>PushModules:&lt;name&gt;</c>. Ingest only needs the names (to
/// refuse a publish naming an unknown module); Delivery owns what a module means, and Ingest does not reference it.
/// Names compare ordinally, as the publish-option carries them.
/// </summary>
internal sealed class ConfiguredPushModules
{
    public const string Section = "PushModules";

    private readonly FrozenSet<string> _names;

    public ConfiguredPushModules(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _names = configuration.GetSection(Section).GetChildren().Select(c => c.Key).ToFrozenSet(StringComparer.Ordinal);
    }

    public ConfiguredPushModules(IEnumerable<string> names) => _names = names.ToFrozenSet(StringComparer.Ordinal);

    public IReadOnlySet<string> Names => _names;

    public bool Contains(string? name) => name is not null && _names.Contains(name);
}
