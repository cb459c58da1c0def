using System.Buffers;
using System.Diagnostics;
using Monal.Push.Load.Listening;
using Monal.Push.Load.Measuring;
using Monal.Push.Load.Publishing;

namespace Monal.Push.Load.Running;

/// <summary>
/// Sends publishes over one component link and matches the replies by id. Each request's sequence number is encoded
/// in its IQ id and indexes a ring of pending entries (send time, category), so matching costs no lookup structure.
/// One task writes (the phase's schedule), one task reads (<see cref="ComponentLink.ReadRepliesAsync"/>).
/// </summary>
internal sealed class LoadRunner : IAsyncDisposable
{
    private const int RingBits = 20;
    private const int RingMask = (1 << RingBits) - 1;
    private const int MaxBatch = 512;
    private static readonly double TicksPerMicrosecond = Stopwatch.Frequency / 1_000_000.0;

    private readonly long[] _seqAt = new long[1 << RingBits];
    private readonly long[] _sentAt = new long[1 << RingBits];
    private readonly byte[] _category = new byte[1 << RingBits];
    private readonly ComponentLink _link;
    private readonly DeviceSet _devices;
    private readonly PublishTemplates _templates;
    private readonly Random _random;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;
    private readonly ArrayBufferWriter<byte> _buffer = new(MaxBatch * 1024);
    private volatile Recorder? _current;
    private long _nextSeq;
    private long _sequentialCursor;
    private bool _sequential;
    private long _outstanding;
    private long _lateReplies;
    private long _strayReplies;

    public LoadRunner(ComponentLink link, DeviceSet devices, string componentDomain, int seed = 1)
    {
        _link = link;
        _devices = devices;
        _templates = new PublishTemplates(componentDomain);
        _random = new Random(seed);
        Array.Fill(_seqAt, -1);
        _reading = Task.Run(() => _link.ReadRepliesAsync(OnReply, _stop.Token));
    }

    /// <summary>Completes when the component closed the link (or reading failed).</summary>
    public Task Reading => _reading;

    /// <summary>Replies that arrived after their phase had given up waiting.</summary>
    public long LateReplies => Interlocked.Read(ref _lateReplies);

    /// <summary>Replies whose id matched no pending request (duplicates, or ids we never sent).</summary>
    public long StrayReplies => Interlocked.Read(ref _strayReplies);

    public async Task<PhaseResult> RunAsync(LoadPhase phase, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(phase);
        // Sending stops at this hard deadline even when the server's back-pressure has held writes up. Writes themselves
        // are only cancelled with the whole run: a write cut half-way would leave a broken stanza on the stream.
        var deadline = Stopwatch.GetTimestamp() + (long)((phase.Duration + phase.Drain).TotalSeconds * Stopwatch.Frequency);
        var recorder = new Recorder(_nextSeq, phase.Outstanding);
        var startedAt = DateTimeOffset.UtcNow;
        var start = Stopwatch.GetTimestamp();
        recorder.StartTicks = start;
        _current = recorder;
        _sequential = phase.EachStatelessDeviceOnce;
        var lateness = new LatencyHistogram();
        var sent = phase.IsOpenLoop
            ? await OpenLoopAsync(phase, start, deadline, lateness, ct)
            : await ClosedLoopAsync(phase, recorder, start, ct);

        var sendWindow = Stopwatch.GetElapsedTime(start);
        recorder.Sent = sent;
        var drainUntil = Stopwatch.GetTimestamp() + (long)(phase.Drain.TotalSeconds * Stopwatch.Frequency);
        while (recorder.Answered < sent && Stopwatch.GetTimestamp() < drainUntil && !_reading.IsCompleted)
        {
            await Task.Delay(5, ct);
        }

        _current = null;
        var (histogram, outcomes, latencyByOutcome, answered, lastReply) = recorder.Snapshot();
        var replyWindow = lastReply > start ? Stopwatch.GetElapsedTime(start, lastReply) : sendWindow;
        return new PhaseResult(phase, startedAt, DateTimeOffset.UtcNow, sendWindow, replyWindow, sent, answered, histogram, outcomes, latencyByOutcome)
        {
            SendLateness = phase.IsOpenLoop ? lateness : null,
        };
    }

