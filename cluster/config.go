package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// Presets of gossip timing, for Config.Preset.
const (
	// PresetLAN is memberlist's DefaultLANConfig: a failure is declared in
	// a few seconds, tolerant of GC pauses and a busy network.
	PresetLAN = "lan"
	// PresetLocal is tuned for clusters on one machine (loopback, tests,
	// `raftka demo`): failures are declared in about a second.
	PresetLocal = "local"
)

// Default buffer sizes of the Events and Messages channels.
const (
	DefaultEventBuffer   = 64
	DefaultMessageBuffer = 256
)

// Config configures a Cluster. Start from DefaultConfig (production) or
// LocalConfig (loopback, tests), set Self, and pass it to Start, which
// validates it.
type Config struct {
	// Self describes this broker. ID and KafkaAddr are required; GossipAddr
	// and Alive are ignored.
	Self Member `yaml:"-"`
	// BindAddr is the IP:port gossip listens on (UDP and TCP). Port 0 picks a
	// free port; Cluster.GossipAddr returns the bound one.
	BindAddr string `yaml:"bind-addr"`
	// AdvertiseAddr is the IP:port peers are told to gossip to; empty means
	// the bound address. Set it when BindAddr is 0.0.0.0 or behind NAT.
	AdvertiseAddr string `yaml:"advertise-addr"`
	// Join lists seed host:port gossip addresses. Start returns at once and
	// joins in the background, retrying with backoff until one seed answers
	// or the Cluster is closed. Addresses equal to this node's own are
	// skipped, so every broker may be given the same list.
	Join []string `yaml:"join"`
	// Preset selects gossip timing: PresetLAN or PresetLocal.
	Preset string `yaml:"preset"`
	// SecretKey, if set, encrypts and authenticates gossip (AES-GCM); it must
	// be 16, 24 or 32 bytes and the same on every broker.
	SecretKey []byte `yaml:"-"`

	// EventBuffer is the capacity of the Events channel.
	EventBuffer int `yaml:"-"`
	// MessageBuffer is the capacity of the Messages channel.
	MessageBuffer int `yaml:"-"`

	// LocalState, if set, returns the application state this node sends on
	// every push/pull (each join, and every push/pull interval). It is called
	// from memberlist's goroutines and must be cheap and non-blocking. Set it
	// here rather than with SetLocalState to be sure the first join carries it.
	LocalState func() []byte `yaml:"-"`
	// OnRemoteState, if set, receives the LocalState of a peer after each
	// push/pull; the slice is the callee's. It is called from memberlist's
	// goroutines, possibly concurrently, and must be cheap and non-blocking.
	OnRemoteState func([]byte) `yaml:"-"`

	// Logger receives the cluster's logs, with memberlist's own output at
	// debug level; nil means slog.Default().
	Logger *slog.Logger `yaml:"-"`
}

// DefaultConfig returns the production defaults: gossip on 127.0.0.1:9094
// (next to Kafka's 9092 and 9093) with LAN timing.
func DefaultConfig() Config {
	return Config{
		BindAddr:      "127.0.0.1:9094",
		Preset:        PresetLAN,
		EventBuffer:   DefaultEventBuffer,
		MessageBuffer: DefaultMessageBuffer,
	}
}

// LocalConfig returns a configuration for clusters on one machine: an
// ephemeral loopback port and fast failure detection.
func LocalConfig() Config {
	c := DefaultConfig()
	c.BindAddr = "127.0.0.1:0"
	c.Preset = PresetLocal
	return c
}

// Validate returns every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	for _, err := range validateSelf(c.Self) {
		errs = append(errs, fmt.Errorf("self: %w", err))
	}
	if _, _, err := splitIPPort(c.BindAddr, true); err != nil {
		errs = append(errs, fmt.Errorf("bind-addr: %w", err))
	}
	if c.AdvertiseAddr != "" {
		if ip, _, err := splitIPPort(c.AdvertiseAddr, false); err != nil {
			errs = append(errs, fmt.Errorf("advertise-addr: %w", err))
		} else if ip.IsUnspecified() {
			errs = append(errs, fmt.Errorf("advertise-addr %q: peers cannot gossip to an unspecified address", c.AdvertiseAddr))
		}
	}
	for _, seed := range c.Join {
		if err := checkDialAddr(seed); err != nil {
			errs = append(errs, fmt.Errorf("join: %w", err))
		}
	}
	switch c.Preset {
	case PresetLAN, PresetLocal:
	default:
		errs = append(errs, fmt.Errorf("preset must be %q or %q, got %q", PresetLAN, PresetLocal, c.Preset))
	}
	switch len(c.SecretKey) {
	case 0, 16, 24, 32:
	default:
		errs = append(errs, fmt.Errorf("secret-key must be 16, 24 or 32 bytes, got %d", len(c.SecretKey)))
	}
	if c.EventBuffer < 1 {
		errs = append(errs, fmt.Errorf("event-buffer must be >= 1, got %d", c.EventBuffer))
	}
	if c.MessageBuffer < 1 {
		errs = append(errs, fmt.Errorf("message-buffer must be >= 1, got %d", c.MessageBuffer))
	}
	return errors.Join(errs...)
}

