namespace Monal.Push.Delivery.PushModules;

/// <summary>
/// Which APNs a module talks to: apps built for development get sandbox tokens, App Store and TestFlight builds production ones.
/// </summary>
internal enum ApnsEnvironment
{
    Production,
    Sandbox,
}
