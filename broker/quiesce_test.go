package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestIdleGroupsQuiesce checks that idle partition groups stop ticking on
// every replica, and wake up for a produce.
func TestIdleGroupsQuiesce(t *testing.T) {
	t.Parallel()
	brokers := startTestCluster(t, 3, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := newClient(t, brokers[0].Addr(), kgo.SeedBrokers(seeds(brokers)...), kgo.DefaultProduceTopic("quiet"))
	if resp, err := kadm.NewClient(cl).CreateTopic(ctx, 20, 3, nil, "quiet"); err != nil || resp.Err != nil {
		t.Fatalf("create: %v %v", err, resp.Err)
	}
	allQuiet := func() bool {
		for _, b := range brokers {
			if b.QuiescedGroups() < 20 {
				return false
			}
		}
		return true
	}
	waitFor(t, 20*time.Second, "all 60 partition replicas quiesced", allQuiet)
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "quiesced again after the produce", allQuiet)
}
