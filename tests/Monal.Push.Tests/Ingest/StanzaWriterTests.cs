using System.Text;
using System.Xml.Linq;
using Monal.Push.Ingest.Component;

namespace Monal.Push.Tests.Ingest;

public sealed class StanzaWriterTests
{
    [Fact]
    public async Task RunAsync_Should_SendWhitespaceKeepalive_When_LinkIsIdle()
    {
        using var output = new MemoryStream();
        var writer = new StanzaWriter(output, TimeProvider.System, TimeSpan.FromMilliseconds(100));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        var running = writer.RunAsync(cts.Token);

        await Task.Delay(400);
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
}
