package raftlog

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Raft transport wire format, version 1. A connection starts with a hello
// frame naming the sender; then each frame carries a batch of messages,
// possibly for many groups:
//
//	frame   = length u32 | version u8 (1) | kind u8 | body
//	hello   = kind 1, body: node id u64
//	batch   = kind 2, body: count u32, then count × message
//	message = group u64 | flags u8 | length u32 | raftpb.Message (protobuf)
//
// Flag 1 marks a quiesce heartbeat (see Group quiescence).
const (
	wireVersion    = 1
	frameHello     = 1
	frameBatch     = 2
	flagQuiesce    = 1
	maxWireFrame   = 256 << 20
	wireFrameHdr   = 6
	wireMessageHdr = 13
)

// envelope is one message on its way to a peer.
type envelope struct {
	group   uint64
	quiesce bool
	msg     *pb.Message
}

// Inbound receives messages from peers. The scheduler implements it.
type Inbound interface {
	// Receive hands a message for group from a peer. It must not block
	// for long: it runs on the connection's read goroutine.
	Receive(group uint64, m *pb.Message, quiesce bool)
	// PeerUnreachable reports that messages to node were dropped.
	PeerUnreachable(node uint64)
}

// Resolver returns the Raft address of a node, if known.
type Resolver func(node uint64) (addr string, ok bool)

// TCPTransportConfig configures a TCPTransport.
type TCPTransportConfig struct {
	// NodeID is this broker's id.
	NodeID uint64
	// ListenAddr is where peers connect (host:port; port 0 picks one).
	ListenAddr string
	// Resolve finds a peer's address.
	Resolve Resolver
	// QueueBytes bounds what may wait for one peer; beyond it messages are
	// dropped (Raft resends) and the peer is reported unreachable.
	QueueBytes int
	// DialTimeout bounds one connection attempt.
	DialTimeout time.Duration
	// MaxBackoff caps the delay between reconnection attempts.
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// TCPTransport carries Raft messages between brokers over TCP: one
// outgoing connection per peer, written by one goroutine that sends
// everything queued for the peer in one write (so messages of many groups
// share a write), with a bounded queue and reconnection with backoff.
type TCPTransport struct {
	cfg TCPTransportConfig
	log *slog.Logger
	ln  net.Listener

	mu struct {
		sync.Mutex
		peers   map[uint64]*peer
		inbound Inbound
		conns   map[net.Conn]struct{}
		closed  bool
	}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ Transport = (*TCPTransport)(nil)

// NewTCPTransport listens on cfg.ListenAddr. Call SetInbound before peers
// send anything that matters; messages arriving earlier are dropped.
func NewTCPTransport(cfg TCPTransportConfig) (*TCPTransport, error) {
	if cfg.NodeID == 0 || cfg.Resolve == nil {
		return nil, errors.New("raftlog: transport needs a node id and a resolver")
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 64 << 20
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("raft listener: %w", err)
	}
	t := &TCPTransport{cfg: cfg, log: cfg.Logger, ln: ln}
	t.mu.peers = make(map[uint64]*peer)
	t.mu.conns = make(map[net.Conn]struct{})
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Addr returns the bound listen address.
func (t *TCPTransport) Addr() string { return t.ln.Addr().String() }

// SetInbound sets where received messages go.
func (t *TCPTransport) SetInbound(in Inbound) {
	t.mu.Lock()
	t.mu.inbound = in
	t.mu.Unlock()
}

// Send implements Transport. It never blocks.
func (t *TCPTransport) Send(group uint64, msgs []*pb.Message) {
	for _, m := range msgs {
		t.send(envelope{group: group, msg: m})
	}
}

// SendQuiesce implements Transport.
func (t *TCPTransport) SendQuiesce(group uint64, m *pb.Message) {
	t.send(envelope{group: group, msg: m, quiesce: true})
}

func (t *TCPTransport) send(e envelope) {
	to := e.msg.GetTo()
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return
	}
	p := t.mu.peers[to]
	if p == nil {
		p = newPeer(t, to)
		t.mu.peers[to] = p
		t.wg.Add(1)
		go p.run()
	}
	in := t.mu.inbound
	t.mu.Unlock()
	if !p.enqueue(e) && in != nil {
		in.PeerUnreachable(to)
	}
}

// Close stops the transport and its connections.
func (t *TCPTransport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	for c := range t.mu.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.cancel()
	err := t.ln.Close()
	t.wg.Wait()
	return err
}

func (t *TCPTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.mu.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.mu.conns[c] = struct{}{}
		t.mu.Unlock()
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			err := t.readConn(c)
			if err != nil && !errors.Is(err, io.EOF) && t.ctx.Err() == nil {
				t.log.Debug("raft connection closed", "remote", c.RemoteAddr().String(), "err", err)
			}
			t.mu.Lock()
			delete(t.mu.conns, c)
			t.mu.Unlock()
			c.Close()
		}()
	}
}

// readConn reads frames from one peer connection.
func (t *TCPTransport) readConn(c net.Conn) error {
	r := bufio.NewReaderSize(c, 256<<10)
	var from uint64
	hdr := make([]byte, wireFrameHdr)
	var body []byte
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr)
		if hdr[4] != wireVersion || n < 2 || n > maxWireFrame {
			return fmt.Errorf("bad raft frame (version %d, length %d)", hdr[4], n)
		}
		if cap(body) < int(n-2) {
			body = make([]byte, n-2)
		}
		body = body[:n-2]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch hdr[5] {
		case frameHello:
			if len(body) != 8 {
				return errors.New("bad hello frame")
			}
			from = binary.BigEndian.Uint64(body)
		case frameBatch:
			if from == 0 {
				return errors.New("batch before hello")
			}
			if err := t.deliver(body); err != nil {
				return fmt.Errorf("from node %d: %w", from, err)
			}
		default:
			return fmt.Errorf("unknown raft frame kind %d", hdr[5])
		}
	}
}

