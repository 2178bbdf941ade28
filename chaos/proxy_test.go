package chaos

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// echoServer echoes lines back until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

func newTestProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	p, err := NewProxy("test", "127.0.0.1:0", target, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// dialFrom connects to addr from source IP src (any 127/8 address works
// on Linux).
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and reads it back within d; ok is false on a
// timeout, err set if the connection failed.
func roundTrip(c net.Conn, line string, d time.Duration) (ok bool, err error) {
	c.SetDeadline(time.Now().Add(d))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return false, err
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		if ne, isNet := err.(net.Error); isNet && ne.Timeout() {
			return false, nil
		}
		return false, err
	}
	if strings.TrimSpace(got) != line {
		return false, errors.New("echo mismatch: " + got)
	}
	return true, nil
}

func requireLoopbackAliases(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.42:0")
	if err != nil {
		t.Skipf("no 127.0.0.42 on this machine: %v", err)
	}
	ln.Close()
}

// TestProxyBlackholeBySource partitions one source address: its traffic
// stalls while another source's passes; after Unblock the stalled
// connection is closed and a new one works.
func TestProxyBlackholeBySource(t *testing.T) {
	requireLoopbackAliases(t)
	p := newTestProxy(t, echoServer(t))
	a := dialFrom(t, "127.0.0.41", p.Addr())
	b := dialFrom(t, "127.0.0.42", p.Addr())
	for _, c := range []net.Conn{a, b} {
		if ok, err := roundTrip(c, "hello", 2*time.Second); !ok || err != nil {
			t.Fatalf("before the partition: ok %v err %v", ok, err)
		}
	}
	p.Block(Blackhole, "127.0.0.41")
	if ok, err := roundTrip(a, "lost", 300*time.Millisecond); ok || err != nil {
		t.Fatalf("blocked source: ok %v err %v, want a stall", ok, err)
	}
	if ok, err := roundTrip(b, "still", 2*time.Second); !ok || err != nil {
		t.Fatalf("other source during the partition: ok %v err %v", ok, err)
	}
	// A new connection from the blocked source is accepted but stalls.
	a2 := dialFrom(t, "127.0.0.41", p.Addr())
	if ok, err := roundTrip(a2, "new", 300*time.Millisecond); ok || err != nil {
		t.Fatalf("new connection from blocked source: ok %v err %v, want a stall", ok, err)
	}
	p.Unblock()
	for _, c := range []net.Conn{a, a2} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Read(make([]byte, 16)); err == nil || os.IsTimeout(err) {
			t.Fatalf("stalled connection after Unblock: read err %v, want closed", err)
		}
	}
	a3 := dialFrom(t, "127.0.0.41", p.Addr())
	if ok, err := roundTrip(a3, "healed", 2*time.Second); !ok || err != nil {
		t.Fatalf("after Unblock: ok %v err %v", ok, err)
	}
	if ok, err := roundTrip(b, "unaffected", 2*time.Second); !ok || err != nil {
		t.Fatalf("unblocked connection after Unblock: ok %v err %v", ok, err)
	}
}

func TestProxyResetAnySource(t *testing.T) {
	p := newTestProxy(t, echoServer(t))
	c := dialFrom(t, "127.0.0.1", p.Addr())
	if ok, err := roundTrip(c, "hello", 2*time.Second); !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	p.Block(Reset, AnySource)
	if _, err := roundTrip(c, "x", 2*time.Second); err == nil {
		t.Fatal("connection survived a Reset block")
	}
	c2 := dialFrom(t, "127.0.0.1", p.Addr())
	if _, err := roundTrip(c2, "x", 2*time.Second); err == nil {
		t.Fatal("new connection served during a Reset block")
	}
	p.Unblock()
	c3 := dialFrom(t, "127.0.0.1", p.Addr())
	if ok, err := roundTrip(c3, "back", 2*time.Second); !ok || err != nil {
		t.Fatalf("after Unblock: ok %v err %v", ok, err)
	}
}

func TestProxyLatency(t *testing.T) {
	p := newTestProxy(t, echoServer(t))
	c := dialFrom(t, "127.0.0.1", p.Addr())
	p.SetLatency(100 * time.Millisecond)
	began := time.Now()
	if ok, err := roundTrip(c, "slow", 5*time.Second); !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	// 100 ms each way.
	if d := time.Since(began); d < 200*time.Millisecond {
		t.Fatalf("round trip took %v, want >= 200ms", d)
	}
	p.SetLatency(0)
	began = time.Now()
	if ok, err := roundTrip(c, "fast", 5*time.Second); !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
	if d := time.Since(began); d > 150*time.Millisecond {
		t.Logf("round trip after removing latency took %v", d)
	}
}

// TestProxyDownRefuses: a proxy whose broker is down refuses connections,
// as the broker's own port would, and serves again after Up.
func TestProxyDownRefuses(t *testing.T) {
	p := newTestProxy(t, echoServer(t))
	p.Down()
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		c.Close()
		t.Fatal("dial succeeded while down")
	}
	if err := p.Up(); err != nil {
		t.Fatal(err)
	}
	c := dialFrom(t, "127.0.0.1", p.Addr())
	if ok, err := roundTrip(c, "up", 2*time.Second); !ok || err != nil {
		t.Fatalf("ok %v err %v", ok, err)
	}
}
