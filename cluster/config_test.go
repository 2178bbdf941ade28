package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestPresetsAreValid(t *testing.T) {
	t.Parallel()
	for name, cfg := range map[string]Config{"default": DefaultConfig(), "local": LocalConfig()} {
		cfg.Self = testMember(1)
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestLocalPresetTiming(t *testing.T) {
	t.Parallel()
	cfg := LocalConfig()
	cfg.Self = testMember(3)
	mc := cfg.memberlistConfig()
	if mc.Name != "broker-3" || mc.BindAddr != "127.0.0.1" || mc.BindPort != 0 {
		t.Fatalf("name/bind = %q %s:%d", mc.Name, mc.BindAddr, mc.BindPort)
	}
	if mc.ProbeInterval != 200*time.Millisecond || mc.ProbeTimeout >= mc.ProbeInterval || mc.DeadNodeReclaimTime == 0 {
		t.Fatalf("local preset: probe %v/%v reclaim %v", mc.ProbeInterval, mc.ProbeTimeout, mc.DeadNodeReclaimTime)
	}
	cfg = DefaultConfig()
	cfg.Self = testMember(3)
	cfg.AdvertiseAddr = "10.1.2.3:7000"
	mc = cfg.memberlistConfig()
	if mc.ProbeInterval != time.Second || mc.BindPort != 9094 || mc.AdvertiseAddr != "10.1.2.3" || mc.AdvertisePort != 7000 {
		t.Fatalf("lan preset: probe %v bind %d advertise %s:%d", mc.ProbeInterval, mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"zero id", func(c *Config) { c.Self.ID = 0 }, "id must be > 0, got 0"},
		{"negative id", func(c *Config) { c.Self.ID = -1 }, "id must be > 0"},
		{"no kafka addr", func(c *Config) { c.Self.KafkaAddr = "" }, "kafka-addr"},
		{"kafka addr without port", func(c *Config) { c.Self.KafkaAddr = "127.0.0.1" }, "kafka-addr"},
		{"kafka addr port 0", func(c *Config) { c.Self.KafkaAddr = "127.0.0.1:0" }, "port must be 1..65535"},
		{"kafka addr unspecified", func(c *Config) { c.Self.KafkaAddr = "0.0.0.0:9092" }, "unspecified host"},
		{"kafka addr empty host", func(c *Config) { c.Self.KafkaAddr = ":9092" }, "empty host"},
		{"raft addr", func(c *Config) { c.Self.RaftAddr = "nope" }, "raft-addr"},
		{"admin addr", func(c *Config) { c.Self.AdminAddr = "h:70000" }, "admin-addr"},
		{"bind hostname", func(c *Config) { c.BindAddr = "localhost:9094" }, "bind-addr: \"localhost:9094\": host must be an IP"},
		{"bind no port", func(c *Config) { c.BindAddr = "127.0.0.1" }, "bind-addr"},
		{"bind bad port", func(c *Config) { c.BindAddr = "127.0.0.1:x" }, "bind-addr"},
		{"advertise port 0", func(c *Config) { c.AdvertiseAddr = "10.0.0.1:0" }, "advertise-addr"},
		{"advertise unspecified", func(c *Config) { c.AdvertiseAddr = "0.0.0.0:9094" }, "advertise-addr"},
		{"join bad", func(c *Config) { c.Join = []string{"127.0.0.1:9094", "seed"} }, "join: \"seed\""},
		{"unknown preset", func(c *Config) { c.Preset = "wan" }, "preset must be \"lan\" or \"local\", got \"wan\""},
		{"empty preset", func(c *Config) { c.Preset = "" }, "preset"},
		{"secret key", func(c *Config) { c.SecretKey = []byte("short") }, "secret-key"},
		{"event buffer", func(c *Config) { c.EventBuffer = 0 }, "event-buffer"},
		{"message buffer", func(c *Config) { c.MessageBuffer = -1 }, "message-buffer"},
	} {
		cfg := LocalConfig()
		cfg.Self = testMember(1)
		tc.mutate(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want error containing %q", tc.name, err, tc.want)
		}
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	t.Parallel()
	cfg := Config{
		BindAddr: "nowhere",
		Join:     []string{"also-nowhere"},
		Preset:   "fast",
	}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted an empty config")
	}
	for _, want := range []string{"id must be > 0", "kafka-addr", "bind-addr", "join", "preset", "event-buffer", "message-buffer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if _, err := Start(cfg); err == nil {
		t.Fatal("Start accepted an invalid config")
	}
}
