// Package broker serves the Kafka protocol on top of Raftka's replicated
// logs. It owns the Kafka listener and connections, one file per API key
// (00_produce.go, 01_fetch.go, ...; each registers the versions it serves,
// and ApiVersions is built from that registry), and the reconciliation that
// starts and stops the partition Raft groups the metadata log assigns to
// this broker.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/raftka/raftka/cluster"
	"github.com/raftka/raftka/metadata"
	"github.com/raftka/raftka/raftlog"
	"github.com/raftka/raftka/storage"
)

// Broker is one Raftka broker.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	eng     storage.Engine
	ownsEng bool
	engOnce sync.Once
	sched   *raftlog.Scheduler
	meta    *metadata.Store
	metrics *brokerMetrics
	reg     *prometheus.Registry

	ln net.Listener
	// transport forwards the scheduler's messages to tcp (or a test's
	// in-memory network) once started.
	transport swapTransport
	tcp       *raftlog.TCPTransport
	raftAddr  string
	gossip    *cluster.Cluster
	leaders   *leaderTable
	admin     *http.Server
	adminAddr string
	advHost   string
	advPort   int32

	producerIDs producerIDAllocator
	// registered is set, and registeredCh closed, once the metadata log
	// holds this broker's current addresses.
	registered   atomic.Bool
	registeredCh chan struct{}

	mu struct {
		sync.RWMutex
		// partitions are the running replicas, by Raft group id.
		partitions map[uint64]*raftlog.Partition
		// reconciled is closed and replaced after every reconcile pass.
		reconciled chan struct{}
	}

	// ctx stops the scheduler and background loops; connCtx, which ends
	// first on Close, stops connections.
	ctx        context.Context
	cancel     context.CancelFunc
	connCtx    context.Context
	connCancel context.CancelFunc
	wg         sync.WaitGroup
	conns      sync.WaitGroup
	connsMu    sync.Mutex
	live       map[net.Conn]struct{} // guarded by connsMu
	draining   bool                  // guarded by connsMu
	// drainCh is closed when Close begins: long polls answer at once.
	drainCh chan struct{}
	// done is closed when Close has finished; err says why the broker
	// stopped if it stopped itself.
	done    chan struct{}
	errMu   sync.Mutex
	stopErr error
	closeMu sync.Mutex
	closed  bool
}

// New opens the broker's storage and metadata but serves nothing yet; call
// Start.
func New(cfg Config) (*Broker, error) {
	cfg.applyDerived()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	b := &Broker{cfg: cfg, log: cfg.Logger.With("broker", cfg.NodeID), reg: prometheus.NewRegistry()}
	b.mu.partitions = make(map[uint64]*raftlog.Partition)
	b.mu.reconciled = make(chan struct{})
	b.registeredCh = make(chan struct{})
	b.drainCh = make(chan struct{})
	b.done = make(chan struct{})
	b.metrics = newBrokerMetrics()
	b.eng = cfg.Engine
	if b.eng == nil {
		eng, err := openEngine(cfg, b.metrics.observeCommit)
		if err != nil {
			return nil, err
		}
		b.eng, b.ownsEng = eng, true
	}
	if err := checkLayout(b.eng); err != nil {
		b.closeEngine()
		return nil, err
	}
	b.leaders = newLeaderTable()
	sched, err := raftlog.NewScheduler(cfg.Raft, b.eng, &b.transport)
	if err != nil {
		b.closeEngine()
		return nil, err
	}
	b.sched = sched
	meta, err := metadata.Open(sched, cfg.MetadataVoters, b.log)
	if err != nil {
		b.closeEngine()
		return nil, err
	}
	b.meta = meta
	b.producerIDs.meta = meta
	b.producerIDs.broker = cfg.NodeID
	b.reg.MustRegister(b.metrics.collectors()...)
	b.reg.MustRegister(sched.Metrics().Collectors()...)
	b.reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return b, nil
}

// openEngine opens the engine cfg asks for; a Pebble engine reports its
// commits to onCommit.
func openEngine(cfg Config, onCommit func(storage.CommitStats)) (storage.Engine, error) {
	switch cfg.Storage {
	case StorageMemory:
		return storage.NewMemory(), nil
	default:
		dir := filepath.Join(cfg.DataDir, "engine")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		o := pebbleOptionsFor(cfg, dir)
		o.OnCommit = onCommit
		return storage.OpenPebble(o)
	}
}

