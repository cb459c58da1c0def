namespace Monal.Push.Ingest.Registering;

/// <summary>Options of v1 registrations (configuration section <c>Registration</c>).</summary>
internal sealed class RegistrationOptions
{
    public const string Section = "Registration";

    /// <summary>The push module a v1 registration with <c>type=apns</c> uses (PRODUCT.md <c>Registration:PushModule</c>).</summary>
    public string? PushModule { get; set; }
}
