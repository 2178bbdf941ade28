package broker

// Group coordination: the wiring between the Kafka group APIs
// (08_offset_commit.go … 47_offset_delete.go) and the coordinator package.
//
// Consumer-group offsets and group state live in the internal topic
// __consumer_offsets (DESIGN.md, decision 8), replicated like any topic by
// its partitions' Raft groups. A group belongs to partition
// abs(javaHash(group)) % partitions, as in Kafka, and its coordinator is the
// leader of that partition. For every __consumer_offsets replica it holds,
// a broker runs a watcher; when the replica becomes leader and has caught
// up (it applied an entry of its term, so its high watermark covers
// everything any earlier leader acknowledged), the watcher starts a
// shardRunner, which reads the whole partition into a coordinator.Shard
// and then serves it. When leadership moves, the runner stops and every
// waiting request is answered NOT_COORDINATOR; the new leader loads the
// same log, so nothing acknowledged is lost or moved back.
//
// A shardRunner's loop goroutine owns its Shard: handlers send it
// closures, in request order, and wait for the answer in their reply.
// Writes the Shard asks for are appended to the partition in order, from
// the loop, and one waiter goroutine reports their completions back in the
// same order, so the Shard applies them in log order.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftka/raftka/coordinator"
	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Group coordinator settings Kafka has as broker configs and Raftka keeps
// fixed for now.
const (
	// offsetsRetentionCheckInterval is Kafka's
	// offsets.retention.check.interval.ms.
	offsetsRetentionCheckInterval = 10 * time.Minute
	// shardRestartBackoff spaces reloads of a shard whose write failed
	// while the broker still leads its partition.
	shardRestartBackoff = 200 * time.Millisecond
	// loadReadBytes is how much of __consumer_offsets one read loads.
	loadReadBytes = 1 << 20
)

// groupRegistry maps each started Broker to its coordinators. (It would be
// a Broker field; broker.go is shared, so the wiring keeps to this file
// and one line in Start.)
var groupRegistry sync.Map // *Broker → *groupCoordinators

// groupCoordinators are the group coordinators of one broker. Lock order:
// mu before the Broker's mu (reconcile looks up replicas under mu).
type groupCoordinators struct {
	b   *Broker
	cfg coordinator.Config

	// createMu serializes creations of __consumer_offsets by this broker.
	createMu sync.Mutex

	mu struct {
		sync.Mutex
		// shards are the running coordinators (loading or serving), by
		// __consumer_offsets partition index.
		shards map[int32]*shardRunner
		// watchers watch the local __consumer_offsets replicas, by Raft
		// group id.
		watchers map[uint64]*replicaWatcher
	}
}

// kickExpire asks every running shard to clean up offsets now (a topic
// was deleted).
func (gc *groupCoordinators) kickExpire() {
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for _, r := range gc.mu.shards {
		select {
		case r.expire <- struct{}{}:
		default:
		}
	}
}

// groupsOf returns b's group coordinators, or nil before startGroups.
func groupsOf(b *Broker) *groupCoordinators {
	v, ok := groupRegistry.Load(b)
	if !ok {
		return nil
	}
	return v.(*groupCoordinators)
}

// startGroups starts the loop that runs a coordinator for every
// __consumer_offsets partition this broker leads. Start calls it once.
func (b *Broker) startGroups() {
	cfg := coordinator.DefaultConfig()
	cfg.InitialRebalanceDelay = b.cfg.GroupInitialRebalanceDelay
	cfg.MinSessionTimeout = b.cfg.GroupMinSessionTimeout
	cfg.MaxSessionTimeout = b.cfg.GroupMaxSessionTimeout
	cfg.OffsetsRetention = b.cfg.OffsetsRetention
	cfg.Logger = b.log.With("component", "group-coordinator")
	gc := &groupCoordinators{b: b, cfg: cfg}
	gc.mu.shards = map[int32]*shardRunner{}
	gc.mu.watchers = map[uint64]*replicaWatcher{}
	groupRegistry.Store(b, gc)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer groupRegistry.Delete(b)
		gc.run()
	}()
}

