using Monal.Push.Ledger;

namespace Monal.Push.Tests.Ledger;

public sealed class GathererTests
{
    [Fact]
    public async Task Add_Should_StartBatchesUpToTheLimitAndGatherTheRest_When_EarlierBatchesAreStillRunning()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var running = 0;
        var mostRunning = 0;
        var sizes = new List<int>();
        var gatherer = new Gatherer<Item>(maxBatch: 3, inFlight: 2, async batch =>
        {
            var now = Interlocked.Increment(ref running);
            lock (sizes)
            {
                sizes.Add(batch.Count);
                mostRunning = Math.Max(mostRunning, now);
            }

            await release.Task;
            Interlocked.Decrement(ref running);
            foreach (var item in batch)
            {
                item.Done.TrySetResult(item.Value * 10);
            }
        }, static (item, e) => item.Done.TrySetException(e));
        var items = Enumerable.Range(1, 9).Select(i => new Item(i)).ToList();

        foreach (var item in items)
        {
            gatherer.Add(item);
        }

        // The first two items each started a batch at once; the other seven wait for one of them to finish.
        Assert.Equal([1, 1], sizes);
        release.SetResult();
        var results = await Task.WhenAll(items.Select(i => i.Done.Task)).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(items.Select(i => i.Value * 10), results);
        Assert.Equal(2, mostRunning);
        Assert.All(sizes, size => Assert.InRange(size, 1, 3));
        Assert.Equal(9, sizes.Sum());
        Assert.Equal(sizes.Count, gatherer.Batches);
        Assert.InRange(gatherer.Batches, 5, 6); // 1 + 1 alone, then 7 in batches of at most 3
    }

    [Fact]
    public async Task Add_Should_FailOnlyTheFailingBatchAndGoOn_When_TheHandlerThrows()
    {
        var calls = 0;
        var gatherer = new Gatherer<Item>(maxBatch: 8, inFlight: 1, batch =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                throw new InvalidOperationException("the database went away");
            }

            foreach (var item in batch)
            {
                item.Done.TrySetResult(item.Value);
            }

            return Task.CompletedTask;
        }, static (item, e) => item.Done.TrySetException(e));
        var first = new Item(1);
        var second = new Item(2);

        gatherer.Add(first);
        gatherer.Add(second);

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => first.Done.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("the database went away", failure.Message);
        Assert.Equal(2, await second.Done.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    private sealed record Item(int Value)
    {
        public TaskCompletionSource<int> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
