package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftka/raftka/internal/cmalloc"
)

func TestTuningForLeavesUserSettingsAlone(t *testing.T) {
	env := func(kv map[string]string) func(string) string {
		return func(k string) string { return kv[k] }
	}
	const gib = int64(1) << 30
	retain := cmalloc.Supported // a build without cgo has no C allocator to tune
	budget := runtimeTuning{HeapBudget: 768 << 20, RetainCMemory: retain}
	withProcs := func(t runtimeTuning, procs int) runtimeTuning { t.MaxProcs = procs; return t }
	cases := []struct {
		name  string
		env   map[string]string
		procs int
		want  runtimeTuning
	}{
		{"defaults on 2 cores", nil, 2, withProcs(budget, 3)},
		{"defaults on 7 cores", nil, 7, withProcs(budget, 8)},
		{"8 cores keep their processors", nil, 8, budget},
		{"many cores keep their processors", nil, 32, budget},
		{"GOGC set", map[string]string{"GOGC": "100"}, 2, runtimeTuning{MaxProcs: 3, RetainCMemory: retain}},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "1GiB"}, 2, runtimeTuning{MaxProcs: 3, RetainCMemory: retain}},
		{"GOMAXPROCS set", map[string]string{"GOMAXPROCS": "2"}, 2, budget},
		{"GLIBC_TUNABLES set", map[string]string{"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, 2, runtimeTuning{HeapBudget: 768 << 20, MaxProcs: 3}},
		{"MALLOC_TRIM_THRESHOLD_ set", map[string]string{"MALLOC_TRIM_THRESHOLD_": "0"}, 2, runtimeTuning{HeapBudget: 768 << 20, MaxProcs: 3}},
		{"all set", map[string]string{"GOGC": "off", "GOMEMLIMIT": "1GiB", "GOMAXPROCS": "3", "GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"}, 3, runtimeTuning{}},
	}
	for _, c := range cases {
		if got := tuningFor(env(c.env), c.procs, 24*gib); got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestHeapBudgetFor(t *testing.T) {
	const mib = int64(1) << 20
	cases := []struct{ mem, want int64 }{
		{0, 512 * mib},            // unknown
		{1024 * mib, 256 * mib},   // a small container: the floor
		{4096 * mib, 512 * mib},   // an eighth
		{24576 * mib, 768 * mib},  // the benchmark machine: the cap
		{262144 * mib, 768 * mib}, // a large machine: the cap
	}
	for _, c := range cases {
		if got := heapBudgetFor(c.mem); got != c.want {
			t.Errorf("heapBudgetFor(%d MiB) = %d MiB, want %d MiB", c.mem/mib, got/mib, c.want/mib)
		}
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	files := map[string]string{
		"/proc/self/cgroup": "0::/system.slice/raftka.service\n",
		"/sys/fs/cgroup/system.slice/raftka.service/memory.max": "1073741824\n",
	}
	read := func(name string) ([]byte, error) {
		if s, ok := files[name]; ok {
			return []byte(s), nil
		}
		return nil, errors.New("no such file")
	}
	if got, ok := cgroupMemoryLimit(read); !ok || got != 1<<30 {
		t.Errorf("cgroupMemoryLimit = %d, %v; want 1 GiB", got, ok)
	}
	files["/sys/fs/cgroup/system.slice/raftka.service/memory.max"] = "max\n"
	if _, ok := cgroupMemoryLimit(read); ok {
		t.Error(`memory.max "max" read as a limit`)
	}
	files["/proc/self/cgroup"] = "12:memory:/docker/abc\n" // cgroup v1 only
	if _, ok := cgroupMemoryLimit(read); ok {
		t.Error("a cgroup v1 line read as a v2 limit")
	}
}

// TestOnlyBrokerCommandsTuneTheRuntime runs commands that fail fast on bad
// input (after flag parsing) and counts the tunings they asked for: the
// commands that run brokers in this process tune it, client commands leave
// Go's defaults.
func TestOnlyBrokerCommandsTuneTheRuntime(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{[]string{"bench", "produce", "--in-process", "99"}, 1},
		{[]string{"bench", "storage", "--record-size", "0"}, 1},
		{[]string{"demo", "--nodes", "0"}, 1},
		{[]string{"start", "--node-id", "0"}, 1},
		{[]string{"topic", "create"}, 0},
		{[]string{"version"}, 0},
		{[]string{"bench", "--help"}, 0},
	}
	for _, c := range cases {
		te := newTestEnv("")
		tuned := 0
		te.env.tune = func() { tuned++ }
		r := runCLIIn(t, te, c.args...)
		if tuned != c.want {
			t.Errorf("raftka %s tuned the runtime %d times, want %d\nstderr:\n%s", strings.Join(c.args, " "), tuned, c.want, r.stderr)
		}
	}
}