// pebbleOptionsFor returns the engine options of a broker with cfg whose
// engine lives in dir.
func pebbleOptionsFor(cfg Config, dir string) storage.PebbleOptions {
	return storage.PebbleOptions{Dir: dir, FS: vfs.Default, Logger: cfg.Logger,
		MemTableSize: memTableSizeFor(cfg.NodeID), CacheBlobPages: cfg.CacheLogPages}
}

// memTableSizeFor staggers Pebble's memtable size by broker id: 3/4, 1 or
// 5/4 of the default (12, 16 or 20 MiB) for ids ≡ 0, 1, 2 (mod 3). The
// replicas of a partition receive the same bytes at the same rate, so with
// one memtable size they fill and flush their memtables together, and a
// flush costs about a core while it lasts: a commit then waits on a quorum
// that is flushing at once, and brokers sharing a machine (tests, demos,
// benchmarks) stall each other. Different sizes keep the flushes apart.
// Measured (with the 64 MiB default of the time, so 48/64/80 MiB) with
// `raftka bench produce --in-process 3 --replicas 3 --rate 44000
// --duration 20s` in two series of three interleaved runs each on a noisy
// 2-core machine: p90 1,780/128/50 → 59/31/31 ms and 70/37/35 → 29/17/16
// ms; p99 2,585/730/257 → 350/105/114 ms and 162/156/156 → 385/85/63 ms.
func memTableSizeFor(id int32) uint64 {
	return storage.DefaultPebbleMemTableSize / 4 * uint64(3+((id%3)+3)%3)
}

// checkLayout refuses an engine written with an unknown key layout and
// stamps a new one.
func checkLayout(eng storage.Engine) error {
	v, err := eng.Get(raftlog.LayoutVersionKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		wb := eng.NewBatch()
		defer wb.Close()
		if err := wb.Set(raftlog.LayoutVersionKey, []byte(strconv.Itoa(raftlog.LayoutVersion))); err != nil {
			return err
		}
		return wb.Commit(true)
	case err != nil:
		return err
	case string(v) != strconv.Itoa(raftlog.LayoutVersion):
		return fmt.Errorf("data was written with key layout %q; this raftka reads layout %d: use a matching raftka version", v, raftlog.LayoutVersion)
	}
	return nil
}

// closeEngine closes the engine if the broker opened it; it is safe to
// call more than once.
func (b *Broker) closeEngine() {
	b.engOnce.Do(func() {
		if b.ownsEng && b.eng != nil {
			if err := b.eng.Close(); err != nil {
				b.log.Error("closing storage", "err", err)
			}
		}
	})
}

// Start binds the listeners, starts the Raft scheduler, registers the
// broker in the metadata log and begins serving.
func (b *Broker) Start() error {
	ln, err := net.Listen("tcp", b.cfg.KafkaAddr)
	if err != nil {
		b.closeEngine()
		return fmt.Errorf("kafka listener: %w (is another broker using %s? set --kafka-addr)", err, b.cfg.KafkaAddr)
	}
	b.ln = ln
	adv := b.cfg.AdvertiseKafkaAddr
	if adv == "" {
		adv = ln.Addr().String()
	}
	host, port, _ := net.SplitHostPort(adv)
	p, _ := strconv.Atoi(port)
	b.advHost, b.advPort = host, int32(p)

	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.connCtx, b.connCancel = context.WithCancel(context.Background())
	b.live = make(map[net.Conn]struct{})
	if b.cfg.AdminAddr != "" {
		if err := b.startAdmin(); err != nil {
			ln.Close()
			b.cancel()
			b.closeEngine()
			return err
		}
	}
	if err := b.startCluster(); err != nil {
		ln.Close()
		b.cancel()
		if b.admin != nil {
			b.admin.Close()
		}
		b.wg.Wait()
		b.closeEngine()
		return err
	}
	b.startGroups()
	b.wg.Add(2)
	b.conns.Add(1) // the accept loop counts as a connection: it must end first
	go func() {
		defer b.wg.Done()
		if err := b.sched.Run(b.ctx); err != nil {
			b.log.Error("raft scheduler failed; the broker stops serving", "err", err)
			b.errMu.Lock()
			b.stopErr = fmt.Errorf("raft scheduler: %w", err)
			b.errMu.Unlock()
			go b.Close()
		}
	}()
	go func() {
		defer b.wg.Done()
		b.reconcileLoop()
	}()
	go func() {
		defer b.conns.Done()
		b.acceptLoop()
	}()
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.register()
	}()
	b.log.Info("broker started", "kafka", ln.Addr().String(), "advertised", adv, "admin", b.cfg.AdminAddr, "storage", b.cfg.Storage)
	return nil
}

