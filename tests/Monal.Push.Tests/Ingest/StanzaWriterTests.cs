using System.Text;
using System.Xml.Linq;
using Monal.Push.Ingest.Component;

namespace Monal.Push.Tests.Ingest;

public sealed class StanzaWriterTests
{
    [Fact]
    public async Task RunAsync_Should_SendWhitespaceKeepalive_When_LinkIsIdle()
    {
        using var output = new FirstWriteStream();
        var writer = new StanzaWriter(output, TimeProvider.System, TimeSpan.FromMilliseconds(100));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var running = writer.RunAsync(cts.Token);

        // Nothing was queued: the first write can only be a keepalive (waiting for it, not a fixed time, keeps
        // this test true on a loaded machine).
        await output.Written.WaitAsync(TimeSpan.FromSeconds(10));
        writer.Complete("</stream:stream>");
        await running;

        var text = Encoding.UTF8.GetString(output.ToArray());
        Assert.EndsWith("</stream:stream>", text, StringComparison.Ordinal);
        Assert.Matches("^ +</stream:stream>$", text);
    }

    [Fact]
    public async Task RunAsync_Should_WriteQueuedStanzasBeforeTheTrailer_When_Completed()
    {
        using var output = new MemoryStream();
        var writer = new StanzaWriter(output, TimeProvider.System, TimeSpan.FromMinutes(1));
        for (var i = 0; i < 50; i++)
        {
            Assert.True(writer.TryEnqueue(new XElement(XName.Get("iq", "jabber:component:accept"), new XAttribute("id", i))));
        }

        writer.Complete("</stream:stream>");
        await writer.RunAsync(CancellationToken.None);

        var text = Encoding.UTF8.GetString(output.ToArray());
        Assert.Equal(50, text.Split("<iq ").Length - 1);
        Assert.EndsWith("</stream:stream>", text, StringComparison.Ordinal);
        Assert.False(writer.TryEnqueue(new XElement("late")));
    }

    /// <summary>A memory stream that says when something was first written to it.</summary>
    private sealed class FirstWriteStream : MemoryStream
    {
        private readonly TaskCompletionSource _written = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Written => _written.Task;

        public override void Write(byte[] buffer, int offset, int count)
        {
            base.Write(buffer, offset, count);
            _written.TrySetResult();
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            base.Write(buffer);
            _written.TrySetResult();
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
        {
            Write(buffer, offset, count);
            return Task.CompletedTask;
        }

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }
    }
}
