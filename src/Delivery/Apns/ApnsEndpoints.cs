namespace Monal.Push.Delivery.Apns;

internal static class ApnsEndpoints
{
    public static readonly Uri Production = new("https://api.push.apple.com/");
    public static readonly Uri Sandbox = new("https://api.sandbox.push.apple.com/");
}