// register records this broker in the metadata log once the metadata group
// has a leader, retrying until it succeeds or the broker stops.
func (b *Broker) register() {
	want := metadata.Broker{ID: b.cfg.NodeID, KafkaAddr: net.JoinHostPort(b.advHost, strconv.Itoa(int(b.advPort))), Rack: b.cfg.Rack}
	for {
		v := b.meta.View()
		if cur, ok := v.Brokers[want.ID]; ok && *cur == want {
			b.registered.Store(true)
			close(b.registeredCh)
			return
		}
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := b.meta.RegisterBroker(ctx, want)
		cancel()
		if err == nil {
			b.registered.Store(true)
			close(b.registeredCh)
			return
		}
		select {
		case <-b.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Broker) acceptLoop() {
	for {
		conn, err := b.ln.Accept()
		if err != nil {
			if b.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				b.log.Error("accept failed", "err", err)
			}
			return
		}
		b.connsMu.Lock()
		if b.draining {
			b.connsMu.Unlock()
			conn.Close()
			return
		}
		b.live[conn] = struct{}{}
		b.conns.Add(1)
		b.connsMu.Unlock()
		go func() {
			defer b.conns.Done()
			b.serveConn(b.connCtx, conn)
			b.connsMu.Lock()
			delete(b.live, conn)
			b.connsMu.Unlock()
		}()
	}
}

// Done is closed when the broker has stopped, by Close or by itself after
// a fatal error (see Err).
func (b *Broker) Done() <-chan struct{} { return b.done }

// Err returns why the broker stopped itself, or nil.
func (b *Broker) Err() error {
	b.errMu.Lock()
	defer b.errMu.Unlock()
	return b.stopErr
}

// WaitReady waits until the broker is registered in the metadata log and
// serving, or ctx ends.
func (b *Broker) WaitReady(ctx context.Context) error {
	select {
	case <-b.registeredCh:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("broker %d not ready: %w (is a majority of the metadata voters up?)", b.cfg.NodeID, ctx.Err())
	}
}

// Addr returns the address the Kafka listener is bound to.
func (b *Broker) Addr() string { return b.ln.Addr().String() }

// NodeID returns the broker id.
func (b *Broker) NodeID() int32 { return b.cfg.NodeID }

// Metadata returns the broker's metadata store.
func (b *Broker) Metadata() *metadata.Store { return b.meta }

// Registry returns the broker's Prometheus registry.
func (b *Broker) Registry() *prometheus.Registry { return b.reg }

// Ready reports whether the broker is registered and serving.
func (b *Broker) Ready() bool {
	return b.registered.Load() && b.ctx.Err() == nil
}

// Close stops serving: it stops accepting, ends connections after their
// in-flight requests (up to ShutdownTimeout), stops the Raft groups and
// closes storage. Everything acknowledged before Close is durable.
func (b *Broker) Close() error {
	b.closeMu.Lock()
	defer b.closeMu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	defer close(b.done)
	close(b.drainCh)
	if b.ln != nil {
		b.ln.Close()
	}
	if b.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = b.admin.Shutdown(ctx)
		cancel()
	}
	// Stop reading requests, let in-flight ones finish while Raft still
	// runs, then stop Raft and close storage.
	b.connsMu.Lock()
	b.draining = true
	for c := range b.live {
		_ = c.SetReadDeadline(time.Now())
	}
	b.connsMu.Unlock()
	done := make(chan struct{})
	go func() { b.conns.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.cfg.ShutdownTimeout):
		b.log.Warn("in-flight requests did not finish in time; closing their connections")
		if b.connCancel != nil {
			b.connCancel()
		}
		b.connsMu.Lock()
		for c := range b.live {
			c.Close()
		}
		b.connsMu.Unlock()
		<-done
	}
	if b.connCancel != nil {
		b.connCancel()
	}
	if b.cancel != nil {
		b.cancel()
	}
	b.wg.Wait()
	b.stopCluster()
	b.closeEngine()
	b.log.Info("broker stopped")
	return nil
}

