using Microsoft.Extensions.Logging;

namespace Monal.Push.Ingest;

/// <summary>
/// Ingest log messages, event ids 2000-2999 (STYLE.md section 7). Never pass a node, token, JID or body here:
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
}