// deliver decodes a batch and hands its messages to the inbound side.
func (t *TCPTransport) deliver(body []byte) error {
	t.mu.Lock()
	in := t.mu.inbound
	t.mu.Unlock()
	if len(body) < 4 {
		return errors.New("short batch")
	}
	count := binary.BigEndian.Uint32(body)
	body = body[4:]
	for range count {
		if len(body) < wireMessageHdr {
			return errors.New("short message header")
		}
		group := binary.BigEndian.Uint64(body)
		flags := body[8]
		n := binary.BigEndian.Uint32(body[9:])
		body = body[wireMessageHdr:]
		if uint32(len(body)) < n {
			return errors.New("short message")
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(body[:n], m); err != nil {
			return fmt.Errorf("decode message: %w", err)
		}
		body = body[n:]
		if in != nil {
			in.Receive(group, m, flags&flagQuiesce != 0)
		}
	}
	return nil
}

// peer is the outgoing side to one node.
type peer struct {
	t  *TCPTransport
	id uint64

	mu     sync.Mutex
	queue  []envelope
	queued int // bytes in queue; Invariant: queued <= t.cfg.QueueBytes
	wake   chan struct{}
}

func newPeer(t *TCPTransport, id uint64) *peer {
	return &peer{t: t, id: id, wake: make(chan struct{}, 1)}
}

// enqueue adds e unless the queue is full; it reports whether it did.
func (p *peer) enqueue(e envelope) bool {
	size := proto.Size(e.msg) + wireMessageHdr
	p.mu.Lock()
	if p.queued+size > p.t.cfg.QueueBytes && len(p.queue) > 0 {
		p.mu.Unlock()
		return false
	}
	p.queue = append(p.queue, e)
	p.queued += size
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

func (p *peer) take() []envelope {
	p.mu.Lock()
	defer p.mu.Unlock()
	q := p.queue
	p.queue = nil
	p.queued = 0
	return q
}

// run keeps a connection to the peer and writes what is queued.
func (p *peer) run() {
	defer p.t.wg.Done()
	backoff := 10 * time.Millisecond
	var conn net.Conn
	var w *bufio.Writer
	var buf []byte
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	for {
		select {
		case <-p.t.ctx.Done():
			return
		case <-p.wake:
		}
		batch := p.take()
		if len(batch) == 0 {
			continue
		}
		if conn == nil {
			var err error
			conn, err = p.dial()
			if err != nil {
				p.t.log.Debug("raft peer unreachable", "peer", p.id, "err", err)
				p.unreachable()
				select {
				case <-p.t.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(backoff*2, p.t.cfg.MaxBackoff)
				continue
			}
			backoff = 10 * time.Millisecond
			w = bufio.NewWriterSize(conn, 256<<10)
		}
		var err error
		buf, err = encodeBatch(buf[:0], batch)
		if err == nil {
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err = w.Write(buf); err == nil {
				err = w.Flush()
			}
		}
		if err != nil {
			p.t.log.Debug("raft peer write failed", "peer", p.id, "err", err)
			conn.Close()
			conn = nil
			p.unreachable()
		}
		if cap(buf) > 8<<20 {
			buf = nil
		}
	}
}

func (p *peer) unreachable() {
	p.t.mu.Lock()
	in := p.t.mu.inbound
	p.t.mu.Unlock()
	if in != nil {
		in.PeerUnreachable(p.id)
	}
}

func (p *peer) dial() (net.Conn, error) {
	addr, ok := p.t.cfg.Resolve(p.id)
	if !ok {
		return nil, fmt.Errorf("no address for node %d", p.id)
	}
	d := net.Dialer{Timeout: p.t.cfg.DialTimeout}
	// Dial from the address we listen on, when it is a specific one, so
	// that a peer (or a fault-injecting proxy) can tell who connects.
	if host, _, err := net.SplitHostPort(p.t.ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			d.LocalAddr = &net.TCPAddr{IP: ip}
		}
	}
	conn, err := d.DialContext(p.t.ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	hello := make([]byte, 0, wireFrameHdr+8)
	hello = binary.BigEndian.AppendUint32(hello, 10)
	hello = append(hello, wireVersion, frameHello)
	hello = binary.BigEndian.AppendUint64(hello, p.t.cfg.NodeID)
	if _, err := conn.Write(hello); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// encodeBatch appends one batch frame holding batch to buf.
func encodeBatch(buf []byte, batch []envelope) ([]byte, error) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, wireVersion, frameBatch)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(batch)))
	opts := proto.MarshalOptions{}
	for _, e := range batch {
		buf = binary.BigEndian.AppendUint64(buf, e.group)
		var flags byte
		if e.quiesce {
			flags |= flagQuiesce
		}
		buf = append(buf, flags, 0, 0, 0, 0)
		at := len(buf)
		var err error
		buf, err = opts.MarshalAppend(buf, e.msg)
		if err != nil {
			return buf[:start], err
		}
		binary.BigEndian.PutUint32(buf[at-4:], uint32(len(buf)-at))
	}
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf, nil
}