// run keeps a watcher on every local __consumer_offsets replica until the
// broker starts draining, then stops them all (answering waiting requests
// NOT_COORDINATOR, so that clients move to the next coordinator).
func (gc *groupCoordinators) run() {
	b := gc.b
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	go func() {
		select {
		case <-b.drainCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	defer func() {
		gc.mu.Lock()
		for _, w := range gc.mu.watchers {
			w.cancel()
		}
		gc.mu.Unlock()
		wg.Wait()
	}()
	topicIDs := map[[16]byte]bool{}
	fallback := time.NewTicker(time.Second)
	defer fallback.Stop()
	for {
		v := b.meta.View()
		b.mu.RLock()
		reconciled := b.mu.reconciled
		b.mu.RUnlock()
		gc.reconcile(ctx, v, &wg)
		// A deleted topic's offsets go at once, not at the next check.
		ids := make(map[[16]byte]bool, len(v.Topics))
		deleted := false
		for _, t := range v.Topics {
			ids[t.ID] = true
		}
		for id := range topicIDs {
			deleted = deleted || !ids[id]
		}
		topicIDs = ids
		if deleted {
			gc.kickExpire()
		}
		select {
		case <-ctx.Done():
			return
		case <-v.Changed:
		case <-reconciled:
		case <-fallback.C:
		}
	}
}

// reconcile starts a watcher for each local __consumer_offsets replica
// and stops those of replicas that are gone.
func (gc *groupCoordinators) reconcile(ctx context.Context, v *metadata.View, wg *sync.WaitGroup) {
	want := map[uint64]int32{}
	if t := v.Topics[coordinator.OffsetsTopic]; t != nil {
		for _, p := range t.Partitions {
			if gc.b.partition(p.GroupID) != nil {
				want[p.GroupID] = p.Index
			}
		}
	}
	gc.mu.Lock()
	defer gc.mu.Unlock()
	for id, w := range gc.mu.watchers {
		if idx, ok := want[id]; !ok || idx != w.index || gc.b.partition(id) != w.p {
			w.cancel()
			delete(gc.mu.watchers, id)
		}
	}
	for id, idx := range want {
		if gc.mu.watchers[id] != nil {
			continue
		}
		wctx, cancel := context.WithCancel(ctx)
		w := &replicaWatcher{gc: gc, index: idx, groupID: id, p: gc.b.partition(id), cancel: cancel}
		gc.mu.watchers[id] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(wctx)
		}()
	}
}

// replicaWatcher runs a coordinator for its replica while the replica
// leads its partition.
type replicaWatcher struct {
	gc      *groupCoordinators
	index   int32
	groupID uint64
	p       *raftlog.Partition
	cancel  context.CancelFunc
}

func (w *replicaWatcher) run(ctx context.Context) {
	self := uint64(w.gc.b.cfg.NodeID)
	var (
		cur       *shardRunner
		notBefore time.Time
	)
	defer func() {
		if cur != nil {
			w.gc.stopShard(cur)
		}
	}()
	for {
		o := w.p.Offsets()
		leading := o.Leader == self && w.p.Group().IsLeader()
		if cur != nil {
			select {
			case <-cur.done:
				// The runner stopped itself after a failed write: load
				// again, a little later.
				w.gc.stopShard(cur)
				cur = nil
				notBefore = time.Now().Add(shardRestartBackoff)
			default:
				if !leading || o.LeaderEpoch != cur.epoch {
					w.gc.stopShard(cur)
					cur = nil
				}
			}
		}
		var retry <-chan time.Time
		if cur == nil && leading && o.CaughtUp {
			if d := time.Until(notBefore); d > 0 {
				retry = time.After(d)
			} else {
				cur = w.gc.startShard(ctx, w.index, w.groupID, w.p, o.LeaderEpoch)
			}
		}
		var done <-chan struct{}
		if cur != nil {
			done = cur.done
		}
		select {
		case <-ctx.Done():
			return
		case <-o.Changed:
		case <-done:
		case <-retry:
		}
	}
}

// startShard starts loading partition index and registers its runner.
func (gc *groupCoordinators) startShard(ctx context.Context, index int32, groupID uint64, p *raftlog.Partition, epoch int32) *shardRunner {
	rctx, cancel := context.WithCancel(ctx)
	r := &shardRunner{
		gc: gc, index: index, groupID: groupID, p: p, epoch: epoch,
		ctx: rctx, cancel: cancel, done: make(chan struct{}), expire: make(chan struct{}, 1),
		log: gc.b.log.With("partition", index, "epoch", epoch, "component", "group-coordinator"),
	}
	r.requests.init()
	r.waits.init()
	r.completions.init()
	gc.mu.Lock()
	gc.mu.shards[index] = r
	gc.mu.Unlock()
	go r.run()
	return r
}

// stopShard stops r, waits for it, and unregisters it.
func (gc *groupCoordinators) stopShard(r *shardRunner) {
	r.cancel()
	<-r.done
	gc.mu.Lock()
	if gc.mu.shards[r.index] == r {
		delete(gc.mu.shards, r.index)
	}
	gc.mu.Unlock()
}

// mailbox is an unbounded FIFO with a wake-up signal: senders never block,
// which keeps handlers and the waiter goroutine from ever waiting on a
// shard's loop.
type mailbox[T any] struct {
	mu     sync.Mutex
	items  []T
	signal chan struct{}
}

func (m *mailbox[T]) init() { m.signal = make(chan struct{}, 1) }

func (m *mailbox[T]) push(v T) {
	m.mu.Lock()
	m.items = append(m.items, v)
	m.mu.Unlock()
	select {
	case m.signal <- struct{}{}:
	default:
	}
}

func (m *mailbox[T]) take() []T {
	m.mu.Lock()
	defer m.mu.Unlock()
	items := m.items
	m.items = nil
	return items
}

// shardRunner runs the coordinator of one __consumer_offsets partition
// for one leader epoch.
type shardRunner struct {
	gc      *groupCoordinators
	index   int32
	groupID uint64
	epoch   int32
	p       *raftlog.Partition
	log     *slog.Logger
	// expire asks the loop to run the offsets retention cleanup now.
	expire chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	// done is closed when the loop has stopped and answered everything.
	done chan struct{}
	// loaded is set once the partition is read and requests are served.
	loaded atomic.Bool

	requests    mailbox[func(*coordinator.Shard, time.Time)]
	waits       mailbox[shardWrite]
	completions mailbox[shardWriteDone]
}

type shardWrite struct {
	id   uint64
	wait func(context.Context) (raftlog.AppendResult, error)
}

type shardWriteDone struct {
	id   uint64
	code int16
	err  error
}

func (r *shardRunner) stopped() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *shardRunner) run() {
	defer close(r.done)
	s := coordinator.New(r.gc.cfg)
	began := time.Now()
	records, err := r.load(s)
	if err != nil {
		if r.ctx.Err() == nil {
			r.log.Error("loading groups failed", "err", err)
		}
		s.Unload()
		r.drainRequests(s)
		return
	}
	s.Loaded(time.Now())
	r.loaded.Store(true)
	r.log.Info("coordinating groups", "groups", s.GroupCount(), "records", records, "took", time.Since(began).Round(time.Millisecond))

	var waiters sync.WaitGroup
	waiters.Add(1)
	go func() {
		defer waiters.Done()
		r.waitWrites()
	}()
	defer waiters.Wait()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	expireTicker := time.NewTicker(offsetsRetentionCheckInterval)
	defer expireTicker.Stop()
	for {
		failed := false
		select {
		case <-r.ctx.Done():
			s.Unload()
			r.drainRequests(s)
			return
		case <-r.requests.signal:
			for _, f := range r.requests.take() {
				f(s, time.Now())
			}
		case <-r.completions.signal:
			for _, c := range r.completions.take() {
				if c.code != 0 {
					failed = true
					r.log.Warn("group coordinator write failed; reloading", "err", c.err)
				}
				s.Written(time.Now(), c.id, c.code)
			}
		case <-timer.C:
			s.Tick(time.Now())
		case <-expireTicker.C:
			r.expireOffsets(s)
		case <-r.expire:
			r.expireOffsets(s)
		}
		if r.appendWrites(s) {
			failed = true
		}
		if failed {
			// The log and the Shard may disagree about a failed write:
			// reload from the log rather than serve a guess.
			r.cancel()
			s.Unload()
			r.drainRequests(s)
			return
		}
		if next, ok := s.NextDeadline(); ok {
			resetTimer(timer, time.Until(next))
		} else {
			resetTimer(timer, time.Hour)
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(max(d, 0))
}

// drainRequests answers queued requests from the unloaded shard, which
// answers NOT_COORDINATOR.
func (r *shardRunner) drainRequests(s *coordinator.Shard) {
	for _, f := range r.requests.take() {
		f(s, time.Now())
	}
}

func (r *shardRunner) expireOffsets(s *coordinator.Shard) {
	topics := r.gc.b.meta.View().Topics
	offsets, groups := s.ExpireOffsets(time.Now(), func(topic string) bool { return topics[topic] != nil })
	if offsets+groups > 0 {
		r.log.Info("expired committed offsets", "offsets", offsets, "groups", groups)
	}
}

// appendWrites proposes the shard's queued writes, in order. It reports
// whether a proposal failed at once.
func (r *shardRunner) appendWrites(s *coordinator.Shard) bool {
	failed := false
	for {
		writes := s.TakeWrites()
		if len(writes) == 0 {
			return failed
		}
		for _, w := range writes {
			batch := coordinator.AppendBatch(nil, w.Records, time.Now())
			wait, err := r.p.AppendAsync(batch)
			if err != nil {
				failed = true
				s.Written(time.Now(), w.ID, appendErrorCode(err))
				continue
			}
			r.waits.push(shardWrite{id: w.ID, wait: wait})
		}
	}
}

// waitWrites waits for the appended writes in order and reports each
// outcome to the loop.
func (r *shardRunner) waitWrites() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.waits.signal:
		}
		for _, w := range r.waits.take() {
			res, err := w.wait(r.ctx)
			if errors.Is(err, context.Canceled) && r.ctx.Err() != nil {
				return // the loop answers NOT_COORDINATOR for the rest
			}
			if err == nil {
				err = res.Err
			}
			r.completions.push(shardWriteDone{id: w.id, code: appendErrorCode(err), err: err})
		}
	}
}

