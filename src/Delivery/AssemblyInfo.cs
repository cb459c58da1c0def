namespace Monal.Push.Delivery;

// The stage's types live in use-case folders beside this file (docs/architecture.md, "Projects").
internal static class AssemblyMarker;
