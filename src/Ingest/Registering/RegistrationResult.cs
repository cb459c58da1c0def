namespace Monal.Push.Ingest.Registering;

/// <summary>The answer to a v1 registration: the node and its secret, or an error text safe to show the client.</summary>
public sealed record RegistrationResult
{
    private RegistrationResult(string? node, string? secret, string? errorText)
    {
        Node = node;
        Secret = secret;
        ErrorText = errorText;
    }

    public string? Node { get; }

    public string? Secret { get; }

    /// <summary>Set when the request failed; contains no personal data (it goes on the wire and may be logged by peers).</summary>
    public string? ErrorText { get; }

    public bool Succeeded => ErrorText is null;

    public static RegistrationResult Ok(string node, string? secret = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(node);
        return new(node, secret, null);
    }

    public static RegistrationResult Error(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return new(null, null, text);
    }

    /// <summary>Redacted: the node may identify a device and the secret is a credential.</summary>
    public override string ToString() =>
        Succeeded ? $"RegistrationResult {{ Ok, HasSecret = {Secret is not null} }}" : $"RegistrationResult {{ Error = {ErrorText} }}";
}
