namespace Monal.Push.Purge.Exporting;
public sealed class SubjectAccessExporter;
