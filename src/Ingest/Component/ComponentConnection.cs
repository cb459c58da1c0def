using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Monal.Push.Ingest.Stanzas;
using Monal.Push.Ingest.Xml;

namespace Monal.Push.Ingest.Component;

/// <summary>
/// The XEP-0114 component link: connect, handshake, then read stanzas and hand each to the router without waiting
/// for the previous one (the ledger group-commits many publishes at once), at most <c>MaxInFlight</c> at a time.
/// Replies go through one <see cref="StanzaWriter"/>. Whatever ends a session (the server restarting, a wrong secret,
/// bad XML), the link reconnects with jittered exponential backoff; only cancellation stops <see cref="RunAsync"/>.
/// </summary>
internal sealed partial class ComponentConnection(
    IOptions<ComponentOptions> options, StanzaRouter router, TimeProvider time, ILogger<ComponentConnection> logger)
{
    private readonly ComponentOptions _options = options.Value;
    private volatile Session? _session;
    private long _reconnects;
    private long _handshakeFailures;
    private long _stanzasReceived;
    private long _connectedSince;
    private long _backPressureWaits;
    private volatile bool _draining;

    /// <summary>True between a successful handshake and the end of that session.</summary>
    public bool IsConnected => _session is not null;

    /// <summary>When the current session's handshake succeeded, or null while disconnected.</summary>
    public DateTimeOffset? ConnectedSince =>
        IsConnected ? DateTimeOffset.FromUnixTimeMilliseconds(Interlocked.Read(ref _connectedSince)) : null;

    /// <summary>How many times the link was attempted again after a session ended or failed to start.</summary>
    public long Reconnects => Interlocked.Read(ref _reconnects);

    /// <summary>Handshakes the server refused (wrong secret or domain).</summary>
    public long HandshakeFailures => Interlocked.Read(ref _handshakeFailures);

    public long StanzasReceived => Interlocked.Read(ref _stanzasReceived);

    /// <summary>Stanzas read but not yet answered on the current session.</summary>
    public int InFlight => _session?.InFlight ?? 0;

    /// <summary>How often reading stopped because MaxInFlight stanzas were unanswered (back-pressure).</summary>
    public long BackPressureWaits => Interlocked.Read(ref _backPressureWaits);

    /// <summary>True while a closing session waits for the replies of what it read.</summary>
    public bool IsDraining => _draining;

    public async Task RunAsync(CancellationToken stoppingToken)
    {
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            var end = await RunSessionAsync(stoppingToken);
            if (stoppingToken.IsCancellationRequested)
            {
                break;
            }

            // After a session that worked, come back quickly; repeated failures back off up to the maximum.
            failures = end.Established ? 0 : failures + 1;
            var delay = Backoff(failures, end.Rejected);
            if (end.Rejected)
            {
                Interlocked.Increment(ref _handshakeFailures);
                Log.HandshakeRejected(logger, _options.Domain, end.Reason, delay);
            }
            else
            {
                Log.LinkLost(logger, end.Reason, delay);
            }

            Interlocked.Increment(ref _reconnects);
            try
            {
                await Task.Delay(delay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>
    /// Full jitter on [base/2, base], base = min * 2^(failures-1) capped at max (AWS backoff article). A refused
    /// handshake backs off up to ReconnectMaxDelay; an unreachable or restarting server only up to
    /// ReconnectUnreachableMaxDelay, so the link is back within that long of the server listening again.
    /// </summary>
    internal TimeSpan Backoff(int failures, bool rejected = true)
    {
        var min = _options.ReconnectMinDelay.TotalMilliseconds;
        var max = rejected
            ? _options.ReconnectMaxDelay.TotalMilliseconds
            : Math.Min(_options.ReconnectMaxDelay.TotalMilliseconds, _options.ReconnectUnreachableMaxDelay.TotalMilliseconds);
        var baseMs = Math.Min(max, min * Math.Pow(2, Math.Clamp(failures - 1, 0, 30)));
        var jitter = RandomNumberGenerator.GetInt32(1001) / 1000.0;
        return TimeSpan.FromMilliseconds(baseMs / 2 + baseMs / 2 * jitter);
    }

    private async Task<SessionEnd> RunSessionAsync(CancellationToken stoppingToken)
    {
        using var tcp = new TcpClient { NoDelay = true };
        Log.Connecting(logger, _options.Domain, _options.Host, _options.Port);
        try
        {
            await tcp.ConnectAsync(_options.Host, _options.Port, stoppingToken);
        }
        catch (SocketException e)
        {
            return SessionEnd.Lost("connect failed: " + e.SocketErrorCode);
        }
        catch (OperationCanceledException)
        {
            return SessionEnd.Stopped;
        }

        var network = tcp.GetStream();
        using var reader = new StanzaReader(network, _options.MaxStanzaBytes);
        var handshake = await HandshakeAsync(network, reader, stoppingToken);
        if (handshake is not null)
        {
            return handshake;
        }

        return await RunStanzaLoopAsync(network, reader, stoppingToken);
    }

    /// <summary>XEP-0114 section 3. Returns null on success, or how the attempt ended.</summary>
    private async Task<SessionEnd?> HandshakeAsync(NetworkStream network, StanzaReader reader, CancellationToken stoppingToken)
    {
        using var timeout = new CancellationTokenSource(_options.HandshakeTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, timeout.Token);
        var ct = linked.Token;
        try
        {
            await WriteAsync(network, StreamHeader.Open(_options.Domain), ct);
            var header = await reader.ReadHeaderAsync(ct);
            if (string.IsNullOrEmpty(header.Id))
            {
                return SessionEnd.Lost("the server's stream header has no id");
            }

            await WriteAsync(network, Handshake.Build(header.Id, _options.Secret), ct);
            var answer = await reader.ReadStanzaAsync(ct);
            if (answer?.Name == Handshake.Name)
            {
                Log.Connected(logger, _options.Domain, header.Id);
                return null;
            }

            return answer?.Name == StreamError.Name
                ? SessionEnd.HandshakeRejected("stream error " + StreamError.ConditionOf(answer))
                : SessionEnd.HandshakeRejected(answer is null ? "the server closed the stream" : "unexpected " + answer.Name.LocalName);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return SessionEnd.Stopped;
        }
        catch (OperationCanceledException)
        {
            return SessionEnd.Lost("handshake timed out");
        }
        catch (StreamErrorException e)
        {
            await TryWriteAsync(network, StreamError.Build(e.Condition) + StreamHeader.Close);
            return SessionEnd.Lost("stream error " + e.Condition + " during the handshake");
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            // Prosody and ejabberd close the connection on a wrong secret, sometimes before the stream error is read.
            return SessionEnd.HandshakeRejected("the server closed the connection");
        }
    }

    private async Task<SessionEnd> RunStanzaLoopAsync(NetworkStream network, StanzaReader reader, CancellationToken stoppingToken)
    {
        using var readCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        using var handlerCts = new CancellationTokenSource();
        using var writerCts = new CancellationTokenSource();
        var writer = new StanzaWriter(network, time, _options.KeepAliveInterval);
        var writing = WriteLoopAsync(writer, readCts, writerCts.Token);
        var session = new Session(_options.MaxInFlight);
        Interlocked.Exchange(ref _connectedSince, time.GetUtcNow().ToUnixTimeMilliseconds());
        _session = session;

        SessionEnd end;
        string? streamError = null;
        try
        {
            end = await ReadLoopAsync(reader, session, writer, readCts.Token, handlerCts.Token);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            end = SessionEnd.Stopped;
        }
        catch (OperationCanceledException)
        {
            end = SessionEnd.Lost("writing to the server failed");
        }
        catch (StreamErrorException e)
        {
            Log.StreamErrorSent(logger, e.Condition);
            streamError = e.Condition;
            end = SessionEnd.Lost("sent stream error " + e.Condition);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            end = SessionEnd.Lost("connection closed: " + e.GetType().Name);
        }

        if (end.IsStopped)
        {
            Log.Closing(logger, session.InFlight);
        }

        // Let handlers finish what was read (the ledger may already be committing it), within a bound.
        session.StopReading();
        _draining = true;
        try
        {
            await session.Idle.WaitAsync(_options.ShutdownTimeout, time, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            Log.DrainTimedOut(logger, session.InFlight, _options.ShutdownTimeout);
        }
        finally
        {
            _draining = false;
        }

        await handlerCts.CancelAsync();
        _session = null;

        // Close our stream after the replies (RFC 6120 section 4.4), with the error first if we are the cause.
        writer.Complete((streamError is null ? string.Empty : StreamError.Build(streamError)) + StreamHeader.Close);
        writerCts.CancelAfter(_options.ShutdownTimeout);
        await writing;
        if (end.IsStopped)
        {
            Log.Closed(logger);
        }

        return end with { Established = true };
    }

    private async Task<SessionEnd> ReadLoopAsync(
        StanzaReader reader, Session session, StanzaWriter writer, CancellationToken readToken, CancellationToken handlerToken)
    {
        while (true)
        {
            // Back-pressure: with MaxInFlight stanzas unanswered we stop reading, so TCP slows the server down.
            if (!session.Slots.Wait(0))
            {
                Interlocked.Increment(ref _backPressureWaits);
                await session.Slots.WaitAsync(readToken);
            }

            XElement? stanza;
            try
            {
                stanza = await reader.ReadStanzaAsync(readToken);
            }
            catch
            {
                session.Slots.Release();
                throw;
            }

            if (stanza is null)
            {
                session.Slots.Release();
                Log.ServerClosedStream(logger);
                return SessionEnd.Lost("the server closed the stream");
            }

            if (stanza.Name == StreamError.Name)
            {
                session.Slots.Release();
                var condition = StreamError.ConditionOf(stanza);
                Log.StreamErrorReceived(logger, condition);
                return SessionEnd.Lost("received stream error " + condition);
            }

            Interlocked.Increment(ref _stanzasReceived);
            session.Started();
            _ = DispatchAsync(stanza, session, writer, handlerToken);
        }
    }

    private async Task DispatchAsync(XElement stanza, Session session, StanzaWriter writer, CancellationToken ct)
    {
        try
        {
            var reply = await router.RouteAsync(stanza, ct);
            if (reply is not null)
            {
                writer.TryEnqueue(reply);
            }
        }
#pragma warning disable CA1031 // A fire-and-forget dispatch must never fault unobserved; the router already answers handler failures.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Log.HandlerFailed(logger, "router", e.GetType().FullName ?? e.GetType().Name);
            if (stanza.Name == Iq.Name && (string?)stanza.Attribute("type") is "get" or "set")
            {
                writer.TryEnqueue(Iq.Error(stanza, StanzaError.InternalServerError));
            }
        }
        finally
        {
            session.Slots.Release();
            session.Finished();
        }
    }

    private async Task WriteLoopAsync(StanzaWriter writer, CancellationTokenSource readCts, CancellationToken ct)
    {
        try
        {
            await writer.RunAsync(ct);
        }
        catch (OperationCanceledException)
        {
            // Shutdown bound reached: whatever was not written is dropped with the connection.
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            Log.WriteFailed(logger, e.GetType().Name);
            await readCts.CancelAsync();
        }
    }

    private static async Task WriteAsync(Stream stream, string text, CancellationToken ct)
    {
        await stream.WriteAsync(Encoding.UTF8.GetBytes(text), ct);
        await stream.FlushAsync(ct);
    }

    private async Task TryWriteAsync(Stream stream, string text)
    {
        try
        {
            using var cts = new CancellationTokenSource(_options.ShutdownTimeout, time);
            await WriteAsync(stream, text, cts.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
        {
            // The connection is going away anyway.
        }
    }
}
