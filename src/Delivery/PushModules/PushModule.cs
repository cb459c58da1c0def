using Monal.Push.Delivery.Apns;

namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// A configured module, ready to send: the pool for its credential and endpoint, and its pre-serialized payload.
/// </summary>
internal sealed class PushModule(
    string name, string topic, ApnsEnvironment environment, PushModuleKind kind, ApnsPayload payload, TimeSpan timeToLive,
    string? collapseId, ApnsClient client)
{
    public string Name { get; } = name;

    public string Topic { get; } = topic;

    public ApnsEnvironment Environment { get; } = environment;

    public PushModuleKind Kind { get; } = kind;

    public ApnsPayload Payload { get; } = payload;

    public TimeSpan TimeToLive { get; } = timeToLive;

    public string? CollapseId { get; } = collapseId;

    public ApnsClient Client { get; } = client;

    // apnsId identifies the push: pass the same one when retrying it.
    public ApnsRequest CreateRequest(string deviceToken, Guid apnsId) =>
        new(deviceToken, Topic, Payload.PushType, Payload.Priority, Payload.Utf8Json, apnsId, TimeToLive, CollapseId);

    public Task<ApnsResponse> SendAsync(string deviceToken, Guid apnsId, CancellationToken ct) =>
        Client.SendAsync(CreateRequest(deviceToken, apnsId), ct);
}
