namespace Monal.Push.Ingest.Registering;

/// <summary>Options of v1 registrations (configuration section <c>Registration</c>).</summary>
internal sealed class RegistrationOptions
{
    public const string Section = "Registration";

    /// <summary>The push module a v1 registration with <c>type=apns</c> uses (<c>Registration:PushModule</c>, docs/operators.md).</summary>
    public string? PushModule { get; set; }
}
