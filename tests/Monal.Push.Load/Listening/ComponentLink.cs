using System.Net.Sockets;
using System.Xml;

namespace Monal.Push.Load.Listening;

/// <summary>
/// An authenticated component stream. Publishes go out through <see cref="WriteAsync"/> (one writer at a time);
/// <see cref="ReadRepliesAsync"/> reads IQ replies until the component closes its stream. Whitespace keepalives,
/// and stanzas that are not IQ replies, are skipped.
/// </summary>
internal sealed class ComponentLink(TcpClient client, NetworkStream stream, XmlReader reader) : IAsyncDisposable
{
    private const string StanzasNs = "urn:ietf:params:xml:ns:xmpp-stanzas";

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => stream.WriteAsync(bytes, ct);

    /// <summary>
    /// Writes on the calling thread (the open loop's own thread, which must not wait for a thread-pool hop to send on
    /// time). Blocks while the component does not read, as the asynchronous write waits; a cancelled run closes the
    /// socket, which ends a blocked write.
    /// </summary>
    public void Write(ReadOnlySpan<byte> bytes) => stream.Write(bytes);

    /// <summary>Closes the socket at once (no stream trailer): ends a blocked <see cref="Write"/> and the read loop.</summary>
    public void Abort() => client.Close();

    /// <summary>Calls <paramref name="onReply"/> for each IQ result or error, on this task, until the stream ends.</summary>
    public async Task ReadRepliesAsync(Action<Reply> onReply, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(onReply);
        try
        {
            await ReadLoopAsync(onReply, ct);
        }
        finally
        {
            try
            {
                reader.Dispose();
            }
            catch (InvalidOperationException)
            {
                // A read abandoned by cancellation is still pending; closing the socket ends it.
            }
        }
    }

    private async Task ReadLoopAsync(Action<Reply> onReply, CancellationToken ct)
    {
        while (await reader.ReadAsync().WaitAsync(ct))
        {
            if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == 0)
            {
                return;
            }

            if (reader.NodeType != XmlNodeType.Element || reader.Depth != 1)
            {
                continue;
            }

            if (reader.LocalName != "iq")
            {
                if (reader.LocalName == "error")
                {
                    throw new IOException("The component sent a stream error.");
                }

                await reader.SkipAsync();
                continue;
            }

            var id = reader.GetAttribute("id") ?? string.Empty;
            var type = reader.GetAttribute("type");
            string? errorType = null;
            string? condition = null;
            if (!reader.IsEmptyElement)
            {
                while (await reader.ReadAsync())
                {
                    if (reader.NodeType == XmlNodeType.EndElement && reader.Depth == 1)
                    {
                        break;
                    }

                    if (reader.NodeType != XmlNodeType.Element)
                    {
                        continue;
                    }

                    if (reader.Depth == 2 && reader.LocalName == "error")
                    {
                        errorType = reader.GetAttribute("type");
                    }
                    else if (reader.Depth == 3 && condition is null && reader.NamespaceURI == StanzasNs && reader.LocalName != "text")
                    {
                        condition = reader.LocalName;
                    }
                }
            }

            if (type is "result" or "error")
            {
                onReply(new Reply(id, type == "result", errorType, condition));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await stream.WriteAsync("</stream:stream>"u8.ToArray(), cts.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Already gone.
        }

        // Closing the socket ends a pending read; the read loop then disposes the reader.
        client.Dispose();
    }
}
