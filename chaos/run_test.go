package chaos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestRunAgainstKfake runs the whole harness (workload, command faults,
// heal, catch-up, checker, reports) against franz-go's in-memory fake
// Kafka, which serves consumer groups: a healthy target must come out
// valid, with every kind of op in the history.
func TestRunAgainstKfake(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for ~10 s")
	}
	fake, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	out := t.TempDir()
	marks := filepath.Join(out, "marks")
	cfg := DefaultConfig()
	cfg.Brokers = fake.ListenAddrs()
	cfg.Nodes = 3
	cfg.Duration = 8 * time.Second
	cfg.Settle = 500 * time.Millisecond
	cfg.Recover = 500 * time.Millisecond
	cfg.CatchUp = 20 * time.Second
	cfg.Faults = []string{FaultKill, FaultPause}
	cfg.FaultCmds = map[string]string{
		FaultKill:  "echo kill {node} $CHAOS_NODE >> " + marks,
		FaultPause: "echo pause $CHAOS_NODES >> " + marks,
	}
	cfg.HealCmd = "echo heal $CHAOS_FAULT >> " + marks
	cfg.Seed = 3
	cfg.Rate = 200
	cfg.Out = out
	var progress bytes.Buffer
	cfg.Progress = &progress
	began := time.Now()
	res, err := Run(context.Background(), cfg)
	t.Logf("run took %v", time.Since(began).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, progress.String())
	}
	var report bytes.Buffer
	res.WriteText(&report)
	if !res.Valid() {
		t.Fatalf("healthy fake cluster found invalid:\n%s\n%s", report.String(), progress.String())
	}
	st := res.Stats
	if st.SendsOK < 500 || st.Polls < st.SendsOK || st.Commits == 0 || st.Faults == 0 {
		t.Fatalf("thin history: %+v\n%s", st, report.String())
	}
	if !strings.Contains(strings.Join(st.Readers, ","), "g1") || !strings.Contains(strings.Join(st.Readers, ","), "final") {
		t.Fatalf("readers %v: want the group reader and the final reader", st.Readers)
	}
	m, err := os.ReadFile(marks)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(m), "heal all") || !(strings.Contains(string(m), "kill ") || strings.Contains(string(m), "pause ")) {
		t.Fatalf("fault commands ran:\n%s", m)
	}
	for _, f := range []string{HistoryFile, ReportFile, ResultFile, TimelineFile, ScheduleFile, "fault-commands.log"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("output %s: %v", f, err)
		}
	}
	// Re-checking the saved history gives the same verdict.
	again, err := CheckFile(filepath.Join(out, HistoryFile), "", 10, "")
	if err != nil || !again.Valid() || again.Stats.SendsOK != st.SendsOK {
		t.Fatalf("re-check: %v, %+v", err, again)
	}
}

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Binary = "/bin/raftka"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := DefaultConfig()
	bad.Nodes = 0
	bad.Faults = []string{"meteor"}
	bad.Replicas = 0
	bad.Rate = 0
	bad.FaultCmds = map[string]string{"kill": "true"}
	err := bad.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"nodes must be", `unknown fault "meteor"`, "replicas must be", "rate must be", "no raftka binary", "need --brokers"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	ext := DefaultConfig()
	ext.Brokers = []string{"k1:9092"}
	ext.Faults = []string{FaultKill}
	if err := ext.Validate(); err == nil || !strings.Contains(err.Error(), "--fault-cmd kill=") {
		t.Fatalf("external run without fault command: %v", err)
	}
}
