package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupCommands drives consumer groups through the CLI: consume
// --group commits what it printed, the next run goes on from there,
// describe shows members, offsets and lag (on a live group too),
// reset-offsets and delete refuse an active group and work on an empty
// one.
func TestGroupCommands(t *testing.T) {
	t.Parallel()
	b := startTestBroker(t)
	brokers := []string{"--brokers", b.Addr()}
	cli := func(stdin string, args ...string) result { return runCLI(t, stdin, append(brokers, args...)...) }
	ok := func(stdin string, args ...string) result { return mustRun(t, stdin, append(brokers, args...)...) }

	ok("", "topic", "create", "gt", "--partitions", "3")
	var in strings.Builder
	var all []string
	for i := range 30 {
		fmt.Fprintf(&in, "r%02d\n", i)
		all = append(all, fmt.Sprintf("r%02d", i))
	}
	ok(in.String(), "produce", "gt")

	// Two runs of one group read everything once between them.
	first := lines(ok("", "consume", "gt", "--group", "g1", "--from-beginning", "-n", "20").stdout)
	if len(first) != 20 {
		t.Fatalf("first run printed %d records, want 20", len(first))
	}
	d := describeGroup(t, b.Addr(), "g1")
	if d.State != "Empty" || d.TotalLag != 10 || len(d.Offsets) != 3 || len(d.Members) != 0 {
		t.Fatalf("after consuming 20 of 30: %+v", d)
	}
	second := lines(ok("", "consume", "gt", "--group", "g1", "-n", "10").stdout)
	got := slices.Sorted(slices.Values(append(first, second...)))
	if !slices.Equal(got, all) {
		t.Fatalf("two runs printed %v, want every record once", got)
	}

	r := ok("", "group", "list")
	if !strings.Contains(r.stdout, "GROUP") || !strings.Contains(r.stdout, "g1") || !strings.Contains(r.stdout, "Empty") {
		t.Fatalf("group list:\n%s", r.stdout)
	}
	r = ok("", "group", "list", "--state", "Stable")
	if strings.Contains(r.stdout, "g1") {
		t.Fatalf("group list --state Stable lists the empty g1:\n%s", r.stdout)
	}
	r = ok("", "group", "describe", "g1")
	for _, w := range []string{"STATE", "Empty", "TOTAL-LAG", "COMMITTED", "LOG-END-OFFSET", "LAG", "gt"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("group describe lacks %q:\n%s", w, r.stdout)
		}
	}

	// A live group: a member holds every partition and has not consumed
	// five new records.
	member, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumerGroup("g1"), kgo.ConsumeTopics("gt"), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	waitFor(t, 15*time.Second, "the member to join", func() bool { return describeGroup(t, b.Addr(), "g1").State == "Stable" })
	ok("a\nb\nc\nd\ne\n", "produce", "gt")
	d = describeGroup(t, b.Addr(), "g1")
	if d.TotalLag != 5 || len(d.Members) != 1 || len(d.Members[0].Assigned) != 3 {
		t.Fatalf("live group: %+v", d)
	}
	for _, o := range d.Offsets {
		if o.MemberID != d.Members[0].MemberID || o.Committed >= 0 && o.Lag != o.LogEndOffset-o.Committed {
			t.Errorf("live group offset %+v", o)
		}
	}
	r = cli("", "group", "reset-offsets", "g1", "--topic", "gt", "--to-earliest")
	if r.code != exitError || !strings.Contains(r.stderr, "only while it is empty") {
		t.Fatalf("reset-offsets of a live group: exit %d\n%s", r.code, r.stderr)
	}
	r = cli("", "group", "delete", "g1")
	if r.code != exitError || !strings.Contains(r.stderr, "NON_EMPTY_GROUP") || !strings.Contains(r.stderr, "hint:") {
		t.Fatalf("delete of a live group: exit %d\n%s", r.code, r.stderr)
	}
	member.Close()
	waitFor(t, 15*time.Second, "the member to leave", func() bool { return describeGroup(t, b.Addr(), "g1").State == "Empty" })

	// reset-offsets: usage, dry run, then for real.
	for _, args := range [][]string{
		{"group", "reset-offsets", "g1", "--topic", "gt"},
		{"group", "reset-offsets", "g1", "--topic", "gt", "--to-earliest", "--to-latest"},
		{"group", "reset-offsets", "g1", "--to-earliest"},
		{"group", "reset-offsets", "g1", "--topic", "gt", "--to-offset", "-1"},
	} {
		if r := cli("", args...); r.code != exitUsage {
			t.Errorf("raftka %s: exit %d, want %d\n%s", strings.Join(args, " "), r.code, exitUsage, r.stderr)
		}
	}
	r = ok("", "group", "reset-offsets", "g1", "--topic", "gt", "--to-earliest", "--dry-run")
	if !strings.Contains(r.stderr, "dry run") || describeGroup(t, b.Addr(), "g1").TotalLag != 5 {
		t.Fatalf("dry run changed the offsets or said nothing:\n%s%s", r.stdout, r.stderr)
	}
	r = ok("", "group", "reset-offsets", "g1", "--topic", "gt", "--to-offset", "1000", "-o", "json")
	var resets []struct {
		Partition int32 `json:"partition"`
		Offset    int64 `json:"offset"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &resets); err != nil || len(resets) != 3 {
		t.Fatalf("reset-offsets -o json (%v):\n%s", err, r.stdout)
	}
	if d := describeGroup(t, b.Addr(), "g1"); d.TotalLag != 0 {
		t.Fatalf("--to-offset past the end is clamped to the end; lag %d", d.TotalLag)
	}
	ok("", "group", "reset-offsets", "g1", "--topic", "gt", "--to-earliest")
	if d := describeGroup(t, b.Addr(), "g1"); d.TotalLag != 35 {
		t.Fatalf("after --to-earliest: lag %d, want 35", d.TotalLag)
	}
	again := lines(ok("", "consume", "gt", "--group", "g1", "-n", "35").stdout)
	if len(again) != 35 {
		t.Fatalf("after the reset: %d records, want 35", len(again))
	}
	r = cli("", "group", "reset-offsets", "g1", "--topic", "no-such-topic", "--to-latest")
	if r.code != exitError || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Fatalf("reset-offsets of an unknown topic: exit %d\n%s", r.code, r.stderr)
	}

	// Delete.
	r = ok("", "group", "delete", "g1")
	if r.stdout != "deleted group g1\n" {
		t.Fatalf("group delete: %q", r.stdout)
	}
	for _, args := range [][]string{{"group", "delete", "g1"}, {"group", "describe", "g1"}} {
		r = cli("", args...)
		if r.code != exitError || !strings.Contains(r.stderr, "GROUP_ID_NOT_FOUND") {
			t.Errorf("raftka %s of a deleted group: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := cli("", "consume", "gt", "--group", "g1", "--partition", "0"); r.code != exitUsage {
		t.Errorf("consume --group --partition: exit %d, want %d", r.code, exitUsage)
	}
}

func lines(s string) []string {
	return strings.Fields(s)
}

// describeGroup runs `raftka group describe -o json`.
func describeGroup(t *testing.T, addr, group string) groupDescription {
	t.Helper()
	r := mustRun(t, "", "--brokers", addr, "group", "describe", group, "-o", "json")
	var ds []groupDescription
	if err := json.Unmarshal([]byte(r.stdout), &ds); err != nil || len(ds) != 1 {
		t.Fatalf("group describe -o json (%v):\n%s", err, r.stdout)
	}
	return ds[0]
}
