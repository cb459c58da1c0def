namespace Monal.Push.Delivery.PushModules;

internal enum PushModuleKind
{
    // The visible "New Message" alert with mutable-content, priority 10 (Monal's default).
    Alert,

    // A silent content-available push, priority 5.
    Background,
}
