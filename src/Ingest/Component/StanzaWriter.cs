using System.Buffers;
using System.Text;
using System.Threading.Channels;
using System.Xml.Linq;

namespace Monal.Push.Ingest.Component;

/// <summary>
/// The one writer of a link: replies from many concurrent handlers are queued and written by a single task, which
/// drains everything queued before each flush, so a burst of replies costs one socket write. A whitespace keepalive
/// (RFC 6120 section 4.6.1) goes out when nothing was written for half the keepalive interval.
/// </summary>
internal sealed class StanzaWriter(Stream stream, TimeProvider time, TimeSpan keepAliveInterval)
{
    private const int MaxBatchBytes = 64 * 1024;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    private readonly Channel<string> _queue = Channel.CreateUnbounded<string>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });

    private long _lastWrite = time.GetTimestamp();

    /// <summary>Queues a stanza; false when the link is already closing (the reply is dropped).</summary>
    public bool TryEnqueue(XElement stanza) =>
        _queue.Writer.TryWrite(stanza.ToString(SaveOptions.DisableFormatting | SaveOptions.OmitDuplicateNamespaces));

    /// <summary>Writes <paramref name="trailer"/> after everything already queued, then stops accepting stanzas.</summary>
    public void Complete(string trailer)
    {
        _queue.Writer.TryWrite(trailer);
        _queue.Writer.TryComplete();
    }

    /// <summary>Runs until <see cref="Complete"/> was called and the queue is written, or the token is cancelled.</summary>
    public async Task RunAsync(CancellationToken ct)
    {
        using var keepAliveCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var keepAlive = KeepAliveAsync(keepAliveCts.Token);
        var buffer = new ArrayBufferWriter<byte>(4096);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(ct))
            {
                buffer.ResetWrittenCount();
                while (buffer.WrittenCount < MaxBatchBytes && _queue.Reader.TryRead(out var text))
                {
                    Utf8.GetBytes(text, buffer);
                }

                await stream.WriteAsync(buffer.WrittenMemory, ct);
                await stream.FlushAsync(ct);
                Volatile.Write(ref _lastWrite, time.GetTimestamp());
            }
        }
        finally
        {
            await keepAliveCts.CancelAsync();
            await keepAlive;
        }
    }

    private async Task KeepAliveAsync(CancellationToken ct)
    {
        var half = keepAliveInterval / 2;
        using var timer = new PeriodicTimer(half, time);
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                if (time.GetElapsedTime(Volatile.Read(ref _lastWrite)) >= half)
                {
                    _queue.Writer.TryWrite(" ");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The link is closing.
        }
    }
}
