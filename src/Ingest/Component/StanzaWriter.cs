using System.Buffers;
using System.Text;
using System.Threading.Channels;
using System.Xml;
using System.Xml.Linq;

namespace Monal.Push.Ingest.Component;

/// <summary>
/// The one writer of a link: replies from many concurrent handlers are queued and written by a single task, which
/// drains everything queued before each flush, so a burst of replies costs one socket write. A whitespace keepalive
/// (RFC 6120 section 4.6.1) goes out when nothing was written for half the keepalive interval.
/// </summary>
/// <remarks>
/// A stanza is serialized by the caller, so a stanza that cannot be written fails there and is answered there. It is
/// written as <c>XNode.ToString</c> with <c>DisableFormatting | OmitDuplicateNamespaces</c> would write it, but by one
/// XmlWriter per thread that is kept: <c>ToString</c> creates a writer per call with a 12 KB buffer, about a quarter
/// of all the bytes a publish allocated (docs/benchmarks.md).
/// </remarks>
internal sealed class StanzaWriter(Stream stream, TimeProvider time, TimeSpan keepAliveInterval)
{
    private const int MaxBatchBytes = 64 * 1024;
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private static readonly byte[] Whitespace = " "u8.ToArray();

    private static readonly XmlWriterSettings Settings = new()
    {
        Encoding = Utf8,
        OmitXmlDeclaration = true,
        ConformanceLevel = ConformanceLevel.Fragment,
        NamespaceHandling = NamespaceHandling.OmitDuplicates,
        CloseOutput = false,
    };

    [ThreadStatic]
    private static Serializer? t_serializer;

    private readonly Channel<byte[]> _queue = Channel.CreateUnbounded<byte[]>(
        new UnboundedChannelOptions { SingleReader = true, AllowSynchronousContinuations = false });

    private long _lastWrite = time.GetTimestamp();

    /// <summary>Queues a stanza; false when the link is already closing (the reply is dropped).</summary>
    /// <exception cref="ArgumentException">The stanza holds characters XML cannot carry.</exception>
    public bool TryEnqueue(XElement stanza)
    {
        ArgumentNullException.ThrowIfNull(stanza);
        var serializer = t_serializer ??= new Serializer();
        byte[] bytes;
        try
        {
            bytes = serializer.Serialize(stanza);
        }
        catch
        {
            // A writer that failed half-way is in an error state: the thread gets a new one next time.
            t_serializer = null;
            throw;
        }

        return _queue.Writer.TryWrite(bytes);
    }

    /// <summary>Writes <paramref name="trailer"/> after everything already queued, then stops accepting stanzas.</summary>
    public void Complete(string trailer)
    {
        _queue.Writer.TryWrite(Utf8.GetBytes(trailer));
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
                while (buffer.WrittenCount < MaxBatchBytes && _queue.Reader.TryRead(out var bytes))
                {
                    buffer.Write(bytes);
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
                    _queue.Writer.TryWrite(Whitespace);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The link is closing.
        }
    }

    /// <summary>A thread's writer and its buffer, reused for every stanza that thread serializes.</summary>
#pragma warning disable CA1001 // Lives as long as its thread; a MemoryStream and an XmlWriter over it hold no unmanaged resource.
    private sealed class Serializer
#pragma warning restore CA1001
    {
        private readonly MemoryStream _buffer = new(1024);
        private readonly XmlWriter _writer;

        public Serializer() => _writer = XmlWriter.Create(_buffer, Settings);

        public byte[] Serialize(XElement stanza)
        {
            _buffer.SetLength(0);
            stanza.WriteTo(_writer);
            _writer.Flush();
            return _buffer.ToArray();
        }
    }
}