    /// <summary>
    /// The open loop runs on a thread of its own and sleeps with <see cref="Thread.Sleep(int)"/> between sends: a
    /// <c>Task.Delay(1)</c> loop woke through the timer queue and a thread-pool hop, and sent its publishes a median
    /// 2.0 ms (p99 4.4 ms) after their schedule at 1,000/s, which every latency measured from the schedule carried.
    /// </summary>
    private Task<long> OpenLoopAsync(LoadPhase phase, long start, long deadline, LatencyHistogram lateness, CancellationToken ct) =>
        Task.Factory.StartNew(
            () =>
            {
                using var abort = ct.Register(_link.Abort);
                return OpenLoop(phase, start, deadline, lateness, ct);
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

    private long OpenLoop(LoadPhase phase, long start, long deadline, LatencyHistogram lateness, CancellationToken ct)
    {
        var rate = phase.Rate!.Value;
        var total = Math.Min(phase.MaxRequests, (long)Math.Ceiling(rate * phase.Duration.TotalSeconds));
        var ticksPerRequest = Stopwatch.Frequency / rate;
        long i = 0;
        while (i < total)
        {
            ct.ThrowIfCancellationRequested();
            var now = Stopwatch.GetTimestamp();
            if (now > deadline)
            {
                // The server held us up so long that the rest of the schedule is pointless: those were never sent.
                break;
            }

            var due = Math.Min(total, (long)((now - start) / ticksPerRequest) + 1);
            if (due <= i || Interlocked.Read(ref _outstanding) > RingMask - MaxBatch)
            {
                // The next publish is not due yet (or the ring is full: it will count as late from its schedule).
                Thread.Sleep(1);
                continue;
            }

            _buffer.ResetWrittenCount();
            var unixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var first = i;
            var end = Math.Min(due, i + MaxBatch);
            for (; i < end; i++)
            {
                Append(start + (long)(i * ticksPerRequest), unixMs);
            }

            _link.Write(_buffer.WrittenSpan);
            // How late each publish left against its schedule: the sender's own share of every latency measured
            // from the schedule (its timer's granularity, its wake-ups), which no server can take away.
            var written = Stopwatch.GetTimestamp();
            for (var k = first; k < end; k++)
            {
                lateness.Record(Math.Max(0, (long)((written - (start + (long)(k * ticksPerRequest))) / TicksPerMicrosecond)));
            }
        }

        return i;
    }

    private async Task<long> ClosedLoopAsync(LoadPhase phase, Recorder recorder, long start, CancellationToken ct)
    {
        var slots = recorder.Slots!;
        var end = start + (long)(phase.Duration.TotalSeconds * Stopwatch.Frequency);
        long sent = 0;
        while (sent < phase.MaxRequests)
        {
            var remaining = end - Stopwatch.GetTimestamp();
            if (remaining <= 0 || !await slots.WaitAsync(TimeSpan.FromSeconds(remaining / (double)Stopwatch.Frequency), ct))
            {
                break;
            }

            var n = 1;
            while (n < MaxBatch && sent + n < phase.MaxRequests && slots.Wait(0, CancellationToken.None))
            {
                n++;
            }

            _buffer.ResetWrittenCount();
            var now = Stopwatch.GetTimestamp();
            var unixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            for (var k = 0; k < n; k++)
            {
                Append(now, unixMs);
            }

            sent += n;
            await _link.WriteAsync(_buffer.WrittenMemory, ct);
        }

        return sent;
    }

    private void Append(long scheduled, long unixMs)
    {
        var publish = _sequential ? _devices.Stateless(_sequentialCursor++) : _devices.Next(_random);
        var seq = _nextSeq++;
        var slot = (int)(seq & RingMask);
        _sentAt[slot] = scheduled;
        _category[slot] = (byte)publish.Category;
        Volatile.Write(ref _seqAt[slot], seq);
        Interlocked.Increment(ref _outstanding);
        _templates.Write(_buffer, publish.Style, publish.UsesSecret, seq, unixMs, publish.From, publish.Node, publish.OptionValue);
    }

    private void OnReply(Reply reply)
    {
        var now = Stopwatch.GetTimestamp();
        if (!PublishTemplates.TryParseSequence(reply.Id, out var seq))
        {
            Interlocked.Increment(ref _strayReplies);
            return;
        }

        var slot = (int)(seq & RingMask);
        if (Volatile.Read(ref _seqAt[slot]) != seq)
        {
            Interlocked.Increment(ref _strayReplies);
            return;
        }

        var sentAt = _sentAt[slot];
        var category = (RequestCategory)_category[slot];
        Volatile.Write(ref _seqAt[slot], -1);
        Interlocked.Decrement(ref _outstanding);
        var recorder = _current;
        if (recorder is null || seq < recorder.FirstSeq)
        {
            Interlocked.Increment(ref _lateReplies);
            return;
        }

        var micros = Math.Max(0, (long)((now - sentAt) / TicksPerMicrosecond));
        recorder.Record(category, reply.IsResult ? "result" : reply.Outcome, micros, now);
    }

    public async ValueTask DisposeAsync()
    {
        await _link.DisposeAsync();
        try
        {
            await _reading.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Xml.XmlException or ObjectDisposedException
            or System.Net.Sockets.SocketException or TimeoutException)
        {
            // The link is closed.
        }

        await _stop.CancelAsync();
        _stop.Dispose();
    }

    /// <summary>The measurements of one phase; written by the reader task, read once the phase is over.</summary>
    private sealed class Recorder(long firstSeq, int? outstanding)
    {
        private readonly Lock _gate = new();
        private readonly LatencyHistogram _latency = new();
        // One histogram per kind of answer; its count is that answer's count.
        private readonly Dictionary<(RequestCategory, string), LatencyHistogram> _byOutcome = [];
        private long _answered;
        private long _lastReply;

        public long FirstSeq { get; } = firstSeq;

        public long StartTicks { get; set; }

        public long Sent { get; set; }

        public SemaphoreSlim? Slots { get; } = outstanding is { } n ? new SemaphoreSlim(n, int.MaxValue) : null;

        public long Answered => Interlocked.Read(ref _answered);

        public void Record(RequestCategory category, string outcome, long micros, long now)
        {
            lock (_gate)
            {
                _latency.Record(micros);
                var key = (category, outcome);
                if (!_byOutcome.TryGetValue(key, out var own))
                {
                    own = new LatencyHistogram();
                    _byOutcome[key] = own;
                }

                own.Record(micros);
                _lastReply = now;
            }

            Interlocked.Increment(ref _answered);
            Slots?.Release();
        }

        public (LatencyHistogram, IReadOnlyDictionary<(RequestCategory, string), long>, IReadOnlyDictionary<(RequestCategory, string), LatencyHistogram>, long, long) Snapshot()
        {
            lock (_gate)
            {
                var copy = new LatencyHistogram();
                copy.Add(_latency);
                var byOutcome = _byOutcome.ToDictionary(e => e.Key, e =>
                {
                    var own = new LatencyHistogram();
                    own.Add(e.Value);
                    return own;
                });
                var counts = byOutcome.ToDictionary(e => e.Key, e => e.Value.TotalCount);
                return (copy, counts, byOutcome, Interlocked.Read(ref _answered), _lastReply);
            }
        }
    }
}
