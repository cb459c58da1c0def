using System.Text;

namespace Monal.Push.Ingest.Xml;

/// <summary>
/// Sits between the socket and the <see cref="System.Xml.XmlReader"/> and counts the bytes handed to the parser
/// since the last <see cref="ResetCount"/>. XmlReader grows its buffers until a node is complete (a 10 MB text node
/// would be held whole), so the limit must be enforced here, below the parser, before the bytes ever reach it.
/// Reads are capped at <see cref="MaxReadSize"/> so the parser's read-ahead (and so the count's slack) stays small.
/// </summary>
internal sealed class ByteCountingStream(Stream inner, long limit) : Stream
{
    /// <summary>How far the count may run ahead of the stanza being parsed (one read).</summary>
    public const int MaxReadSize = 4096;

    private const int PrologCaptureSize = 1024;
    private static readonly byte[] Doctype = Encoding.ASCII.GetBytes("<!DOCTYPE");

    private readonly byte[] _prolog = new byte[PrologCaptureSize];
    private int _prologLength;
    private long _count;

    /// <summary>Passed to the socket read; XmlReader's async API takes no token of its own.</summary>
    public CancellationToken ReadCancellation { get; set; }

    /// <summary>Set once a read would have taken the count over the limit; every later read fails too.</summary>
    public bool LimitExceeded { get; private set; }

    /// <summary>Set when the peer closed its side (a read returned 0 bytes).</summary>
    public bool EndOfInput { get; private set; }

    /// <summary>Every byte read so far, for tests and metrics.</summary>
    public long TotalBytes { get; private set; }

    /// <summary>While true, the first bytes are kept so a refused DOCTYPE can be told apart from other bad XML.</summary>
    public bool CapturingProlog { get; set; } = true;

    public long Count => _count;

    public void ResetCount() => _count = 0;

    public bool PrologContainsDoctype() => _prolog.AsSpan(0, _prologLength).IndexOf(Doctype) >= 0;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ThrowIfOverLimit();
        var token = cancellationToken.CanBeCanceled ? cancellationToken : ReadCancellation;
        var read = await inner.ReadAsync(buffer[..Math.Min(buffer.Length, MaxReadSize)], token);
        return Account(buffer.Span[..read]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        ThrowIfOverLimit();
        var read = inner.Read(buffer[..Math.Min(buffer.Length, MaxReadSize)]);
        return Account(buffer[..read]);
    }

    private int Account(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty)
        {
            EndOfInput = true;
            return 0;
        }

        TotalBytes += bytes.Length;
        _count += bytes.Length;
        if (CapturingProlog && _prologLength < PrologCaptureSize)
        {
            var n = Math.Min(bytes.Length, PrologCaptureSize - _prologLength);
            bytes[..n].CopyTo(_prolog.AsSpan(_prologLength));
            _prologLength += n;
        }

        // The bytes are already in our caller's buffer; failing now keeps the parser from ever asking for more.
        ThrowIfOverLimit();
        return bytes.Length;
    }

    private void ThrowIfOverLimit()
    {
        if (_count > limit)
        {
            LimitExceeded = true;
        }

        if (LimitExceeded)
        {
            throw new StreamErrorException(StreamErrorConditions.PolicyViolation);
        }
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
