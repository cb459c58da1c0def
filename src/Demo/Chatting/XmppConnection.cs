using System.Net.Sockets;
using System.Text;
using System.Xml.Linq;

namespace Monal.Push.Demo.Chatting;

/// <summary>A plain TCP XMPP connection: serialized writes, element reads, every wait bounded by a timeout.</summary>
internal sealed class XmppConnection : IAsyncDisposable
{
    private readonly TcpClient tcp;
    private readonly NetworkStream stream;
    private readonly SemaphoreSlim writeLock = new(1, 1);

    private XmppConnection(TcpClient tcp, TimeSpan timeout)
    {
        this.tcp = tcp;
        stream = tcp.GetStream();
        Reader = new XmppStreamReader(stream);
        Timeout = timeout;
    }

    public XmppStreamReader Reader { get; }

    public TimeSpan Timeout { get; }

    public static async Task<XmppConnection> ConnectAsync(string host, int port, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var tcp = new TcpClient { NoDelay = true };
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cts.CancelAfter(timeout);
            await tcp.ConnectAsync(host, port, cts.Token);
            return new XmppConnection(tcp, timeout);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    public Task SendAsync(XElement element, CancellationToken cancellationToken) =>
        SendAsync(element.ToString(SaveOptions.DisableFormatting | SaveOptions.OmitDuplicateNamespaces), cancellationToken);

    public async Task SendAsync(string xml, CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(xml);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(Timeout);
        await writeLock.WaitAsync(cts.Token);
        try
        {
            await stream.WriteAsync(bytes, cts.Token);
            await stream.FlushAsync(cts.Token);
        }
        finally
        {
            writeLock.Release();
        }
    }

    /// <summary>Reads the next element within the timeout (negotiation only; afterwards a read loop owns the reader).</summary>
    public async Task<XElement> ReadElementAsync(string expecting, CancellationToken cancellationToken)
    {
        var element = await WithTimeout(Reader.ReadElementAsync(), expecting, cancellationToken)
            ?? throw new XmppErrorException($"The server closed the stream while we waited for {expecting}.");
        if (element.Name == XmppStreamReader.Streams + "error")
        {
            throw new XmppErrorException($"Stream error while waiting for {expecting}", element);
        }

        return element;
    }

    public Task<XElement> ReadStreamHeaderAsync(CancellationToken cancellationToken) =>
        WithTimeout(Reader.ReadStreamHeaderAsync(), "the stream header", cancellationToken);

    /// <summary>Closes the socket: this also ends a read that is still pending (XmlReader reads take no token).</summary>
    public void Abort() => tcp.Dispose();

    public ValueTask DisposeAsync()
    {
        tcp.Dispose();
        writeLock.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<T> WithTimeout<T>(Task<T> task, string expecting, CancellationToken cancellationToken)
    {
        try
        {
            return await task.WaitAsync(Timeout, cancellationToken);
        }
        catch (TimeoutException)
        {
            Abort();
            throw new TimeoutException($"No {expecting} from the server within {Timeout}.");
        }
    }
}
