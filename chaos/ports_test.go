package chaos

import (
	"net"
	"strconv"
	"testing"
)

// TestReservePortsHoldsDistinctPorts checks that reserved ports are distinct
// and stay taken, for TCP and UDP, until release, and are free after it.
func TestReservePortsHoldsDistinctPorts(t *testing.T) {
	const ip = "127.0.0.1"
	ports, release, err := reservePorts(ip, 4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d reserved twice: %v", p, ports)
		}
		seen[p] = true
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			t.Fatalf("TCP %s could be bound while reserved", addr)
		}
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			t.Fatalf("UDP %s could be bound while reserved", addr)
		}
	}
	release()
	for _, p := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("port %d not free after release: %v", p, err)
		}
		ln.Close()
	}
}
