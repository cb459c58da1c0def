namespace Monal.Push.Purge.Exporting;

/// <summary>Whom a GDPR request is about: a node (`--node N`) or an APNs token (`--token T`).</summary>
public sealed record SubjectQuery
{
    private SubjectQuery(string kind, string value)
    {
        Kind = kind;
        Value = value;
    }

    /// <summary>"node" or "token".</summary>
    public string Kind { get; }

    /// <summary>The node or token as given. Never logged or stored.</summary>
    public string Value { get; }

    /// <summary>
    /// A node: the device UUID of a registered device, or, for a stateless device, the node is the APNs token itself
    /// (docs/architecture.md, "Ingest"), so a node that is not a UUID is looked up as a token.
    /// </summary>
    public static SubjectQuery ByNode(string node)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(node);
        return new("node", node.Trim());
    }

    /// <summary>An APNs device token (hex).</summary>
    public static SubjectQuery ByToken(string token)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(token);
        return new("token", token.Trim());
    }

    /// <summary>Never prints the value.</summary>
    public override string ToString() => $"SubjectQuery({Kind})";
}
