namespace Monal.Push.Tests.Fixtures;

/// <summary>
/// Serves a byte sequence in fixed-size reads, like a socket delivering a stream in pieces, and remembers how far it
/// was read. With <c>Infinite</c> content it never ends (for size-limit tests); reads complete synchronously.
/// </summary>
public sealed class ChunkedStream(Func<long, byte> content, long length, int chunkSize) : Stream
{
    public ChunkedStream(byte[] bytes, int chunkSize)
        : this(i => bytes[i], bytes.Length, chunkSize)
    {
    }

    /// <summary>Splits at the given offsets: each read ends at the next split point.</summary>
    public static ChunkedStream SplitAt(byte[] bytes, params int[] splits) => new(bytes, int.MaxValue) { Splits = splits };

    private int[] Splits { get; init; } = [];

    public long BytesServed { get; private set; }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        var n = (int)Math.Min(Math.Min(buffer.Length, chunkSize), length - BytesServed);
        var next = Splits.Where(s => s > BytesServed).DefaultIfEmpty(int.MaxValue).Min();
        n = (int)Math.Min(n, next - BytesServed);
        for (var i = 0; i < n; i++)
        {
            buffer[i] = content(BytesServed + i);
        }

        BytesServed += n;
        return n;
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        Task.FromResult(Read(buffer, offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
