namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// Configuration section `Delivery`: how the dispatcher claims, sends and retries.
/// </summary>
internal sealed class DeliveryOptions
{
    public const string Section = "Delivery";

    // How long a claim on a queued push lasts unless renewed; a killed node's pushes are taken over after this.
    public TimeSpan LeaseDuration { get; set; } = TimeSpan.FromSeconds(30);

    // How often the queue is polled for delayed pushes, retries and pushes left by other nodes.
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    // Sends in flight at once over all push modules (each APNs pool caps its own connection on top). As many pushes
    // again, answered by Apple, may wait for their outcome's commit without holding a slot.
    public int MaxInFlight { get; set; } = 256;

    // Claimed pushes held in memory waiting for a send slot (the fast path and the poller share it).
    public int QueueCapacity { get; set; } = 10_000;

    // At most this many rows per claim query.
    public int ClaimBatch { get; set; } = 500;

    // Exponential backoff of transient failures: base * 2^attempts, capped, with jitter, until the push expires.
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    // A send is started only while the claim has at least this much left, and is abandoned when only this much
    // is left, so a send never outlives its claim (another node may take the push after the lease).
    public TimeSpan LeaseSafetyMargin { get; set; } = TimeSpan.FromSeconds(5);

    // On shutdown, in-flight sends get this long to finish and record their outcomes.
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (LeaseDuration <= TimeSpan.Zero)
        {
            problems.Add("Delivery:LeaseDuration must be positive.");
        }

        if (LeaseSafetyMargin < TimeSpan.Zero || LeaseSafetyMargin * 3 > LeaseDuration)
        {
            problems.Add("Delivery:LeaseSafetyMargin must be between zero and a third of Delivery:LeaseDuration.");
        }

        if (PollInterval <= TimeSpan.Zero)
        {
            problems.Add("Delivery:PollInterval must be positive.");
        }

        if (MaxInFlight < 1 || QueueCapacity < 1 || ClaimBatch < 1)
        {
            problems.Add("Delivery:MaxInFlight, Delivery:QueueCapacity and Delivery:ClaimBatch must be at least 1.");
        }

        if (RetryBaseDelay <= TimeSpan.Zero || RetryMaxDelay < RetryBaseDelay)
        {
            problems.Add("Delivery:RetryBaseDelay must be positive and Delivery:RetryMaxDelay at least as long.");
        }

        if (ShutdownTimeout < TimeSpan.Zero)
        {
            problems.Add("Delivery:ShutdownTimeout must not be negative.");
        }

        return problems;
    }
}