// partition returns the running replica of group id, or nil.
func (b *Broker) partition(groupID uint64) *raftlog.Partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.mu.partitions[groupID]
}

// reconcileLoop starts and stops partition replicas to match the metadata.
func (b *Broker) reconcileLoop() {
	for {
		v := b.meta.View()
		b.reconcile(v)
		select {
		case <-b.ctx.Done():
			return
		case <-v.Changed:
		}
	}
}

// reconcile makes the running replicas those v assigns to this broker.
func (b *Broker) reconcile(v *metadata.View) {
	want := make(map[uint64]metadata.Partition)
	for _, t := range v.Topics {
		for _, p := range t.Partitions {
			if slices.Contains(p.AllReplicas(), b.cfg.NodeID) {
				want[p.GroupID] = p
			}
		}
	}
	b.mu.RLock()
	var stale []uint64
	for id := range b.mu.partitions {
		if _, ok := want[id]; !ok {
			stale = append(stale, id)
		}
	}
	b.mu.RUnlock()
	for _, id := range stale {
		b.mu.Lock()
		delete(b.mu.partitions, id)
		b.mu.Unlock()
		if err := b.sched.RemoveGroup(id, true); err != nil {
			b.log.Error("removing partition replica", "group", id, "err", err)
		}
	}
	for id, mp := range want {
		if b.partition(id) != nil {
			continue
		}
		// Every replica starts from the configuration the group was
		// created with; one added by a reassignment then replays the
		// configuration changes from the leader's log.
		boot := mp.Bootstrap()
		voters := make([]uint64, len(boot))
		for i, r := range boot {
			voters[i] = uint64(r)
		}
		if err := b.sched.Bootstrap(id, voters, nil); err != nil {
			b.log.Error("bootstrapping partition replica", "group", id, "err", err)
			continue
		}
		p, err := raftlog.OpenPartition(b.sched, id, b.log.With("group", id))
		if err != nil {
			b.log.Error("opening partition replica", "group", id, "err", err)
			continue
		}
		// A new group's preferred replica stands for election at once, so
		// that leadership starts out where placement spread it.
		if st := p.Group().Status(); len(voters) > 1 && voters[0] == uint64(b.cfg.NodeID) && st.Term == 0 && mp.Target == nil {
			_ = p.Group().Campaign()
		}
		b.mu.Lock()
		b.mu.partitions[id] = p
		b.mu.Unlock()
	}
	b.mu.Lock()
	close(b.mu.reconciled)
	b.mu.reconciled = make(chan struct{})
	b.mu.Unlock()
}

// waitPartitionsLed waits until every partition of topic has a known
// leader — from Raft for replicas here, from gossip for the others — or ctx
// ends. It lets CreateTopics answer once the topic is usable, so a client
// that produces right away does not see errors.
func (b *Broker) waitPartitionsLed(ctx context.Context, t *metadata.Topic) {
	for {
		b.mu.RLock()
		reconciled := b.mu.reconciled
		ready := true
		var changed []<-chan struct{}
		for _, p := range t.Partitions {
			if !slices.Contains(p.AllReplicas(), b.cfg.NodeID) {
				// Hosted elsewhere: its leader announces itself by gossip.
				if _, ok := b.leaders.get(p.GroupID); !ok {
					ready = false
				}
				continue
			}
			rp := b.mu.partitions[p.GroupID]
			if rp == nil {
				ready = false
				break
			}
			if o := rp.Offsets(); o.Leader == 0 {
				ready = false
				changed = append(changed, o.Changed)
			}
		}
		b.mu.RUnlock()
		if ready {
			return
		}
		var wait <-chan struct{} = reconciled
		if len(changed) > 0 {
			wait = changed[0]
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// QuiescedGroups returns how many of this broker's Raft groups are
// quiesced (idle, not ticking).
func (b *Broker) QuiescedGroups() int { return b.sched.QuiescedGroups() }
