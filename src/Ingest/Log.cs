using Microsoft.Extensions.Logging;

namespace Monal.Push.Ingest;

/// <summary>
/// Ingest log messages, event ids 2000-2999. Never pass a node, token, JID or body here:
/// domains of XMPP servers and our own configuration are the only names that may appear; IQ ids at Debug at most.
/// </summary>
internal static partial class Log
{
    // 2000-2049: the component link (XEP-0114).
    [LoggerMessage(2000, LogLevel.Information, "Connecting the XMPP component {Domain} to {Host}:{Port}")]
    public static partial void Connecting(ILogger logger, string domain, string host, int port);

    [LoggerMessage(2001, LogLevel.Information, "XMPP component {Domain} connected (stream {StreamId})")]
    public static partial void Connected(ILogger logger, string domain, string? streamId);

    [LoggerMessage(2002, LogLevel.Error,
        "The XMPP server refused the component handshake for {Domain} ({Reason}): check Xmpp:Component:Secret and " +
        "Xmpp:Component:Domain against the server's component configuration; retrying in {Delay}")]
    public static partial void HandshakeRejected(ILogger logger, string domain, string reason, TimeSpan delay);

    [LoggerMessage(2003, LogLevel.Warning, "XMPP component link lost ({Reason}); reconnecting in {Delay}")]
    public static partial void LinkLost(ILogger logger, string reason, TimeSpan delay);

    [LoggerMessage(2004, LogLevel.Warning, "Sending stream error {Condition} and closing the component link")]
    public static partial void StreamErrorSent(ILogger logger, string condition);

    [LoggerMessage(2005, LogLevel.Warning, "The XMPP server sent stream error {Condition}")]
    public static partial void StreamErrorReceived(ILogger logger, string condition);

    [LoggerMessage(2006, LogLevel.Information, "The XMPP server closed the component stream")]
    public static partial void ServerClosedStream(ILogger logger);

    [LoggerMessage(2007, LogLevel.Information, "Closing the XMPP component link ({InFlight} stanzas in flight)")]
    public static partial void Closing(ILogger logger, int inFlight);

    [LoggerMessage(2008, LogLevel.Warning, "{InFlight} stanzas were still in flight after {Timeout}; their replies are dropped")]
    public static partial void DrainTimedOut(ILogger logger, int inFlight, TimeSpan timeout);

    [LoggerMessage(2009, LogLevel.Information, "XMPP component link closed")]
    public static partial void Closed(ILogger logger);

    [LoggerMessage(2010, LogLevel.Error, "Writing to the XMPP component link failed ({Reason})")]
    public static partial void WriteFailed(ILogger logger, string reason);

    // 2100-2199: stanzas.
    [LoggerMessage(2100, LogLevel.Error,
        "The {Handler} handler threw {ExceptionType}; answered wait/internal-server-error and kept the link up")]
    public static partial void HandlerFailed(ILogger logger, string handler, string exceptionType);

    [LoggerMessage(2101, LogLevel.Debug, "Publish {IqId} answered with {Condition}")]
    public static partial void PublishAnswered(ILogger logger, string iqId, string condition);

    [LoggerMessage(2102, LogLevel.Debug, "Publish {IqId} refused as malformed: {Reason}")]
    public static partial void PublishMalformed(ILogger logger, string? iqId, string? reason);

    [LoggerMessage(2103, LogLevel.Debug, "IQ {IqId} with payload {{{Namespace}}}{Element} is not supported")]
    public static partial void IqUnsupported(ILogger logger, string? iqId, string? @namespace, string? element);

    [LoggerMessage(2104, LogLevel.Debug, "Ignored a {Stanza} stanza")]
    public static partial void StanzaIgnored(ILogger logger, string stanza);

    [LoggerMessage(2105, LogLevel.Debug, "Ad-hoc command {Command} ({Action}) answered {Status}")]
    public static partial void CommandAnswered(ILogger logger, string command, string action, string status);

    // 2200-2299: publishes (devices appear as keyed hashes only).
    [LoggerMessage(2200, LogLevel.Debug, "Publish for device {Device} ({Mode}) answered {Condition} ({Decision})")]
    public static partial void PublishDecided(ILogger logger, string device, string mode, string condition, string decision);

    [LoggerMessage(2201, LogLevel.Warning, "Storage unavailable while handling a {Operation} ({ExceptionType}); answered wait")]
    public static partial void StorageUnavailable(ILogger logger, string operation, string exceptionType);

    [LoggerMessage(2202, LogLevel.Warning, "{Pending} publishes are waiting for the ledger; answered wait/resource-constraint")]
    public static partial void Overloaded(ILogger logger, int pending);

    [LoggerMessage(2203, LogLevel.Debug, "First publish to a stateless node created device {Device} (push module {PushModule})")]
    public static partial void StatelessDeviceCreated(ILogger logger, string device, string pushModule);

    [LoggerMessage(2204, LogLevel.Debug, "Publish to device {Device} (push module {PushModule}) refused: Apple declared its token dead")]
    public static partial void DeadTokenRefused(ILogger logger, string device, string pushModule);

    [LoggerMessage(2250, LogLevel.Debug, "Throttle sweep forgot {Removed} devices; {Remaining} remembered")]
    public static partial void ThrottleSwept(ILogger logger, int removed, int remaining);

    // 2300-2399: registrations (mod_push_appserver v1, HTTP and ad-hoc).
    [LoggerMessage(2300, LogLevel.Information, "Registered device {Device} over {Channel} (renewed: {Renewed})")]
    public static partial void DeviceRegistered(ILogger logger, string device, string channel, bool renewed);

    [LoggerMessage(2301, LogLevel.Information, "Unregistered device {Device} over {Channel}")]
    public static partial void DeviceUnregistered(ILogger logger, string device, string channel);

    [LoggerMessage(2302, LogLevel.Debug, "Refused a {Action} over {Channel}: {Reason}")]
    public static partial void RegistrationRefused(ILogger logger, string action, string channel, string reason);

    // 2400-2449: limits (issue 18). A domain may be named; an HTTP client's address never is.
    [LoggerMessage(2400, LogLevel.Warning,
        "Domain {Domain} is over its {Limit} limit ({Setting}): {Refused} requests answered wait/resource-constraint since the last such line")]
    public static partial void DomainLimited(ILogger logger, string domain, string limit, long refused, string setting);

    [LoggerMessage(2401, LogLevel.Warning,
        "An HTTP client network is over its {Limit} limit ({Setting}): {Refused} requests refused since the last such line (addresses are not logged)")]
    public static partial void HttpClientLimited(ILogger logger, string limit, long refused, string setting);

    [LoggerMessage(2402, LogLevel.Debug, "Deleted {Deleted} full new-device quota buckets")]
    public static partial void QuotaSwept(ILogger logger, int deleted);

    [LoggerMessage(2403, LogLevel.Warning, "Deleting full new-device quota buckets failed ({ExceptionType}); retrying at the next round")]
    public static partial void QuotaSweepFailed(ILogger logger, string exceptionType);
}
