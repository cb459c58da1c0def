namespace Monal.Push.Purge;

// The stage's types live in use-case folders beside this file (STYLE.md section 1).
internal static class AssemblyMarker;
