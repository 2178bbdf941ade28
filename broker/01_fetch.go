package broker

// Fetch (key 1), versions 4–16.
//
// Reads committed record batches (below the high watermark: Raft's commit
// index, applied) from each partition's log, from the requested offset, up
// to the partition's and the request's max bytes — but always at least one
// whole batch, so a batch larger than the limits still makes progress
// (KIP-74). Batches are served as stored, never decompressed. If fewer than
// min bytes are available the request waits, up to max wait, for any of its
// partitions' high watermarks to move (long poll).
//
// Topics are named up to v12 and identified by topic id from v13. There are
// no transactions, so the last stable offset is the high watermark for both
// isolation levels. Fetch sessions (KIP-227) are not kept: the response
// session id is 0, which tells clients to send full requests.

import (
	"context"
	"errors"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.Fetch.Int16(), 4, 16, handleFetch) }

func handleFetch(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.FetchRequest)
	return func(ctx context.Context) kmsg.Response { return b.fetch(ctx, req) }
}

// fetchPart is one requested partition, resolved.
type fetchPart struct {
	p        *raftlog.Partition
	resp     *kmsg.FetchResponseTopicPartition
	offset   int64
	maxBytes int32
	epoch    int32
}

func (b *Broker) fetch(ctx context.Context, req *kmsg.FetchRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	if req.SessionID != 0 {
		// We never hand out sessions, so any id is unknown.
		resp.ErrorCode = kerr.FetchSessionIDNotFound.Code
		return resp
	}
	view := b.meta.View()
	var parts []fetchPart
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		var t *metadata.Topic
		unknown := kerr.UnknownTopicOrPartition.Code
		if req.Version >= 13 {
			t = view.TopicByID(rt.TopicID)
			unknown = kerr.UnknownTopicID.Code
		} else {
			t = view.Topics[rt.Topic]
		}
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			sp.PreferredReadReplica = -1
			// Empty, not null: librdkafka rejects a null record set.
			sp.RecordBatches = []byte{}
			if req.IsolationLevel == 1 {
				sp.AbortedTransactions = []kmsg.FetchResponseTopicPartitionAbortedTransaction{}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		for i, rp := range rt.Partitions {
			sp := &st.Partitions[i]
			if t == nil {
				sp.ErrorCode = unknown
				continue
			}
			p, code := b.partitionFor(t, rp.Partition)
			if code == 0 && !p.Group().IsLeader() {
				code = kerr.NotLeaderForPartition.Code
			}
			if code != 0 {
				sp.ErrorCode = code
				continue
			}
			parts = append(parts, fetchPart{p: p, resp: sp, offset: rp.FetchOffset, maxBytes: rp.PartitionMaxBytes, epoch: rp.CurrentLeaderEpoch})
		}
		resp.Topics = append(resp.Topics, st)
	}

	wait := time.Duration(req.MaxWaitMillis) * time.Millisecond
	if wait > b.cfg.MaxFetchWait {
		wait = b.cfg.MaxFetchWait
	}
	var deadline <-chan time.Time
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
		deadline = timer.C
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	for {
		total, changed := b.readParts(parts, maxBytes)
		if total >= int(req.MinBytes) || deadline == nil || len(changed) == 0 {
			return resp
		}
		// Wait for any partition to move, then read again.
		if !waitAny(ctx, b.drainCh, deadline, changed) {
			return resp
		}
		for i := range parts {
			parts[i].resp.RecordBatches = parts[i].resp.RecordBatches[:0]
		}
	}
}

// readParts reads every partition once, filling responses. It returns the
// bytes read and the channels that announce new data, one per partition
// that could still grow.
func (b *Broker) readParts(parts []fetchPart, maxBytes int32) (int, []<-chan struct{}) {
	total := 0
	var changed []<-chan struct{}
	for i := range parts {
		fp := &parts[i]
		sp := fp.resp
		o := fp.p.Offsets()
		sp.ErrorCode = 0
		sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = o.HighWatermark, o.HighWatermark, o.LogStartOffset
		if code := checkLeaderEpoch(fp.epoch, o.LeaderEpoch); code != 0 {
			sp.ErrorCode = code
			continue
		}
		if !fp.p.Group().IsLeader() {
			sp.ErrorCode = kerr.NotLeaderForPartition.Code
			continue
		}
		budget := int(fp.maxBytes)
		if rest := int(maxBytes) - total; rest < budget {
			budget = rest
		}
		if total > 0 && budget <= 0 {
			changed = append(changed, o.Changed)
			continue
		}
		if budget < 1 {
			budget = 1
		}
		if fp.offset > o.HighWatermark && !o.CaughtUp {
			// A new leader whose high watermark still lags what the old
			// leader acknowledged: wait, do not send the client back to
			// its reset policy.
			changed = append(changed, o.Changed)
			continue
		}
		var err error
		sp.RecordBatches, err = fp.p.Read(sp.RecordBatches[:0], fp.offset, budget)
		if err != nil {
			sp.ErrorCode = errorCode(err)
			if !errors.Is(err, raftlog.ErrOffsetOutOfRange) {
				b.log.Error("fetch read failed", "group", fp.p.Group().ID(), "offset", fp.offset, "err", err)
			}
			continue
		}
		total += len(sp.RecordBatches)
		b.metrics.fetchedBytes.Add(float64(len(sp.RecordBatches)))
		changed = append(changed, o.Changed)
	}
	return total, changed
}

// waitAny waits for one of chans to close. It returns false if ctx ended,
// the broker began draining or the deadline passed first.
func waitAny(ctx context.Context, drain <-chan struct{}, deadline <-chan time.Time, chans []<-chan struct{}) bool {
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		case <-drain:
			return false
		}
	}
	any := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	for _, c := range chans {
		go func() {
			select {
			case <-c:
				select {
				case any <- struct{}{}:
				case <-stop:
				}
			case <-stop:
			}
		}()
	}
	select {
	case <-any:
		return true
	case <-deadline:
		return false
	case <-ctx.Done():
		return false
	case <-drain:
		return false
	}
}
