package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/raftka/raftka/broker"
	"github.com/spf13/pflag"
)

// resolve parses args as `raftka start` flags and resolves the config.
func resolve(t *testing.T, args ...string) (startConfig, error) {
	t.Helper()
	s := newStartCommand(&newTestEnv("").env)
	if err := s.cmd.ParseFlags(args); err != nil {
		return startConfig{}, err
	}
	return s.config()
}

func TestStartConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := resolve(t)
	if err != nil {
		t.Fatal(err)
	}
	want := defaultStartConfig()
	if !reflect.DeepEqual(cfg, want) {
		t.Fatalf("config without file or flags:\n got %+v\nwant %+v", cfg, want)
	}
	if cfg.KafkaAddr != "127.0.0.1:9092" || cfg.AdminAddr != "127.0.0.1:9644" || cfg.DataDir != "./raftka-data" || cfg.NodeID != 1 {
		t.Fatalf("defaults changed: %+v", cfg.Config)
	}
}

func TestStartConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, "raftka.yaml", `
# comments are fine
node-id: 2
kafka-addr: 0.0.0.0:19092
storage: memory
rack: rack-a
metadata-voters: [2, 3, 4]
max-fetch-wait: 45s
shutdown-timeout: 1m30s
auto-create-topics: true
default-replication-factor: 3
log-level: debug
log-format: json
`)
	cfg, err := resolve(t, "--config", file,
		"--node-id", "3",
		"--metadata-voters", "3",
		"--storage", "pebble", // explicitly set to the default: still wins over the file
		"--log-format", "text",
	)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"node-id (flag)", cfg.NodeID, int32(3)},
		{"metadata-voters (flag)", cfg.MetadataVoters, []uint64{3}},
		{"storage (flag at default value)", cfg.Storage, broker.StoragePebble},
		{"log-format (flag)", cfg.LogFormat, "text"},
		{"kafka-addr (file)", cfg.KafkaAddr, "0.0.0.0:19092"},
		{"rack (file)", cfg.Rack, "rack-a"},
		{"max-fetch-wait (file)", cfg.MaxFetchWait, 45 * time.Second},
		{"shutdown-timeout (file)", cfg.ShutdownTimeout, 90 * time.Second},
		{"auto-create-topics (file)", cfg.AutoCreateTopics, true},
		{"default-replication-factor (file)", cfg.DefaultReplicationFactor, int16(3)},
		{"log-level (file)", cfg.LogLevel, "debug"},
		{"data-dir (default)", cfg.DataDir, "./raftka-data"},
		{"admin-addr (default)", cfg.AdminAddr, "127.0.0.1:9644"},
		{"max-message-bytes (default)", cfg.MaxMessageBytes, broker.DefaultConfig().MaxMessageBytes},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestStartConfigEmptyFileKeepsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := resolve(t, "--config", writeFile(t, "empty.yaml", "# nothing\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, defaultStartConfig()) {
		t.Fatalf("empty file changed the config: %+v", cfg)
	}
}

func TestStartConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		yaml string   // config file content, if any
		args []string // more flags
		want []string // substrings of the error
	}{
		{name: "unknown key", yaml: "node-id: 1\nkafka-adr: 1.2.3.4:9092\n",
			want: []string{`unknown key "kafka-adr"`, "line 2", `did you mean "kafka-addr"`}},
		{name: "unknown key far from any", yaml: "zookeeper-connect: localhost:2181\n",
			want: []string{`unknown key "zookeeper-connect"`, "known keys:", "node-id"}},
		{name: "every unknown key", yaml: "foo: 1\nbar: 2\n",
			want: []string{`unknown key "foo"`, `unknown key "bar"`}},
		{name: "not a number", yaml: "node-id: one\n",
			want: []string{"line 1", "int32"}},
		{name: "bad duration", yaml: "max-fetch-wait: soon\n",
			want: []string{"time.Duration"}},
		{name: "duration without unit", yaml: "shutdown-timeout: 30\n",
			want: []string{"time.Duration"}},
		{name: "voters not a list", yaml: "metadata-voters: lots\n",
			want: []string{"metadata-voters", "line 1"}},
		{name: "not a mapping", yaml: "- node-id\n",
			want: []string{"key: value"}},
		{name: "malformed yaml", yaml: "node-id: [1\n",
			want: []string{"config file"}},
		{name: "bad log level in file", yaml: "log-level: loud\n",
			want: []string{"log-level", "loud"}},
		{name: "bad log format flag", args: []string{"--log-format", "xml"},
			want: []string{"log-format", "xml"}},
		{name: "bad voters flag", args: []string{"--metadata-voters", "1,x"},
			want: []string{"metadata-voters", `"x" is not a broker id`}},
		{name: "bad node-id flag", args: []string{"--node-id", "first"},
			want: []string{"node-id"}},
		{name: "missing file", args: []string{"--config", "/nonexistent/raftka.yaml"},
			want: []string{"config file", "no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := tc.args
			if tc.yaml != "" {
				args = append([]string{"--config", writeFile(t, "raftka.yaml", tc.yaml)}, args...)
			}
			_, err := resolve(t, args...)
			if err == nil {
				t.Fatalf("want an error containing %q, got none", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestStartFlagsAreConfigKeys checks that every setting flag of start is
// also a config file key, so the file can say whatever the flags can.
func TestStartFlagsAreConfigKeys(t *testing.T) {
	t.Parallel()
	keys := yamlFields(reflect.TypeOf(startConfig{}))
	newStartCmd(&newTestEnv("").env).Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "config" || f.Name == "help" {
			return
		}
		if _, ok := keys[f.Name]; !ok {
			t.Errorf("flag --%s has no config file key", f.Name)
		}
	})
	for _, k := range []string{"node-id", "max-fetch-wait", "shutdown-timeout", "cluster-id", "log-level"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("config key %q missing", k)
		}
	}
	for _, k := range []string{"raft", "engine", "logger", "Config"} {
		if _, ok := keys[k]; ok {
			t.Errorf("internal field %q must not be a config key", k)
		}
	}
}

// TestStartHelpListsEveryKey checks that start's help shows every config
// file key (except the hidden unsafe one), so a user can find each setting.
func TestStartHelpListsEveryKey(t *testing.T) {
	t.Parallel()
	long := newStartCmd(&newTestEnv("").env).Long
	for k := range yamlFields(reflect.TypeOf(startConfig{})) {
		if k == "unsafe-ack-before-commit" {
			continue
		}
		if !strings.Contains(long, "\n  "+k+":") {
			t.Errorf("start --help does not show config key %q", k)
		}
	}
}

// TestStartRejectsInvalidConfig checks that a value the broker refuses
// stops `raftka start` before it binds anything, with a hint.
func TestStartRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	r := runCLI(t, "", "start", "--storage", "disk", "--node-id", "0", "--kafka-addr", "127.0.0.1:0", "--admin-addr", "")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d; stderr:\n%s", r.code, exitError, r.stderr)
	}
	for _, w := range []string{"storage must be", "node-id must be > 0", "hint:"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
		}
	}
}