// appendErrorCode maps a failed append to the error a group client acts
// on: NOT_COORDINATOR sends it to find the new coordinator.
func appendErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, raftlog.ErrNotLeader), errors.Is(err, raftlog.ErrGroupClosed), errors.Is(err, raftlog.ErrStorage):
		return kerr.NotCoordinator.Code
	case errors.Is(err, raftlog.ErrProposalDropped), errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.CoordinatorNotAvailable.Code
	}
	var ke *kerr.Error
	if errors.As(err, &ke) && ke.Code == kerr.MessageTooLarge.Code {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// load reads every record of the partition, up to its high watermark,
// into s. It returns how many records it read.
func (r *shardRunner) load(s *coordinator.Shard) (int, error) {
	o := r.p.Offsets()
	hw := o.HighWatermark
	offset := o.LogStartOffset
	records, skipped := 0, 0
	var buf []byte
	for offset < hw {
		if err := r.ctx.Err(); err != nil {
			return records, err
		}
		var err error
		buf, err = r.p.Read(buf[:0], offset, loadReadBytes)
		if err != nil {
			return records, fmt.Errorf("reading %s at offset %d: %w", coordinator.OffsetsTopic, offset, err)
		}
		batches, headers, err := raftlog.ParseBatches(buf)
		if err != nil {
			return records, fmt.Errorf("reading %s at offset %d: %w", coordinator.OffsetsTopic, offset, err)
		}
		if len(batches) == 0 {
			return records, fmt.Errorf("reading %s at offset %d: no batch below the high watermark %d", coordinator.OffsetsTopic, offset, hw)
		}
		for i, batch := range batches {
			err := coordinator.ReadBatches(batch, func(rec coordinator.Record) {
				records++
				if err := s.Replay(rec); err != nil {
					skipped++
					if skipped <= 10 {
						r.log.Warn("skipping a record of "+coordinator.OffsetsTopic, "err", err)
					}
				}
			})
			if err != nil {
				r.log.Warn("skipping a batch of "+coordinator.OffsetsTopic, "offset", binary.BigEndian.Uint64(batch), "err", err)
			}
			offset = int64(binary.BigEndian.Uint64(batch)) + int64(headers[i].LastOffsetDelta) + 1
		}
	}
	return records, nil
}

// submit queues f to run on r's loop and returns a wait for the answer f
// gives through respond. The wait reports false when r stopped before
// answering (the caller answers NOT_COORDINATOR) or ctx ended.
func submit[T any](r *shardRunner, f func(s *coordinator.Shard, now time.Time, respond func(T))) func(ctx context.Context) (T, bool) {
	ch := make(chan T, 1)
	r.requests.push(func(s *coordinator.Shard, now time.Time) {
		f(s, now, func(v T) {
			select {
			case ch <- v:
			default: // answered already
			}
		})
	})
	return func(ctx context.Context) (T, bool) {
		var zero T
		select {
		case v := <-ch:
			return v, true
		case <-r.done:
			select {
			case v := <-ch:
				return v, true
			default:
				return zero, false
			}
		case <-ctx.Done():
			return zero, false
		}
	}
}

// coordinatorFor returns the loaded coordinator of group on this broker,
// or the error that tells the client where it stands:
// COORDINATOR_NOT_AVAILABLE before __consumer_offsets exists,
// COORDINATOR_LOAD_IN_PROGRESS while this broker leads the group's
// partition but has not loaded it, NOT_COORDINATOR otherwise.
func (b *Broker) coordinatorFor(group string) (*shardRunner, int16) {
	gc := groupsOf(b)
	t := b.meta.View().Topics[coordinator.OffsetsTopic]
	if gc == nil || t == nil || len(t.Partitions) == 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	idx := coordinator.PartitionFor(group, len(t.Partitions))
	gid := t.Partitions[idx].GroupID
	gc.mu.Lock()
	r := gc.mu.shards[idx]
	gc.mu.Unlock()
	p := b.partition(gid)
	leading := p != nil && p.Group().IsLeader()
	if r != nil && r.groupID == gid && !r.stopped() && leading {
		if r.loaded.Load() {
			return r, 0
		}
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	if leading {
		return nil, kerr.CoordinatorLoadInProgress.Code
	}
	return nil, kerr.NotCoordinator.Code
}

// offsetsTopic returns __consumer_offsets, creating it if it does not
// exist yet: Kafka's offsets.topic.num.partitions partitions, replication
// factor min(3, brokers), compacted.
func (b *Broker) offsetsTopic(ctx context.Context) (*metadata.Topic, error) {
	if t := b.meta.View().Topics[coordinator.OffsetsTopic]; t != nil {
		return t, nil
	}
	gc := groupsOf(b)
	if gc == nil {
		return nil, kerr.CoordinatorNotAvailable
	}
	gc.createMu.Lock()
	defer gc.createMu.Unlock()
	if t := b.meta.View().Topics[coordinator.OffsetsTopic]; t != nil {
		return t, nil
	}
	if err := b.WaitReady(ctx); err != nil {
		return nil, err
	}
	brokers := 0
	for _, br := range b.meta.View().Brokers {
		if !br.Fenced {
			brokers++
		}
	}
	partitions := b.cfg.OffsetsTopicPartitions
	if partitions <= 0 {
		partitions = DefaultConfig().OffsetsTopicPartitions
	}
	spec := metadata.TopicSpec{
		Name:              coordinator.OffsetsTopic,
		Partitions:        partitions,
		ReplicationFactor: int16(max(min(3, brokers), 1)),
		Configs:           map[string]string{"cleanup.policy": "compact"},
	}
	t, err := b.meta.CreateTopic(ctx, spec)
	if errors.Is(err, metadata.ErrTopicExists) {
		if t := b.meta.View().Topics[coordinator.OffsetsTopic]; t != nil {
			return t, nil
		}
		return nil, kerr.CoordinatorNotAvailable
	}
	if err != nil {
		return nil, err
	}
	b.log.Info("created "+coordinator.OffsetsTopic, "partitions", spec.Partitions, "replication-factor", spec.ReplicationFactor)
	return t, nil
}

// partitionLeader returns the broker leading p, as this broker knows it
// (its own replica, else gossip), or -1.
func (b *Broker) partitionLeader(p metadata.Partition) int32 {
	if rp := b.partition(p.GroupID); rp != nil {
		if l := rp.Offsets().Leader; l != 0 {
			return int32(l)
		}
		return -1
	}
	if l, ok := b.leaders.get(p.GroupID); ok {
		return l.leader
	}
	return -1
}

// brokerAddr returns a registered, unfenced broker's host and port.
func (b *Broker) brokerAddr(id int32) (string, int32, bool) {
	if id == b.cfg.NodeID {
		return b.advHost, b.advPort, true
	}
	br := b.meta.View().Brokers[id]
	if br == nil || br.Fenced {
		return "", 0, false
	}
	host, port, err := net.SplitHostPort(br.KafkaAddr)
	if err != nil {
		return "", 0, false
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return "", 0, false
	}
	return host, int32(p), true
}

// clientHost formats a connection's remote address as Kafka shows a
// member's client host.
func (cc *clientConn) clientHost() string {
	if cc == nil || cc.conn == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(cc.conn.RemoteAddr().String())
	if err != nil {
		return "/" + cc.conn.RemoteAddr().String()
	}
	return "/" + host
}

// groupWaitCap bounds how long a group request waits for its answer
// beyond what the protocol makes it wait, so that a coordinator whose
// partition cannot commit (no quorum) still answers.
const groupWaitCap = 30 * time.Second
