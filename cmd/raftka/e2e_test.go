package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestEndToEnd drives a broker through the CLI as a user would: create,
// list, describe, produce, consume, delete.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t)
	brokers := []string{"--brokers", b.Addr()}
	cli := func(stdin string, args ...string) result { return runCLI(t, stdin, append(brokers, args...)...) }
	ok := func(stdin string, args ...string) result { return mustRun(t, stdin, append(brokers, args...)...) }

	// Create.
	r := ok("", "topic", "create", "orders", "--partitions", "1", "--config", "retention.ms=3600000")
	if want := "created topic orders: 1 partitions, replication factor 1\n"; r.stdout != want {
		t.Fatalf("create output %q, want %q", r.stdout, want)
	}
	ok("", "topic", "create", "keyed", "-p", "3")
	r = cli("", "topic", "create", "orders")
	if r.code != exitError || !strings.Contains(r.stderr, "TOPIC_ALREADY_EXISTS") || !strings.Contains(r.stderr, "hint:") {
		t.Fatalf("creating an existing topic: exit %d, stderr:\n%s", r.code, r.stderr)
	}

	// List.
	r = ok("", "topic", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") ||
		!strings.HasPrefix(lines[1], "keyed") || !strings.Contains(lines[1], "3") || !strings.HasPrefix(lines[2], "orders") {
		t.Fatalf("topic list:\n%s", r.stdout)
	}
	var listed []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
	}
	r = ok("", "topic", "list", "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &listed); err != nil || len(listed) != 2 || listed[0].Name != "keyed" || listed[0].Partitions != 3 {
		t.Fatalf("topic list -o json (%v):\n%s", err, r.stdout)
	}

	// Describe, before any records.
	d := describe(t, b.Addr(), "orders")
	if len(d.Partitions) != 1 {
		t.Fatalf("describe: %d partitions, want 1", len(d.Partitions))
	}
	p := d.Partitions[0]
	if p.Leader != b.NodeID() || fmt.Sprint(p.Replicas) != "[1]" || fmt.Sprint(p.ISR) != "[1]" || p.HighWatermark != 0 || p.LogStartOffset != 0 || p.Error != "" {
		t.Fatalf("describe partition 0: %+v", p)
	}
	if v := configValue(d, "retention.ms"); v != "3600000" {
		t.Fatalf("retention.ms = %q, want the value given at creation", v)
	}
	r = ok("", "topic", "describe", "orders")
	for _, w := range []string{"PARTITION", "LEADER", "EPOCH", "ISR", "HIGH-WATERMARK", "LOG-START-OFFSET", "retention.ms", "3600000"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("describe output lacks %q:\n%s", w, r.stdout)
		}
	}

	// Produce 100 lines, consume them back in order.
	var in, want strings.Builder
	for i := range 100 {
		fmt.Fprintf(&in, "record-%03d\n", i)
	}
	want.WriteString(in.String())
	r = ok(in.String(), "produce", "orders")
	if !strings.Contains(r.stderr, "produced 100 records") {
		t.Fatalf("produce stderr:\n%s", r.stderr)
	}
	r = ok("", "consume", "orders", "--from-beginning", "-n", "100")
	if r.stdout != want.String() {
		t.Fatalf("consumed:\n%s\nwant:\n%s", r.stdout, want.String())
	}
	if d := describe(t, b.Addr(), "orders"); d.Partitions[0].HighWatermark != 100 {
		t.Fatalf("high watermark %d after 100 records, want 100", d.Partitions[0].HighWatermark)
	}

	// Offsets, formats, keys and partitions.
	r = ok("", "consume", "orders", "--partition", "0", "--offset", "98", "-n", "2", "--format", `%k|%v|%p|%o\n`)
	if want := "|record-098|0|98\n|record-099|0|99\n"; r.stdout != want {
		t.Fatalf("consume from offset 98: %q, want %q", r.stdout, want)
	}
	r = ok("", "consume", "orders", "--offset", "-1", "-n", "1")
	if r.stdout != "record-099\n" {
		t.Fatalf("consume --offset -1: %q", r.stdout)
	}
	ok("alice:1\nbob:2\ncarol:3\nnokey\n", "produce", "keyed", "--key-separator", ":", "--partition", "2", "--compression", "zstd")
	r = ok("", "consume", "keyed", "--from-beginning", "-n", "4", "--format", `%p %k=%v\n`)
	if want := "2 alice=1\n2 bob=2\n2 carol=3\n2 =nokey\n"; r.stdout != want {
		t.Fatalf("keyed consume: %q, want %q", r.stdout, want)
	}

	// A consumer group reads the topic and commits its progress.
	r = cli("", "consume", "orders", "--group", "g1", "--from-beginning", "-n", "100")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 100 {
		t.Fatalf("consume --group: exit %d, %d lines, stderr:\n%s", r.code, strings.Count(r.stdout, "\n"), r.stderr)
	}

	// Delete.
	r = ok("", "topic", "delete", "orders", "keyed")
	if r.stdout != "deleted topic orders\ndeleted topic keyed\n" {
		t.Fatalf("delete output %q", r.stdout)
	}
	waitFor(t, 10*time.Second, "deleted topics to leave the list", func() bool {
		out := ok("", "topic", "list").stdout
		return !strings.Contains(out, "orders") && !strings.Contains(out, "keyed")
	})
	r = cli("", "topic", "describe", "orders")
	if r.code != exitError || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") || !strings.Contains(r.stderr, "raftka topic list") {
		t.Fatalf("describe a deleted topic: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = cli("", "--timeout", "3s", "consume", "orders")
	if r.code != exitError || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("consume a deleted topic: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = cli("", "topic", "delete", "orders")
	if r.code != exitError || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("delete a deleted topic: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestProduceFailureExitsNonZero checks that a record the cluster refuses
// fails the command with the first error.
func TestProduceFailureExitsNonZero(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t)
	mustRun(t, "", "--brokers", b.Addr(), "topic", "create", "small", "--config", "max.message.bytes=100")
	r := runCLI(t, "short\n"+strings.Repeat("x", 1000)+"\n", "--brokers", b.Addr(), "produce", "small", "--partition", "0")
	if r.code != exitError || !strings.Contains(r.stderr, "MESSAGE_TOO_LARGE") || !strings.Contains(r.stderr, "failed") {
		t.Fatalf("produce an oversized record: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestUnreachableCluster checks the hint when nothing listens on --brokers.
func TestUnreachableCluster(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	r := runCLI(t, "", "--brokers", addr, "--timeout", "1s", "topic", "list")
	if r.code != exitError || !strings.Contains(r.stderr, "could not reach the cluster at "+addr) || !strings.Contains(r.stderr, "--brokers") {
		t.Fatalf("topic list with no broker: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestUsageErrors checks that mistakes in the command line exit 2 with a
// pointer to --help, before contacting any broker.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"nosuchcommand"},
		{"topic", "craete", "x"},
		{"topic", "create"},
		{"topic", "create", "x", "--partitions", "many"},
		{"topic", "create", "x", "--config", "novalue"},
		{"topic", "list", "--output", "yaml"},
		{"produce"},
		{"produce", "t", "--compression", "brotli"},
		{"consume", "t", "--format", "%x"},
		{"consume", "t", "--from-beginning", "--offset", "5"},
		{"consume", "t", "--offset", "soon"},
		{"start", "--no-such-flag"},
		{"version", "extra"},
	} {
		r := runCLI(t, "", append([]string{"--brokers", "127.0.0.1:1", "--timeout", "1s"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--help") {
			t.Errorf("raftka %s: exit %d, want %d with a --help pointer; stderr:\n%s", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	if r := runCLI(t, "", "topic", "craete"); !strings.Contains(r.stderr, `did you mean create`) {
		t.Errorf("no suggestion for a misspelt subcommand:\n%s", r.stderr)
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	if r := mustRun(t, "", "version"); !strings.HasPrefix(r.stdout, "raftka ") {
		t.Fatalf("version: %q", r.stdout)
	}
	for _, cmd := range [][]string{{}, {"start"}, {"topic"}, {"topic", "create"}, {"topic", "list"}, {"topic", "describe"},
		{"topic", "delete"}, {"produce"}, {"consume"}, {"version"}} {
		r := mustRun(t, "", append(cmd, "--help")...)
		if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("raftka %s --help lacks usage or examples:\n%s", strings.Join(cmd, " "), r.stdout)
		}
	}
}

// describe runs `topic describe -o json` for one topic.
func describe(t *testing.T, addr, topic string) topicDescription {
	t.Helper()
	r := mustRun(t, "", "--brokers", addr, "topic", "describe", topic, "--output", "json")
	var ds []topicDescription
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("describe -o json (%v):\n%s", err, r.stdout)
	}
	return ds[0]
}

func configValue(d topicDescription, name string) string {
	for _, c := range d.Configs {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestConsumeFromEndUntilInterrupt checks the defaults of consume: it
// starts at the end (old records are not printed) and runs until SIGINT,
// then exits 0.
func TestConsumeFromEndUntilInterrupt(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t)
	mustRun(t, "", "--brokers", b.Addr(), "topic", "create", "tail", "--partitions", "2")
	mustRun(t, "old-1\nold-2\n", "--brokers", b.Addr(), "produce", "tail")

	te := newTestEnv("")
	done := make(chan int, 1)
	go func() { done <- run(context.Background(), &te.env, []string{"--brokers", b.Addr(), "consume", "tail"}) }()
	// The consumer finds the end of each partition after it starts; keep
	// producing until it prints something.
	i := 0
	waitFor(t, 10*time.Second, "consume to print new records", func() bool {
		if strings.Contains(te.stdoutBuf.String(), "new-") {
			return true
		}
		i++
		mustRun(t, fmt.Sprintf("new-%d\n", i), "--brokers", b.Addr(), "produce", "tail")
		return false
	})
	te.sigs <- syscall.SIGINT
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("consume exit %d after SIGINT:\n%s", code, te.stderrBuf.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("consume did not stop on SIGINT")
	}
	if out := te.stdoutBuf.String(); strings.Contains(out, "old-") {
		t.Fatalf("consume without --from-beginning printed old records:\n%s", out)
	}
	if !strings.Contains(te.stderrBuf.String(), "consumed ") {
		t.Fatalf("no summary on stderr:\n%s", te.stderrBuf.String())
	}
}
