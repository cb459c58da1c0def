using Microsoft.Extensions.Options;

namespace Monal.Push.Ingest.Component;

/// <summary>Bad configuration is the one thing that stops the process; the messages never echo the secret.</summary>
internal sealed class ComponentOptionsValidator : IValidateOptions<ComponentOptions>
{
    public ValidateOptionsResult Validate(string? name, ComponentOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.Domain))
        {
            failures.Add("Xmpp:Component:Domain is required (our component's domain, e.g. push.example.org).");
        }

        if (string.IsNullOrEmpty(options.Secret))
        {
            failures.Add("Xmpp:Component:Secret is required (the component secret configured on the XMPP server).");
        }

        if (string.IsNullOrWhiteSpace(options.Host))
        {
            failures.Add("Xmpp:Component:Host must not be empty.");
        }

        if (options.Port is < 1 or > 65535)
        {
            failures.Add("Xmpp:Component:Port must be between 1 and 65535.");
        }

        if (options.MaxStanzaBytes < 1024)
        {
            failures.Add("Xmpp:Component:MaxStanzaBytes must be at least 1024.");
        }

        if (options.MaxInFlight < 1)
        {
            failures.Add("Xmpp:Component:MaxInFlight must be at least 1.");
        }

        if (options.KeepAliveInterval <= TimeSpan.Zero || options.HandshakeTimeout <= TimeSpan.Zero ||
            options.ShutdownTimeout < TimeSpan.Zero)
        {
            failures.Add("Xmpp:Component:KeepAliveInterval and HandshakeTimeout must be positive, ShutdownTimeout not negative.");
        }

        if (options.ReconnectMinDelay <= TimeSpan.Zero || options.ReconnectMaxDelay < options.ReconnectMinDelay)
        {
            failures.Add("Xmpp:Component:ReconnectMinDelay must be positive and not above ReconnectMaxDelay.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
