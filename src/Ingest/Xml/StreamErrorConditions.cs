namespace Monal.Push.Ingest.Xml;

/// <summary>The RFC 6120 section 4.9.3 stream error conditions this component sends or recognises.</summary>
internal static class StreamErrorConditions
{
    public const string BadFormat = "bad-format";
    public const string ConnectionTimeout = "connection-timeout";
    public const string InvalidNamespace = "invalid-namespace";
    public const string NotAuthorized = "not-authorized";
    public const string NotWellFormed = "not-well-formed";
    public const string PolicyViolation = "policy-violation";
    public const string RestrictedXml = "restricted-xml";
    public const string SystemShutdown = "system-shutdown";
    public const string UndefinedCondition = "undefined-condition";
}
