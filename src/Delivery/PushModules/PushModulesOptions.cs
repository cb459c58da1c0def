using Monal.Push.Ledger.Events;

namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// The whole `PushModules` section: module name -&gt; options. Names compare as PushModuleNames says (ordinally).
/// </summary>
internal sealed class PushModulesOptions
{
    public const string Section = "PushModules";

    public Dictionary<string, PushModuleOptions> Modules { get; } = new(PushModuleNames.Comparer);

    public IReadOnlyList<string> Validate() => [.. Modules.SelectMany(m => m.Value.Validate(m.Key))];
}
