namespace Monal.Push.Load.Listening;

/// <summary>An IQ reply from the component: <c>result</c>, or <c>error</c> with its type and defined condition.</summary>
internal readonly record struct Reply(string Id, bool IsResult, string? ErrorType, string? Condition)
{
    /// <summary>"result" or "type/condition", e.g. "auth/not-authorized".</summary>
    public string Outcome => IsResult ? "result" : (ErrorType ?? "?") + "/" + (Condition ?? "?");
}
