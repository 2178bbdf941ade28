//go:build integration

package integration

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// kcat runs kcat with args and stdin and returns its stdout.
func kcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (apt-get install kcat); .ci/run installs it")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %v: %v\nstderr: %s", args, err, stderr.String())
	}
	return string(out)
}

func TestKcat(t *testing.T) {
	n := newNode(t)
	n.start()
	addr := n.kafkaAddr()

	t.Run("metadata", func(t *testing.T) {
		createTopic(t, addr, "listed", 3)
		out := kcat(t, "", "-L", "-b", addr)
		for _, want := range []string{"1 brokers:", "broker 1 at " + addr, `topic "listed" with 3 partitions`, "partition 0, leader 1, replicas: 1, isrs: 1"} {
			if !strings.Contains(out, want) {
				t.Errorf("kcat -L output lacks %q:\n%s", want, out)
			}
		}
	})

	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run("codec="+codec, func(t *testing.T) {
			topic := "kcat-" + codec
			createTopic(t, addr, topic, 1)
			var lines []string
			for i := range 200 {
				lines = append(lines, strings.Repeat(codec, 5)+"-"+string(rune('a'+i%26))+"-"+time.Duration(i).String())
			}
			kcat(t, strings.Join(lines, "\n")+"\n", "-P", "-b", addr, "-t", topic, "-z", codec, "-X", "acks=all")
			out := kcat(t, "", "-C", "-b", addr, "-t", topic, "-o", "beginning", "-e", "-q")
			got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(lines, "\n") {
				t.Fatalf("consumed %d lines, want the %d produced in order; first: %q", len(got), len(lines), got[0])
			}
		})
	}

	t.Run("idempotent", func(t *testing.T) {
		createTopic(t, addr, "kcat-idem", 2)
		kcat(t, "one\ntwo\nthree\n", "-P", "-b", addr, "-t", "kcat-idem", "-X", "enable.idempotence=true")
		out := kcat(t, "", "-C", "-b", addr, "-t", "kcat-idem", "-o", "beginning", "-e", "-q", "-f", "%s\n")
		got := strings.Fields(out)
		if len(got) != 3 {
			t.Fatalf("consumed %q, want one, two, three", got)
		}
	})

	t.Run("query", func(t *testing.T) {
		createTopic(t, addr, "kcat-query", 1)
		kcat(t, "early\n", "-P", "-b", addr, "-t", "kcat-query")
		mid := time.Now().UnixMilli() + 1
		waitUntil(t, 5*time.Second, "clock to pass", func() bool { return time.Now().UnixMilli() > mid })
		kcat(t, "late\n", "-P", "-b", addr, "-t", "kcat-query")
		out := kcat(t, "", "-Q", "-b", addr, "-t", "kcat-query:0:"+strconv.FormatInt(mid, 10))
		if !strings.Contains(out, "kcat-query [0] offset 1") {
			t.Fatalf("kcat -Q at %d: %q, want offset 1", mid, out)
		}
		out = kcat(t, "", "-Q", "-b", addr, "-t", "kcat-query:0:-1")
		if !strings.Contains(out, "offset 2") {
			t.Fatalf("kcat -Q latest: %q, want offset 2", out)
		}
	})
}
