using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Monal.Push.Tests.Fixtures;
using Npgsql;

namespace Monal.Push.Tests.Ledger;

[Trait("Category", "Postgres")]
public sealed class EventStoreAppendTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 1, 12, 0, 0, TimeSpan.Zero);

    internal static DeviceRegistered Registered(Guid id) =>
        new(id, DeviceMode.Registered, "monalProdiOS", "v1:AAAA", "hash", "example.org", T0);

    internal static PushRequested Requested(Guid id) => new(Guid.CreateVersion7(), id, "example.org", T0, T0.AddDays(1));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AppendAsync_Should_StartAtVersionOne_When_StreamIsNew(bool groupCommit)
    {
        await using var store = await TestLedger.StoreAsync(groupCommit);
        var id = Guid.CreateVersion7();

        var result = await store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id)]);

        Assert.Equal(1, result.Version);
        var events = await store.ReadStreamAsync(id);
        var only = Assert.Single(events);
        Assert.Equal(1, only.Version);
        Assert.Equal("device_registered.v1", only.Type);
        Assert.Equal(Registered(id), only.Data);
        Assert.Equal(result.LastSequence, only.Sequence);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AppendAsync_Should_NumberVersionsInOrder_When_AppendingSequentially(bool groupCommit)
    {
        await using var store = await TestLedger.StoreAsync(groupCommit);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id)]);
        await store.AppendAsync(id, "device", ExpectedVersion.Exactly(1), [Requested(id), Requested(id)]);
        var last = await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);

        Assert.Equal(4, last.Version);
        var events = await store.ReadStreamAsync(id);
        Assert.Equal([1L, 2L, 3L, 4L], events.Select(e => e.Version));
        Assert.True(events.Zip(events.Skip(1)).All(p => p.First.Sequence < p.Second.Sequence), "positions follow versions");
        Assert.Equal(4, await store.GetStreamVersionAsync(id));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AppendAsync_Should_ThrowConflict_When_ExpectedVersionIsWrong(bool groupCommit)
    {
        await using var store = await TestLedger.StoreAsync(groupCommit);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id)]);

        var stale = await Assert.ThrowsAsync<StreamVersionConflictException>(
            () => store.AppendAsync(id, "device", ExpectedVersion.Exactly(5), [Requested(id)]));
        var exists = await Assert.ThrowsAsync<StreamVersionConflictException>(
            () => store.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id)]));
        var missing = Guid.CreateVersion7();
        await Assert.ThrowsAsync<StreamVersionConflictException>(
            () => store.AppendAsync(missing, "device", ExpectedVersion.Exactly(1), [Requested(missing)]));

        Assert.Equal(id, stale.StreamId);
        Assert.Equal(0, exists.Expected);
        Assert.Single(await store.ReadStreamAsync(id));
        Assert.Empty(await store.ReadStreamAsync(missing));
        Assert.Equal(0, await store.GetStreamVersionAsync(missing));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task AppendAsync_Should_LetExactlyOneWriterWin_When_TwoWritersExpectTheSameVersion(bool groupCommit)
    {
        // Two stores stand for two processes: separate group committers, separate connections.
        await using var a = await TestLedger.StoreAsync(groupCommit);
        await using var b = await TestLedger.StoreAsync(groupCommit);
        for (var round = 0; round < 20; round++)
        {
            var id = Guid.CreateVersion7();
            await a.AppendAsync(id, "device", ExpectedVersion.NoStream, [Registered(id)]);

            var results = await Task.WhenAll(
                Attempt(a.AppendAsync(id, "device", ExpectedVersion.Exactly(1), [Requested(id)])),
                Attempt(b.AppendAsync(id, "device", ExpectedVersion.Exactly(1), [Requested(id)])));

            Assert.Equal(1, results.Count(r => r is null));
            Assert.Equal(1, results.Count(r => r is StreamVersionConflictException));
            Assert.Equal(2, (await a.ReadStreamAsync(id)).Count);
        }
    }

    [Fact]
    public async Task AppendAsync_Should_ShareTransactions_When_ManyCallersAppendAtOnce()
    {
        await using var store = await TestLedger.StoreAsync(groupCommit: true);
        var batches = new List<int>();
        store.BatchCommitted += n => { lock (batches) { batches.Add(n); } };
        var devices = Enumerable.Range(0, 50).Select(_ => Guid.CreateVersion7()).ToArray();

        // 1,000 concurrent appends over 50 streams, 20 per stream.
        var tasks = Enumerable.Range(0, 1000)
            .Select(i => store.AppendAsync(devices[i % 50], "device", ExpectedVersion.Any, [Requested(devices[i % 50])]))
            .ToArray();
        var results = await Task.WhenAll(tasks);

        Assert.Equal(1000, results.Select(r => r.LastSequence).Distinct().Count());
        Assert.Equal(1000, batches.Sum());
        Assert.True(batches.Count < 1000, $"{batches.Count} transactions for 1000 appends: group commit did not group");
        foreach (var d in devices)
        {
            var events = await store.ReadStreamAsync(d);
            Assert.Equal(Enumerable.Range(1, 20).Select(v => (long)v), events.Select(e => e.Version));
        }
    }

    [Fact]
    public async Task AppendAsync_Should_CommitOnTheSecondWriter_OnlyOnceABacklogFormsBehindAStalledCommit()
    {
        // A database of its own: the stalled commit holds its tables' locks for a while, and DDL of another test on the
        // shared database that needs ACCESS EXCLUSIVE (a new day's partition does: CREATE TABLE ... PARTITION OF) would queue
        // behind it, and every append of every test behind that.
        await using var dataSource = await TestDatabase.IsolatedDataSourceAsync();
        await using var store = TestLedger.Store(dataSource, groupCommit: true); // two writers, the default
        var stalledStream = Guid.CreateVersion7();
        await store.AppendAsync(stalledStream, "device", ExpectedVersion.Any, [Requested(stalledStream)]);

        // Hold the stream's row: the next append to it waits inside its commit, and so does the writer that took it.
        await using var holder = await dataSource.OpenConnectionAsync();
        await using var tx = await holder.BeginTransactionAsync();
        await using (var hold = new NpgsqlCommand("select 1 from streams where id = $1 for update", holder, tx))
        {
            hold.Parameters.Add(new() { Value = stalledStream });
            await hold.ExecuteNonQueryAsync();
        }

        var stalled = store.AppendAsync(stalledStream, "device", ExpectedVersion.Any, [Requested(stalledStream)]);
        await WaitUntilBlockedByAsync(dataSource, holder.ProcessID);

        Task<AppendResult> AppendToNewStream()
        {
            var id = Guid.CreateVersion7();
            return store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);
        }

        // Fewer than the backlog wait for the first writer, as they would at a moderate rate.
        var few = Enumerable.Range(0, GroupCommitter.BacklogForMoreWriters - 1).Select(_ => AppendToNewStream()).ToList();
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.DoesNotContain(few, t => t.IsCompleted);

        // A backlog: the second writer commits it while the first is still stalled.
        var more = Enumerable.Range(0, GroupCommitter.BacklogForMoreWriters).Select(_ => AppendToNewStream()).ToList();
        await Task.WhenAll(few.Concat(more)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(stalled.IsCompleted);

        await tx.RollbackAsync();
        Assert.Equal(2, (await stalled.WaitAsync(TimeSpan.FromSeconds(30))).Version);
    }

    private static async Task WaitUntilBlockedByAsync(NpgsqlDataSource dataSource, int holderPid)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            await using var cmd = dataSource.CreateCommand("select count(*) from pg_stat_activity where $1 = any(pg_blocking_pids(pid))");
            cmd.Parameters.Add(new() { Value = holderPid });
            if ((long)(await cmd.ExecuteScalarAsync(cts.Token))! > 0)
            {
                return;
            }

            await Task.Delay(20, cts.Token);
        }
    }

    [Fact]
    public async Task AppendDeferredAsync_Should_ShareOneTransaction_When_AppendsArriveOneByOneWithinTheLinger()
    {
        // Ten appends a few milliseconds apart: each would find the writers idle and commit alone (ten transactions);
        // deferred, they wait out the linger together. A long linger, so that a loaded machine's slow timers still
        // bring all ten within it.
        await using var store = await TestLedger.StoreAsync(groupCommit: true, deferredLinger: TimeSpan.FromSeconds(5));
        var batches = new List<int>();
        store.BatchCommitted += n => { lock (batches) { batches.Add(n); } };
        var device = Guid.CreateVersion7();
        await store.AppendAsync(device, "device", ExpectedVersion.NoStream, [Registered(device)]);
        lock (batches)
        {
            batches.Clear();
        }

        var appends = new List<Task<AppendResult>>();
        for (var i = 0; i < 10; i++)
        {
            appends.Add(store.AppendDeferredAsync(device, "device", [Requested(device)]));
            await Task.Delay(5);
        }

        var results = await Task.WhenAll(appends).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.Equal(Enumerable.Range(2, 10).Select(v => (long)v), results.Select(r => r.Version).Order());
        Assert.Equal(10, batches.Sum());
        // One transaction, or two if the machine was slow enough for the linger to end among them.
        Assert.True(batches.Count <= 2, $"{batches.Count} transactions for 10 deferred appends: [{string.Join(", ", batches)}]");
        Assert.Equal(11, (await store.ReadStreamAsync(device)).Count);
    }

    [Fact]
    public async Task AppendDeferredAsync_Should_GoOnWithoutTheLinger_When_ABatchHasGathered()
    {
        // A linger nobody would wait out: the appends complete because DeferredBatch of them gathered.
        await using var store = await TestLedger.StoreAsync(groupCommit: true, deferredLinger: TimeSpan.FromHours(1));
        var devices = Enumerable.Range(0, GroupCommitter.DeferredBatch).Select(_ => Guid.CreateVersion7()).ToArray();

        var results = await Task.WhenAll(devices.Select(d => store.AppendDeferredAsync(d, "device", [Requested(d)])))
            .WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(results, r => Assert.Equal(1, r.Version));
    }

    [Fact]
    public async Task DisposeAsync_Should_CommitDeferredAppendsAtOnce_When_TheStoreStops()
    {
        var dataSource = await TestDatabase.DataSourceAsync();
        var store = TestLedger.Store(dataSource, groupCommit: true, deferredLinger: TimeSpan.FromHours(1));
        var devices = Enumerable.Range(0, 3).Select(_ => Guid.CreateVersion7()).ToArray();
        var appends = devices.Select(d => store.AppendDeferredAsync(d, "device", [Requested(d)])).ToArray();

        await store.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.All(await Task.WhenAll(appends), r => Assert.Equal(1, r.Version));
        await using var reader = TestLedger.Store(dataSource, groupCommit: false);
        foreach (var d in devices)
        {
            Assert.Single(await reader.ReadStreamAsync(d));
        }
    }

    [Fact]
    public async Task ExecuteBatch_Should_FailOnlyTheCulpritInAFewCommits_When_OneAppendOfABatchIsRefused()
    {
        await using var store = await TestLedger.StoreAsync(groupCommit: false);
        var taken = Guid.CreateVersion7();
        await store.AppendAsync(taken, "device", ExpectedVersion.NoStream, [Registered(taken)]);
        var commits = new List<int>();
        store.BatchCommitted += n => { lock (commits) { commits.Add(n); } };

        // 64 appends in one batch, as a group-commit writer takes them; the 41st expects a stream that exists to be new.
        var batch = Enumerable.Range(0, 64).Select(i =>
        {
            var id = i == 40 ? taken : Guid.CreateVersion7();
            return new PendingAppend(id, "device", ExpectedVersion.NoStream, [Registered(id)], null);
        }).ToArray();
        await store.ExecuteBatchAsync(batch, CancellationToken.None);

        await Assert.ThrowsAsync<StreamVersionConflictException>(() => batch[40].Completion.Task);
        foreach (var ok in batch.Where((_, i) => i != 40))
        {
            Assert.Equal(1, (await ok.Completion.Task).Version);
            Assert.Single(await store.ReadStreamAsync(ok.StreamId));
        }

        // Halving: 63 appends committed in at most 2 log2(64) transactions (each append alone took 63).
        Assert.Equal(63, commits.Sum());
        Assert.True(commits.Count <= 12, $"{commits.Count} commits for one refused append in 64: [{string.Join(", ", commits)}]");
        Assert.Single(await store.ReadStreamAsync(taken));
    }

    [Fact]
    public async Task AppendAsync_Should_MeasureTheWaitForAWriterAndEachCommit_When_GroupCommitting()
    {
        // Process-wide instruments: other tests add to them, so count what this test's appends add at least.
        var waits = 0;
        var commits = 0;
        var negative = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Monal.Push.Ledger.LedgerMetrics.MeterName
                && instrument.Name is "monal_ledger_append_wait_seconds" or "monal_ledger_group_commit_seconds")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((instrument, value, _, _) =>
        {
            Interlocked.Increment(ref instrument.Name == "monal_ledger_append_wait_seconds" ? ref waits : ref commits);
            if (value < 0)
            {
                Interlocked.Increment(ref negative);
            }
        });
        listener.Start();
        await using var store = await TestLedger.StoreAsync(groupCommit: true);
        var device = Guid.CreateVersion7();

        await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => store.AppendAsync(device, "device", ExpectedVersion.Any, [Requested(device)])));

        Assert.True(Volatile.Read(ref waits) >= 40, $"{waits} waits recorded for 40 appends");
        Assert.True(Volatile.Read(ref commits) >= 1, "no commit duration recorded");
        Assert.Equal(0, Volatile.Read(ref negative));
    }

    [Fact]
    public async Task AppendAsync_Should_StorePushEventsInTheDayPartition_When_EventIsAPushEvent()
    {
        var clock = new ManualClock(new DateTimeOffset(2031, 3, 4, 23, 59, 0, TimeSpan.Zero));
        await using var store = await TestLedger.StoreAsync(clock: clock);
        var id = Guid.CreateVersion7();
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id), Requested(id)]);
        clock.Advance(TimeSpan.FromMinutes(2));
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Requested(id)]);

        var dataSource = await TestDatabase.DataSourceAsync();
        Assert.Equal(1L, await Scalar(dataSource, "select count(*) from push_events_20310304 where stream_id = $1", id));
        Assert.Equal(1L, await Scalar(dataSource, "select count(*) from push_events_20310305 where stream_id = $1", id));
        Assert.Equal(1L, await Scalar(dataSource, "select count(*) from events where stream_id = $1", id));
        Assert.Equal(3, (await store.ReadStreamAsync(id)).Count);
    }

    [Fact]
    public async Task AppendAsync_Should_KeepMetadata_When_Given()
    {
        await using var store = await TestLedger.StoreAsync();
        var id = Guid.CreateVersion7();
        var meta = new EventMetadata(Guid.CreateVersion7(), Guid.CreateVersion7());
        await store.AppendAsync(id, "device", ExpectedVersion.Any, [Registered(id)], meta);

        Assert.Equal(meta, Assert.Single(await store.ReadStreamAsync(id)).Metadata);
    }

    [Fact]
    public async Task AppendAsync_Should_Refuse_When_EventTypeIsNotRegistered()
    {
        await using var store = await TestLedger.StoreAsync();
        await Assert.ThrowsAsync<ArgumentException>(
            () => store.AppendAsync(Guid.CreateVersion7(), "device", ExpectedVersion.Any, ["not an event"]));
    }

    internal static async Task<object?> Scalar(NpgsqlDataSource dataSource, string sql, params object[] args)
    {
        await using var cmd = dataSource.CreateCommand(sql);
        foreach (var a in args)
        {
            cmd.Parameters.Add(new() { Value = a });
        }

        return await cmd.ExecuteScalarAsync();
    }

    private static async Task<Exception?> Attempt(Task task)
    {
        try
        {
            await task;
            return null;
        }
        catch (Exception ex)
        {
            return ex;
        }
    }
}
