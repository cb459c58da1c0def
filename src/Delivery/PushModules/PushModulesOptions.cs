namespace Monal.Push.Delivery.PushModules;

// The whole `PushModules` section: module name -> options. Names are matched ignoring case, as configuration keys are.
internal sealed class PushModulesOptions
{
    public const string SectionName = "PushModules";

    public Dictionary<string, PushModuleOptions> Modules { get; } = new(StringComparer.OrdinalIgnoreCase);

    public IReadOnlyList<string> Validate() => [.. Modules.SelectMany(m => m.Value.Validate(m.Key))];
}
