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

    [Fact]
    public async Task TryEnqueue_Should_WriteExactlyWhatToStringWrites_When_StanzasFollowOneAnother()
    {
        XNamespace component = "jabber:component:accept";
        XNamespace stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas";
        XNamespace other = "urn:example:other";
        var sent = new[]
        {
            new XElement(component + "iq", new XAttribute("type", "result"), new XAttribute("id", "a<b&\"c'\t\n"),
                new XAttribute("from", "push.example.org"), new XAttribute("to", "user@example.org/res")),
            new XElement(component + "iq", new XAttribute("type", "error"), new XAttribute("id", "2"),
                new XElement(component + "error", new XAttribute("type", "cancel"),
                    new XElement(stanzas + "item-not-found"),
                    new XElement(stanzas + "text", "x & \"y\" <z>\r\n ü €"))),
            new XElement(component + "iq", new XAttribute(XNamespace.Xmlns + "o", other.NamespaceName),
                new XElement(other + "query", new XAttribute(other + "flag", "1"), new XElement(other + "item", "é"))),
            new XElement(component + "iq", new XAttribute("id", "4")),
        };
        using var output = new MemoryStream();
        var writer = new StanzaWriter(output, TimeProvider.System, TimeSpan.FromMinutes(1));
        foreach (var stanza in sent)
        {
            Assert.True(writer.TryEnqueue(stanza));
        }

        // A stanza XML cannot carry fails at the caller, and the writer goes on afterwards.
        Assert.ThrowsAny<ArgumentException>(() => writer.TryEnqueue(new XElement(component + "iq", "\u0001")));
        Assert.True(writer.TryEnqueue(sent[0]));
        writer.Complete("</stream:stream>");
        await writer.RunAsync(CancellationToken.None);

        var expected = string.Concat(sent.Append(sent[0]).Select(e => e.ToString(SaveOptions.DisableFormatting | SaveOptions.OmitDuplicateNamespaces)));
        Assert.Equal(expected + "</stream:stream>", Encoding.UTF8.GetString(output.ToArray()));
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
