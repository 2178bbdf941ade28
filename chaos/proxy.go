package chaos

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// AnySource matches every source address in Proxy.Block.
const AnySource = "*"

// BlockMode says what a blocked connection sees.
type BlockMode int

const (
	// Blackhole stalls blocked traffic like a network partition: bytes in
	// flight are lost, nothing more is read or forwarded, and new
	// connections are accepted but never served. The sender notices only
	// by its own timeouts. Unblock closes the stalled connections (a
	// long partition outlives TCP), so senders reconnect.
	Blackhole BlockMode = iota
	// Reset closes blocked connections at once and refuses new ones
	// (closes them on accept), like a firewall that rejects.
	Reset
)

// Proxy is a TCP proxy in front of one listener of a broker. It tells
// connections apart by their source IP, which is how the Raft transport
// of broker i (dialling from its own listen address 127.0.0.(10+i))
// identifies itself, and it can block chosen sources (partitions) and
// delay all traffic (slow networks).
//
// Lock order: Proxy.mu, then proxyConn.mu.
type Proxy struct {
	name   string
	target string
	addr   string // the listen address, kept across Down and Up
	log    *slog.Logger
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		ln      net.Listener         // nil while down
		blocked map[string]BlockMode // source IP (or AnySource) → mode
		latency time.Duration
		conns   map[*proxyConn]struct{}
		closed  bool
		// healed is closed and replaced on every Unblock, waking
		// stalled connections so they can be closed.
		healed chan struct{}
	}
}

// proxyConn is one proxied connection: the accepted side and the side
// dialled to the target.
type proxyConn struct {
	src    string // source IP
	client net.Conn
	mu     struct {
		sync.Mutex
		server  net.Conn // nil until dialled
		stalled bool     // blackholed at some point: closed at Unblock
	}
}

// NewProxy listens on listen and forwards every connection to target.
func NewProxy(name, listen, target string, log *slog.Logger) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{name: name, target: target, addr: ln.Addr().String(), log: log.With("proxy", name)}
	p.mu.ln = ln
	p.mu.blocked = map[string]BlockMode{}
	p.mu.conns = map[*proxyConn]struct{}{}
	p.mu.healed = make(chan struct{})
	p.wg.Add(1)
	go p.acceptLoop(ln)
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

// Down stops listening, so clients are refused as they would be by a
// broker that is not running (a proxy that accepted and then closed would
// look like a broker that hangs up, which clients treat differently).
// Connections already open stay open.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.ln != nil {
		p.mu.ln.Close()
		p.mu.ln = nil
	}
}

// Up listens again on the same address after Down.
func (p *Proxy) Up() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.ln != nil || p.mu.closed {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("proxy %s: listen again: %w", p.name, err)
	}
	p.mu.ln = ln
	p.wg.Add(1)
	go p.acceptLoop(ln)
	return nil
}

// Block blocks traffic from the given source IPs (AnySource for all) in
// both directions of their connections, existing and new, until Unblock.
func (p *Proxy) Block(mode BlockMode, sources ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range sources {
		p.mu.blocked[s] = mode
	}
	for c := range p.mu.conns {
		m, ok := p.blockedLocked(c.src)
		if !ok {
			continue
		}
		if m == Reset {
			c.close()
			continue
		}
		c.mu.Lock()
		c.mu.stalled = true
		c.mu.Unlock()
	}
}

// Unblock lifts every block and closes the connections that were stalled,
// so their senders reconnect through the healed proxy.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.mu.blocked)
	for c := range p.mu.conns {
		c.mu.Lock()
		stalled := c.mu.stalled
		c.mu.Unlock()
		if stalled {
			c.close()
		}
	}
	close(p.mu.healed)
	p.mu.healed = make(chan struct{})
}

// SetLatency delays every chunk of data, in each direction, by d (0
// removes the delay).
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.mu.latency = d
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.mu.closed {
		p.mu.Unlock()
		return nil
	}
	p.mu.closed = true
	var err error
	if p.mu.ln != nil {
		err = p.mu.ln.Close()
		p.mu.ln = nil
	}
	for c := range p.mu.conns {
		c.close()
	}
	close(p.mu.healed)
	p.mu.healed = make(chan struct{})
	p.mu.Unlock()
	p.wg.Wait()
	return err
}

