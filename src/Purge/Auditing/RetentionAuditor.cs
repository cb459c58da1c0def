namespace Monal.Push.Purge.Auditing;
public sealed class RetentionAuditor;
