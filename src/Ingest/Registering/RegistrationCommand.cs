namespace Monal.Push.Ingest.Registering;

internal enum RegistrationAction
{
    Register,
    Unregister,
}

/// <summary>A submitted <c>v1-register-push</c> / <c>v1-unregister-push</c> form (Token is null when unregistering).</summary>
internal sealed record RegistrationCommand(RegistrationAction Action, string Type, string Node, string? Token)
{
    public override string ToString() => $"RegistrationCommand {{ {Action}, Type = {Type} }}";
}
