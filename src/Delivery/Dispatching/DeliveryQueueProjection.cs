using Microsoft.Extensions.Options;
using Monal.Push.Ledger.Events;
using Monal.Push.Ledger.EventStore;
using Npgsql;
using NpgsqlTypes;

namespace Monal.Push.Delivery.Dispatching;

/// <summary>
/// Keeps push_queue (migrations/0005_delivery_queue.sql) in the append transaction, so the queue never disagrees with
/// the ledger: a PushRequested inserts its row, a final outcome removes it, a transient failure reschedules it.
/// A push due now is inserted already claimed by this node (when its dispatcher is running); the projection returns
/// an <c>AfterCommit</c> that hands those claims to the dispatcher (<see cref="DispatcherNode.HandOver"/>) once the
/// batch has committed, and no other node touches them before their lease runs out. Every statement takes its rows
/// in push-id order, so concurrent batches lock them in one order and never deadlock.
/// </summary>
internal sealed class DeliveryQueueProjection(DispatcherNode node, IOptions<DeliveryOptions> options)
    : IInlineProjection, IStreamDeletionHook
{
    private const string InsertSql = """
        insert into push_queue (push_id, device_id, requested_at, not_before, expires_at, next_attempt_at, claimed_by, claimed_until)
        select p, d, r, nb, x, coalesce(cu, nb), c, cu
        from unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[], $6::text[], $7::timestamptz[])
             as u(p, d, r, nb, x, c, cu)
        order by p
        on conflict (push_id) do nothing
        """;

    private readonly DeliveryOptions _options = options.Value;

    public AfterCommit? Project(NpgsqlBatch batch, IReadOnlyList<PendingEvent> events)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(events);
        List<PushRequested>? requested = null;
        List<DateTimeOffset>? requestedAt = null;
        List<Guid>? finished = null;
        List<(PushFailed Failed, DateTimeOffset At)>? retried = null;
        foreach (var e in events)
        {
            switch (e.Data)
            {
                case PushRequested r:
                    (requested ??= []).Add(r);
                    (requestedAt ??= []).Add(e.Timestamp);
                    break;
                case PushDelivered d:
                    (finished ??= []).Add(d.PushId);
                    break;
                case PushFailed { Transient: false } f:
                    (finished ??= []).Add(f.PushId);
                    break;
                case PushFailed f:
                    (retried ??= []).Add((f, e.Timestamp));
                    break;
                case TokenInvalidated t:
                    (finished ??= []).Add(t.PushId);
                    break;
                case TokenRejected t:
                    (finished ??= []).Add(t.PushId);
                    break;
                default:
                    break;
            }
        }

        List<QueuedPush>? claimed = null;
        if (requested is not null)
        {
            claimed = AddInserts(batch, requested, requestedAt!);
        }

        if (retried is not null)
        {
            AddRetries(batch, retried);
        }

        if (finished is not null)
        {
            // Duplicates stay in: two final outcomes of one push in a batch must make the function refuse.
            finished.Sort();
            var finish = new NpgsqlBatchCommand("select monal_push_queue_finish($1)");
            finish.AddArray(finished.ToArray(), NpgsqlDbType.Uuid);
            batch.BatchCommands.Add(finish);
        }

        return claimed is null ? null : () => node.HandOver(claimed);
    }

    public void OnDelete(NpgsqlBatch batch, Guid streamId)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var delete = new NpgsqlBatchCommand("delete from push_queue where device_id = $1");
        delete.Parameters.Add(new() { Value = streamId });
        batch.BatchCommands.Add(delete);
    }

    // Returns the pushes inserted already claimed by this node, for the dispatcher once the batch has committed.
    private List<QueuedPush>? AddInserts(NpgsqlBatch batch, List<PushRequested> requested, List<DateTimeOffset> committedAt)
    {
        var n = requested.Count;
        var order = Enumerable.Range(0, n).OrderBy(i => requested[i].PushId).ToArray();
        var pushIds = new Guid[n];
        var deviceIds = new Guid[n];
        var requestedAt = new DateTimeOffset[n];
        var notBefore = new DateTimeOffset[n];
        var expiresAt = new DateTimeOffset[n];
        var claimedBy = new string?[n];
        var claimedUntil = new DateTimeOffset?[n];
        var accepting = node.Accepting;
        List<QueuedPush>? claimed = null;
        for (var k = 0; k < n; k++)
        {
            var r = requested[order[k]];
            var now = committedAt[order[k]];
            pushIds[k] = r.PushId;
            deviceIds[k] = r.DeviceId;
            requestedAt[k] = r.RequestedAt;
            notBefore[k] = r.NotBefore is { } nb && nb > r.RequestedAt ? nb : r.RequestedAt;
            expiresAt[k] = r.ExpiresAt;
            if (accepting && notBefore[k] <= now && r.ExpiresAt > now)
            {
                claimedBy[k] = node.Id;
                claimedUntil[k] = now + _options.LeaseDuration;
                (claimed ??= []).Add(new QueuedPush(
                    r.PushId, r.DeviceId, notBefore[k], r.ExpiresAt, 0, null, claimedUntil[k]!.Value));
            }
        }

        var insert = new NpgsqlBatchCommand(InsertSql);
        insert.AddArray(pushIds, NpgsqlDbType.Uuid);
        insert.AddArray(deviceIds, NpgsqlDbType.Uuid);
        insert.AddArray(requestedAt, NpgsqlDbType.TimestampTz);
        insert.AddArray(notBefore, NpgsqlDbType.TimestampTz);
        insert.AddArray(expiresAt, NpgsqlDbType.TimestampTz);
        insert.AddArray(claimedBy, NpgsqlDbType.Text);
        insert.AddArray(claimedUntil, NpgsqlDbType.TimestampTz);
        batch.BatchCommands.Add(insert);
        return claimed;
    }

    private void AddRetries(NpgsqlBatch batch, List<(PushFailed Failed, DateTimeOffset At)> retried)
    {
        retried.Sort((a, b) => a.Failed.PushId.CompareTo(b.Failed.PushId));
        var retry = new NpgsqlBatchCommand("select monal_push_queue_retry($1, $2, $3, $4, $5, $6)");
        retry.AddArray(retried.Select(r => r.Failed.PushId).ToArray(), NpgsqlDbType.Uuid);
        retry.AddArray(retried.Select(r => r.Failed.Status).ToArray(), NpgsqlDbType.Integer);
        retry.AddArray(retried.Select(r => r.Failed.Reason).ToArray(), NpgsqlDbType.Text);
        retry.AddArray(retried.Select(r => r.At).ToArray(), NpgsqlDbType.TimestampTz);
        retry.AddValue(_options.RetryBaseDelay.TotalMilliseconds, NpgsqlDbType.Double);
        retry.AddValue(_options.RetryMaxDelay.TotalMilliseconds, NpgsqlDbType.Double);
        batch.BatchCommands.Add(retry);
    }
}
