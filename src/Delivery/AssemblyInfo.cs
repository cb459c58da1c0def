namespace Monal.Push.Delivery;

/// <summary>
/// The stage's types live in use-case folders beside this file (docs/architecture.md, "Projects").
/// </summary>
internal static class AssemblyMarker;
