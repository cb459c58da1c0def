namespace Monal.Push.MockApns;

/// <summary>
/// One request as the mock received it, and how it answered.
/// </summary>
public sealed class MockApnsRequest
{
    public required int Sequence { get; init; }

    public required string Method { get; init; }

    public required string Path { get; init; }

    public required string? DeviceToken { get; init; }

    public required string Protocol { get; init; }

    public required bool IsHttps { get; init; }

    public required string ConnectionId { get; init; }

    // Header names in lower case, as HTTP/2 sends them.
    public required IReadOnlyDictionary<string, string> Headers { get; init; }

    public required byte[] Payload { get; init; }

    public required MockProviderToken? ProviderToken { get; init; }

    public required string? ClientCertificateThumbprint { get; init; }

    // Requests being handled when this one arrived, itself included.
    public required int ConcurrentAtArrival { get; init; }

    public required DateTimeOffset ReceivedAt { get; init; }

    private readonly TaskCompletionSource<int> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // The status the mock answered, set just before the answer is written; 0 while undecided or when the request was
    // never answered (reset, dropped, abandoned by the client). Read it after Done.
    public int Status { get; internal set; }

    // Completes with Status once the mock has finished with the request (answered or not). The request is recorded
    // as soon as it arrives, before its answer: wait for this before asserting on Status.
    public Task<int> Done => _done.Task;

    internal void MarkDone() => _done.TrySetResult(Status);

    public string? Reason { get; internal set; }

    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// The decoded JWT of a request.
/// </summary>
public sealed record MockProviderToken(string Raw, string? Algorithm, string? KeyId, string? Issuer, long? IssuedAt, bool? SignatureValid);
