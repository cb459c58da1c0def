namespace Monal.Push.Ingest.Xml;

/// <summary>
/// The stream can no longer be used: the connection sends <c>&lt;stream:error&gt;</c> with <see cref="Condition"/>
/// (RFC 6120 section 4.9.3) and closes. The message never carries stanza content.
/// </summary>
internal sealed class StreamErrorException : Exception
{
    public StreamErrorException(string condition)
        : base($"XMPP stream error: {condition}") => Condition = condition;

    public StreamErrorException(string condition, Exception innerException)
        : base($"XMPP stream error: {condition}", innerException) => Condition = condition;

    public StreamErrorException()
        : this(StreamErrorConditions.UndefinedCondition)
    {
    }

    /// <summary>The RFC 6120 defined condition, e.g. <c>not-well-formed</c>.</summary>
    public string Condition { get; }
}
