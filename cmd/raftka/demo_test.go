package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// freePortRange returns the first of n consecutive loopback ports that were
// free a moment ago. It looks below Linux's ephemeral range (32768 and up),
// where the ports other tests bind with ":0" are not handed out.
func freePortRange(t testing.TB, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + rand.IntN(12000)
		free := true
		for i := range n {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				free = false
				break
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports found", n)
	return 0
}

// demoRun is one `raftka demo` running in-process.
type demoRun struct {
	te        *testEnv
	done      chan int
	bootstrap []string
}

var bootstrapLine = regexp.MustCompile(`(?m)^bootstrap servers: (\S+)$`)

// startDemo runs `raftka demo` with args on n free consecutive Kafka ports
// and waits for its bootstrap line. If a port was taken between choosing
// and binding it, it tries another range.
func startDemo(t *testing.T, n int, args ...string) *demoRun {
	t.Helper()
	for attempt := 0; ; attempt++ {
		base := freePortRange(t, n)
		d := &demoRun{te: newTestEnv(""), done: make(chan int, 1)}
		full := append([]string{"demo", "--nodes", strconv.Itoa(n), "--base-port", strconv.Itoa(base), "--admin-base-port", "0"}, args...)
		go func() { d.done <- run(context.Background(), &d.te.env, full) }()
		var exited *int
		waitFor(t, 60*time.Second, "the bootstrap servers line", func() bool {
			select {
			case code := <-d.done:
				exited = &code
				return true
			default:
			}
			m := bootstrapLine.FindStringSubmatch(d.te.stdoutBuf.String())
			if m != nil {
				d.bootstrap = strings.Split(m[1], ",")
			}
			return m != nil
		})
		if exited == nil {
			t.Cleanup(func() { d.stop(t) })
			var want []string
			for i := range n {
				want = append(want, "127.0.0.1:"+strconv.Itoa(base+i))
			}
			if strings.Join(d.bootstrap, ",") != strings.Join(want, ",") {
				t.Fatalf("bootstrap servers %v, want %v", d.bootstrap, want)
			}
			return d
		}
		if attempt < 3 && strings.Contains(d.te.stderrBuf.String(), "in use") {
			t.Logf("ports from %d were taken; trying another range", base)
			continue
		}
		t.Fatalf("demo exited with %d before it was ready:\n%s", *exited, d.te.stderrBuf.String())
	}
}

// stop sends SIGINT and expects a clean exit; it does nothing the second
// time.
func (d *demoRun) stop(t *testing.T) {
	t.Helper()
	if d.done == nil {
		return
	}
	d.te.sigs <- syscall.SIGINT
	select {
	case code := <-d.done:
		if code != 0 {
			t.Errorf("demo exited with %d after SIGINT, want 0:\n%s", code, d.te.stderrBuf.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not stop within 30s of SIGINT:\n%s", d.te.stderrBuf.String())
	}
	d.done = nil
}

// TestDemoReplicatesAcrossBrokers runs a 3-broker demo, creates a topic
// replicated on all three through franz-go, writes and reads it back, and
// stops the demo with SIGINT: exit 0 and every port released.
func TestDemoReplicatesAcrossBrokers(t *testing.T) {
	t.Parallel()
	d := startDemo(t, 3, "--storage", "memory")
	cl, err := kgo.NewClient(kgo.SeedBrokers(d.bootstrap...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.DefaultProduceTopic("demo"), kgo.ConsumeTopics("demo"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "demo")
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic with replication factor 3: %v", err)
	}
	const n = 300
	want := map[string]bool{}
	var recs []*kgo.Record
	for i := range n {
		v := fmt.Sprintf("demo-%03d", i)
		want[v] = true
		recs = append(recs, &kgo.Record{Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	got := map[string]int{}
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, ctx.Err())
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("fetch partition %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)]++ })
	}
	for v, c := range got {
		if !want[v] || c != 1 {
			t.Fatalf("record %q read %d times; produced: %v", v, c, want[v])
		}
	}
	// Every broker holds a replica of every partition.
	md, err := kadm.NewClient(cl).Metadata(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range md.Topics["demo"].Partitions {
		if len(p.Replicas) != 3 {
			t.Errorf("partition %d: replicas %v, want 3", p.Partition, p.Replicas)
		}
	}
	cl.Close()

	d.stop(t)
	if !strings.Contains(d.te.stderrBuf.String(), "broker stopped") {
		t.Errorf("no shutdown message:\n%s", d.te.stderrBuf.String())
	}
	for _, addr := range d.bootstrap {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s not released after shutdown: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

// TestDemoDataDirectory checks the pebble data directory of a one-broker
// demo: removed on exit, or kept and named with --keep.
func TestDemoDataDirectory(t *testing.T) {
	t.Parallel()
	dataLine := regexp.MustCompile(`(?m)^data in (\S+)$`)
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			t.Parallel()
			var args []string
			if keep {
				args = append(args, "--keep")
			}
			d := startDemo(t, 1, args...)
			m := dataLine.FindStringSubmatch(d.te.stderrBuf.String())
			if m == nil {
				t.Fatalf("no data directory line:\n%s", d.te.stderrBuf.String())
			}
			dir := m[1]
			if keep {
				t.Cleanup(func() { os.RemoveAll(dir) })
			}
			if _, err := os.Stat(dir + "/broker-1"); err != nil {
				t.Fatalf("broker data directory: %v", err)
			}
			d.stop(t)
			_, err := os.Stat(dir)
			switch {
			case keep && err != nil:
				t.Fatalf("--keep: %s is gone: %v", dir, err)
			case keep && !strings.Contains(d.te.stderrBuf.String(), "data kept in "+dir):
				t.Fatalf("--keep: the kept directory is not named:\n%s", d.te.stderrBuf.String())
			case !keep && !os.IsNotExist(err):
				t.Fatalf("%s not removed on exit: %v", dir, err)
			}
		})
	}
}

// TestDemoPortInUse checks that a taken Kafka port fails the demo before
// any broker starts, naming the port and --base-port.
func TestDemoPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	r := runCLI(t, "", "demo", "--base-port", strconv.Itoa(port), "--admin-base-port", "0", "--storage", "memory")
	if r.code != exitError {
		t.Fatalf("exit %d, want %d:\n%s", r.code, exitError, r.stderr)
	}
	for _, w := range []string{fmt.Sprintf("port %d", port), "--base-port"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr does not contain %q:\n%s", w, r.stderr)
		}
	}
	if strings.Contains(r.stdout, "bootstrap servers") {
		t.Errorf("the demo printed bootstrap servers although it failed:\n%s", r.stdout)
	}
}

// TestDemoUsageErrors checks flag combinations the demo refuses.
func TestDemoUsageErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nodes", "6"}, "at most 5 voters"},
		{[]string{"--nodes", "0"}, "--nodes must be between 1 and 5"},
		{[]string{"--base-port", "65534"}, "must be between 1 and 65535"},
		{[]string{"--base-port", "9092", "--admin-base-port", "9093"}, "overlaps the Kafka ports"},
		{[]string{"--storage", "tape"}, "--storage must be"},
		{[]string{"--storage", "memory", "--keep"}, "need --storage pebble"},
		{[]string{"extra"}, "unknown command"},
	} {
		r := runCLI(t, "", append([]string{"demo"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("demo %v: exit %d, stderr:\n%s\nwant exit %d and %q", tc.args, r.code, r.stderr, exitUsage, tc.want)
		}
	}
}