// validateSelf returns the problems with a broker's description of itself.
func validateSelf(m Member) []error {
	var errs []error
	if m.ID <= 0 {
		errs = append(errs, fmt.Errorf("id must be > 0, got %d", m.ID))
	}
	if err := checkDialAddr(m.KafkaAddr); err != nil {
		errs = append(errs, fmt.Errorf("kafka-addr: %w", err))
	}
	if m.RaftAddr != "" {
		if err := checkDialAddr(m.RaftAddr); err != nil {
			errs = append(errs, fmt.Errorf("raft-addr: %w", err))
		}
	}
	if m.AdminAddr != "" {
		if err := checkDialAddr(m.AdminAddr); err != nil {
			errs = append(errs, fmt.Errorf("admin-addr: %w", err))
		}
	}
	if _, err := encodeMeta(m); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkDialAddr checks that addr is a host:port a peer can dial: a non-empty
// host that is not an unspecified IP, and a port in 1..65535.
func checkDialAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: %v", addr, err)
	}
	if host == "" {
		return fmt.Errorf("%q: empty host; peers need an address to dial", addr)
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q: unspecified host; peers need an address to dial", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("%q: port must be 1..65535", addr)
	}
	return nil
}

// splitIPPort parses an IP:port as memberlist wants it (an IP literal, not a
// hostname). Port 0 is accepted only if allowZero.
func splitIPPort(addr string, allowZero bool) (net.IP, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, fmt.Errorf("%q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return nil, 0, fmt.Errorf("%q: host must be an IP address", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || (p == 0 && !allowZero) {
		lo := 1
		if allowZero {
			lo = 0
		}
		return nil, 0, fmt.Errorf("%q: port must be %d..65535", addr, lo)
	}
	return ip, int(p), nil
}

// memberlistConfig returns memberlist's configuration for c, without
// delegates or logger. c must be valid.
func (c Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	switch c.Preset {
	case PresetLocal:
		// DefaultLocalConfig already shortens timeouts for loopback; on top
		// of it we probe five times as often, since loopback probes cost
		// nothing, so a killed test broker is declared dead in about a
		// second instead of five.
		mc = memberlist.DefaultLocalConfig()
		// One peer is probed per interval. On loopback an ack takes
		// microseconds, so 100 ms leaves room for a busy -race test run
		// and still half the interval for indirect and TCP probes.
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		// Suspicion lasts SuspicionMult × max(1, log10 n) × ProbeInterval:
		// 600 ms in a small cluster once a second peer confirms, and at most
		// SuspicionMaxTimeoutMult times that (3.6 s) without confirmation.
		mc.SuspicionMult = 3
		// Broadcasts and state changes spread in a few hops of this.
		mc.GossipInterval = 50 * time.Millisecond
		// Full syncs repair anything gossip lost; cheap for small clusters.
		mc.PushPullInterval = 5 * time.Second
		// A restarted test broker binds a new ephemeral port under the same
		// name; let it take the name over from its dead predecessor at once
		// rather than after the dead node is reaped (GossipToTheDeadTime).
		mc.DeadNodeReclaimTime = time.Millisecond
	default:
		// Memberlist's LAN defaults, as Consul and Serf run them: probe each
		// second, suspect for 4 × log10(n) seconds, push/pull every 30 s.
		// A broker that returns on a new address under its old id is
		// accepted once its dead predecessor is reaped (GossipToTheDeadTime).
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = nodeName(c.Self.ID)
	ip, port, _ := splitIPPort(c.BindAddr, true)
	mc.BindAddr = ip.String()
	mc.BindPort = port
	mc.AdvertiseAddr = ""
	mc.AdvertisePort = port
	if c.AdvertiseAddr != "" {
		aip, aport, _ := splitIPPort(c.AdvertiseAddr, false)
		mc.AdvertiseAddr = aip.String()
		mc.AdvertisePort = aport
	}
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
	}
	return mc
}
