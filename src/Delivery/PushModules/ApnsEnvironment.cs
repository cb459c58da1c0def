namespace Monal.Push.Delivery.PushModules;

// Which APNs a module talks to: apps built for development get sandbox tokens, App Store and TestFlight builds production ones.
internal enum ApnsEnvironment
{
    Production,
    Sandbox,
}
