namespace Monal.Push.Ingest.Component;

internal sealed partial class ComponentConnection
{
    /// <summary>Why a session ended; decides the log line and the backoff.</summary>
    private sealed record SessionEnd(string Reason, bool Established, bool Rejected, bool IsStopped)
    {
        public static SessionEnd Stopped { get; } = new("stopped", Established: true, Rejected: false, IsStopped: true);

        public static SessionEnd Lost(string reason) => new(reason, Established: false, Rejected: false, IsStopped: false);

        public static SessionEnd HandshakeRejected(string reason) => new(reason, Established: false, Rejected: true, IsStopped: false);
    }

    /// <summary>
    /// The in-flight bookkeeping of one established session. The count starts at one for the reader itself, so
    /// <see cref="Idle"/> completes only once reading has stopped and every dispatched stanza has been answered.
    /// </summary>
    private sealed class Session(int maxInFlight)
    {
        private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _count = 1;
        private int _inFlight;

        public SemaphoreSlim Slots { get; } = new(maxInFlight, maxInFlight);

        public int InFlight => Volatile.Read(ref _inFlight);

        public Task Idle => _idle.Task;

        public void Started()
        {
            Interlocked.Increment(ref _count);
            Interlocked.Increment(ref _inFlight);
        }

        public void Finished()
        {
            Interlocked.Decrement(ref _inFlight);
            Release();
        }

        public void StopReading() => Release();

        private void Release()
        {
            if (Interlocked.Decrement(ref _count) == 0)
            {
                _idle.TrySetResult();
            }
        }
    }
}