func (p *Proxy) blockedLocked(src string) (BlockMode, bool) {
	if m, ok := p.mu.blocked[src]; ok {
		return m, true
	}
	m, ok := p.mu.blocked[AnySource]
	return m, ok
}

// state returns whether traffic from src is stalled now, the channel that
// closes at the next Unblock, and the latency.
func (p *Proxy) state(c *proxyConn) (stalled bool, healed <-chan struct{}, latency time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := p.blockedLocked(c.src); ok {
		c.mu.stalled = true
	}
	return c.mu.stalled, p.mu.healed, p.mu.latency
}

func (p *Proxy) acceptLoop(ln net.Listener) {
	defer p.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("accept failed", "err", err)
			}
			return
		}
		src, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
		c := &proxyConn{src: src, client: conn}
		p.mu.Lock()
		if p.mu.closed {
			p.mu.Unlock()
			conn.Close()
			return
		}
		if m, ok := p.blockedLocked(src); ok && m == Reset {
			p.mu.Unlock()
			conn.Close()
			continue
		}
		p.mu.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (c *proxyConn) close() {
	c.client.Close()
	c.mu.Lock()
	if c.mu.server != nil {
		c.mu.server.Close()
	}
	c.mu.Unlock()
}

// serve dials the target (unless the source is stalled from the start)
// and pumps both directions until either side closes.
func (p *Proxy) serve(c *proxyConn) {
	defer func() {
		c.close()
		p.mu.Lock()
		delete(p.mu.conns, c)
		p.mu.Unlock()
	}()
	// A connection from a blackholed source waits, unserved, until the
	// block is lifted; then it is closed like any stalled connection.
	if stalled, healed, _ := p.state(c); stalled {
		<-healed
		return
	}
	server, err := p.dialTarget(c)
	if err != nil {
		// Still nothing behind the proxy: the client sees its
		// connection close.
		return
	}
	c.mu.Lock()
	c.mu.server = server
	c.mu.Unlock()
	// Blocked (Reset) between accept and now: Block closed only the
	// client side.
	p.mu.Lock()
	_, gone := p.mu.conns[c]
	p.mu.Unlock()
	if !gone {
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pump(c, c.client, server); done <- struct{}{} }()
	go func() { p.pump(c, server, c.client); done <- struct{}{} }()
	<-done
	c.close()
	<-done
}

// dialTarget connects to the target, retrying for a few seconds: a proxy
// is up again as soon as its broker is relaunched (the broker needs its
// Raft proxy to start), and a client that connects before the broker
// listens should see a slow accept, not a connection that opens and
// closes (which clients take for a protocol or TLS mismatch).
func (p *Proxy) dialTarget(c *proxyConn) (net.Conn, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		server, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err == nil || time.Now().After(deadline) {
			return server, err
		}
		p.mu.Lock()
		_, open := p.mu.conns[c]
		closed := p.mu.closed
		p.mu.Unlock()
		if !open || closed {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type chunk struct {
	due  time.Time
	data []byte
}

// pump copies src to dst chunk by chunk, dropping a chunk read while the
// connection is stalled and then reading nothing more until Unblock, and
// delaying each chunk by the latency in force when it was read.
func (p *Proxy) pump(c *proxyConn, src io.Reader, dst io.WriteCloser) {
	delayed := make(chan chunk, 256)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for ch := range delayed {
			if d := time.Until(ch.due); d > 0 {
				time.Sleep(d)
			}
			if _, err := dst.Write(ch.data); err != nil {
				c.close()
				for range delayed {
				}
				return
			}
		}
	}()
	defer func() {
		close(delayed)
		<-writerDone
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			stalled, healed, latency := p.state(c)
			if stalled {
				// The data is lost in the partition; stall until it
				// heals, when the connection is closed.
				<-healed
				return
			}
			data := make([]byte, n)
			copy(data, buf[:n])
			delayed <- chunk{due: time.Now().Add(latency), data: data}
		}
		if err != nil {
			return
		}
	}
}
