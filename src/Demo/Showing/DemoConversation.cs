using System.Globalization;
using System.Security.Cryptography;
using Monal.Push.Demo.Chatting;
using Monal.Push.Demo.RunningPeers;

namespace Monal.Push.Demo.Showing;

/// <summary>An account on the demo's XMPP server.</summary>
public sealed record DemoUser(string Name, string Password)
{
    /// <summary>A user with a fresh random password (the demo prints it).</summary>
    public static DemoUser Create(string name) => new(name, Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)));

    public string Jid(IXmppServer server)
    {
        ArgumentNullException.ThrowIfNull(server);
        return $"{Name}@{server.Domain}";
    }
}

/// <summary>
/// The two users of the demo: the recipient enables push (XEP-0357) to the component for a device and goes
/// offline; the sender writes to them, so the XMPP server (Prosody's mod_cloud_notify) publishes to the component.
/// </summary>
public sealed class DemoConversation(IXmppServer server, DemoUser recipient, DemoUser sender)
{
    private int _sent;

    public DemoUser Recipient => recipient;

    public DemoUser Sender => sender;

    /// <summary>
    /// XEP-0357 §5: the recipient enables push to <paramref name="componentJid"/> with the registered node and its
    /// secret in the publish-options, then closes its stream: an offline user's messages are what Prosody pushes for.
    /// </summary>
    public async Task EnablePushAndGoOfflineAsync(string componentJid, Guid node, string secret, CancellationToken cancellationToken = default)
    {
        await using var client = await TinyXmppClient.ConnectAsync(
            server.Host, server.ClientPort, server.Domain, recipient.Name, recipient.Password, "demo", null, cancellationToken);
        await client.EnablePushAsync(componentJid, node.ToString(), new Dictionary<string, string> { ["secret"] = secret }, cancellationToken);
        await client.DisconnectAsync(cancellationToken);
    }

    /// <summary>The sender logs in, writes one message to the recipient and logs out; returns the message's number.</summary>
    public async Task<int> SendMessageAsync(CancellationToken cancellationToken = default)
    {
        var number = Interlocked.Increment(ref _sent);
        await using var client = await TinyXmppClient.ConnectAsync(
            server.Host, server.ClientPort, server.Domain, sender.Name, sender.Password, "demo", null, cancellationToken);
        await client.SendMessageAsync(recipient.Jid(server),
            string.Create(CultureInfo.InvariantCulture, $"Hello from the monal-push demo ({number})"), cancellationToken);
        await client.DisconnectAsync(cancellationToken);
        return number;
    }
}
