namespace Monal.Push.Ingest.RequestingPush;

/// <summary>
/// An XEP-0357 publish, as parsed from the IQ. It holds no user JID and nothing of the summary form
/// (message body, sender, counts): <see cref="FromDomain"/> is already cut to the domain.
/// </summary>
/// <param name="Id">The IQ id, opaque (ejabberd's contain '+', '/' and '=').</param>
/// <param name="ToDomain">Our component's domain as the server addressed it.</param>
/// <param name="FromDomain">The requesting XMPP server's domain (the local part and resource are removed).</param>
/// <param name="Node">The push node: a registered device UUID, or in stateless mode the APNs token itself.</param>
/// <param name="PushModule">Publish-option <c>pushModule</c> (stateless mode), or null.</param>
/// <param name="Secret">Publish-option <c>secret</c> (registered mode), or null.</param>
/// <param name="HasItem">Whether the publish carried an <c>&lt;item/&gt;</c>; the parser currently requires one.</param>
public sealed record PublishRequest(
    string Id, string ToDomain, string FromDomain, string Node, string? PushModule, string? Secret, bool HasItem)
{
    /// <summary>Redacted: the node may be an APNs token and the secret is a credential.</summary>
    public override string ToString() =>
        $"PublishRequest {{ Id = {Id}, ToDomain = {ToDomain}, FromDomain = {FromDomain}, PushModule = {PushModule}, " +
        $"HasSecret = {Secret is not null}, HasItem = {HasItem} }}";
}
