using System.Collections.Concurrent;
using Monal.Push.Ingest.Registering;
using Monal.Push.Ingest.RequestingPush;
using Monal.Push.Ingest.Stanzas;

namespace Monal.Push.Tests.Ingest;

/// <summary>A publish handler whose answers the test decides: a fixed outcome, an exception, or one held until released.</summary>
internal sealed class FakePublishHandler : IPublishHandler
{
    private readonly ConcurrentDictionary<string, TaskCompletionSource<PublishOutcome>> _held = new();

    public Func<PublishRequest, PublishOutcome> Answer { get; set; } = _ => PublishOutcome.Accepted;

    /// <summary>When set, every request waits until <see cref="Release"/> is called with its id.</summary>
    public bool Hold { get; set; }

    public ConcurrentQueue<PublishRequest> Received { get; } = new();

    public int HeldCount => _held.Count;

    public IReadOnlyCollection<string> HeldIds => [.. _held.Keys];

    public async ValueTask<PublishOutcome> HandleAsync(PublishRequest request, CancellationToken ct)
    {
        Received.Enqueue(request);
        if (!Hold)
        {
            return Answer(request);
        }

        var held = new TaskCompletionSource<PublishOutcome>(TaskCreationOptions.RunContinuationsAsynchronously);
        _held[request.Id] = held;
        return await held.Task;
    }

    public void Release(string id, PublishOutcome outcome)
    {
        Assert.True(_held.TryRemove(id, out var held));
        held.SetResult(outcome);
    }
}

internal sealed class FakeRegistrationHandler : IRegistrationHandler
{
    public List<(string Action, string Type, string Node, string? Token, string FromDomain)> Calls { get; } = [];

    public Func<RegistrationResult>? Answer { get; set; }

    public ValueTask<RegistrationResult> RegisterAsync(string type, string node, string token, string fromDomain, CancellationToken ct)
    {
        Calls.Add(("register", type, node, token, fromDomain));
        return ValueTask.FromResult(Answer?.Invoke() ?? RegistrationResult.Ok(node, "the-secret"));
    }

    public ValueTask<RegistrationResult> UnregisterAsync(string type, string node, string fromDomain, CancellationToken ct)
    {
        Calls.Add(("unregister", type, node, null, fromDomain));
        return ValueTask.FromResult(Answer?.Invoke() ?? RegistrationResult.Ok(node));
    }
}
