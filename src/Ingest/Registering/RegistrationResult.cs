namespace Monal.Push.Ingest.Registering;

/// <summary>The answer to a v1 registration: the node and its secret, or an error text safe to show the client.</summary>
public sealed record RegistrationResult
{
    private RegistrationResult(string? node, string? secret, string? errorText, bool tryLater = false)
    {
        Node = node;
        Secret = secret;
        ErrorText = errorText;
        TryLater = tryLater;
    }

    public string? Node { get; }

    public string? Secret { get; }

    /// <summary>Set when the request failed; contains no personal data (it goes on the wire and may be logged by peers).</summary>
    public string? ErrorText { get; }

    public bool Succeeded => ErrorText is null;

    /// <summary>Refused for now, not for good (a limit): ad-hoc answers <c>wait</c>/<c>resource-constraint</c>, HTTP 429.</summary>
    public bool TryLater { get; }

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

    /// <summary>A refusal the requester should retry later (a limit was reached).</summary>
    public static RegistrationResult Later(string text)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return new(null, null, text, tryLater: true);
    }

    /// <summary>Redacted: the node may identify a device and the secret is a credential.</summary>
    public override string ToString() =>
        Succeeded ? $"RegistrationResult {{ Ok, HasSecret = {Secret is not null} }}" : $"RegistrationResult {{ Error = {ErrorText} }}";
}
