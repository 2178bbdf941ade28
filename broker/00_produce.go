package broker

// Produce (key 0), versions 3–10 (record batch v2 only).
//
// Each partition's record batch is validated (magic 2, length, CRC, size
// against the topic's max.message.bytes) and proposed to the partition's
// Raft group on the connection's read goroutine, so batches pipelined on one
// connection are appended in the order they were sent. The batch is stored
// exactly as sent — compressed batches stay compressed. The response waits
// until every batch is committed by the group's quorum and applied, which
// is when it has offsets: acks=1 and acks=-1 both answer only committed
// writes. acks=0 sends no response.
//
// Idempotent producers are deduplicated when batches are applied, per
// producer id and partition, over the last 5 batches: a retried batch is
// answered with its original base offset, a gap with
// OUT_OF_ORDER_SEQUENCE_NUMBER, an old epoch with INVALID_PRODUCER_EPOCH.
// Transactions are not served yet.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Produce.Int16(), 3, 10, handleProduce) }

// producePart is one partition's part of a produce response in the making.
type producePart struct {
	resp *kmsg.ProduceResponseTopicPartition
	// waits complete the partition's proposals, one per batch.
	waits []func(context.Context) (raftlog.AppendResult, error)
	bytes int
	// failed is set when a later batch could not be proposed.
	failed error
}

func handleProduce(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var parts []*producePart

	acksValid := req.Acks == 0 || req.Acks == 1 || req.Acks == -1
	view := b.meta.View()
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		t := view.Topics[rt.Topic]
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.BaseOffset = -1
			sp.LogAppendTime = -1
			sp.LogStartOffset = -1
			st.Partitions = append(st.Partitions, sp)
		}
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			if !acksValid {
				sp.ErrorCode = kerr.InvalidRequiredAcks.Code
				continue
			}
			if req.TransactionID != nil {
				sp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				sp.ErrorMessage = strPtr("transactions are not supported by this broker yet")
				continue
			}
			if isInternalTopic(rt.Topic) {
				err := errInternalTopic(rt.Topic, "produce to")
				sp.ErrorCode, sp.ErrorMessage = errorCode(err), errorMessage(err)
				continue
			}
			part := &producePart{resp: sp}
			if err := b.proposeProduce(t, rp, part); err != nil {
				sp.ErrorCode = errorCode(err)
				sp.ErrorMessage = errorMessage(err)
				b.metrics.producedBatch.WithLabelValues(kerr.ErrorForCode(sp.ErrorCode).Error()).Inc()
				continue
			}
			parts = append(parts, part)
		}
		resp.Topics = append(resp.Topics, st)
	}

	timeout := time.Duration(req.TimeoutMillis) * time.Millisecond
	if timeout <= 0 || timeout > 5*time.Minute {
		timeout = 30 * time.Second
	}
	return func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if b.cfg.UnsafeAckBeforeCommit {
			// Deliberately broken (see Config): claim success now.
			for _, part := range parts {
				part.resp.BaseOffset = 0
			}
			return resp
		}
		for _, part := range parts {
			b.finishProduce(ctx, part)
		}
		if req.Acks == 0 {
			return nil
		}
		return resp
	}
}

// proposeProduce validates one partition's records and proposes its
// batches. An error means nothing was proposed.
func (b *Broker) proposeProduce(t *metadata.Topic, rp kmsg.ProduceRequestTopicPartition, part *producePart) error {
	p, code := b.partitionFor(t, rp.Partition)
	if code != 0 {
		return kerr.ErrorForCode(code)
	}
	if len(rp.Records) == 0 {
		return fmt.Errorf("%w: no record batch", kerr.InvalidRecord)
	}
	batches, headers, err := raftlog.ParseBatches(rp.Records)
	if err != nil {
		return err
	}
	limit := b.maxMessageBytes(t)
	for i, h := range headers {
		switch {
		case len(batches[i]) > limit:
			return fmt.Errorf("%w: batch of %d bytes, max.message.bytes is %d", kerr.MessageTooLarge, len(batches[i]), limit)
		case h.Control():
			return fmt.Errorf("%w: clients may not produce control batches", kerr.InvalidRecord)
		case h.Transactional():
			return fmt.Errorf("%w: transactions are not supported by this broker yet", kerr.TransactionalIDAuthorizationFailed)
		case h.Idempotent() && len(batches) > 1:
			return fmt.Errorf("%w: an idempotent produce must carry exactly one batch per partition", kerr.InvalidRecord)
		}
	}
	for i, batch := range batches {
		wait, err := p.AppendAsync(batch)
		if err != nil {
			if i == 0 {
				return err
			}
			// Earlier batches are on their way; the partition's answer
			// is this error once they have an outcome.
			part.failed = err
			break
		}
		part.waits = append(part.waits, wait)
		part.bytes += len(batch)
	}
	return nil
}

// finishProduce waits for a partition's proposals and fills its response.
func (b *Broker) finishProduce(ctx context.Context, part *producePart) {
	for i, wait := range part.waits {
		res, err := wait(ctx)
		if err == nil {
			err = res.Err
		}
		if err != nil {
			// A later batch cannot succeed where an earlier one failed
			// for the client's view; report the first failure.
			part.resp.ErrorCode = errorCode(err)
			part.resp.ErrorMessage = errorMessage(err)
			part.resp.BaseOffset = -1
			b.metrics.producedBatch.WithLabelValues(kerr.ErrorForCode(part.resp.ErrorCode).Error()).Inc()
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, raftlog.ErrNotLeader) {
				b.log.Debug("produce rejected", "err", err)
			}
			return
		}
		if i == 0 {
			part.resp.BaseOffset = res.BaseOffset
			part.resp.LogStartOffset = res.LogStartOffset
		}
		b.metrics.producedBatch.WithLabelValues("ok").Inc()
	}
	if part.failed != nil {
		part.resp.ErrorCode = errorCode(part.failed)
		part.resp.ErrorMessage = errorMessage(part.failed)
		part.resp.BaseOffset = -1
		return
	}
	b.metrics.producedBytes.Add(float64(part.bytes))
}

func strPtr(s string) *string { return &s }
