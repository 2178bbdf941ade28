package broker

import (
	"strings"
	"testing"
	"time"
)

// TestConfigValidateGroupSettings checks that impossible group settings
// are refused with every problem named.
func TestConfigValidateGroupSettings(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	c.applyDerived()
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	c.OffsetsTopicPartitions = 0
	c.OffsetsRetention = 0
	c.GroupInitialRebalanceDelay = -time.Second
	c.GroupMinSessionTimeout = time.Minute
	c.GroupMaxSessionTimeout = time.Second
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid group settings accepted")
	}
	for _, w := range []string{"offsets-topic-partitions", "offsets-retention", "group-initial-rebalance-delay", "group-min-session-timeout (1m0s) <= group-max-session-timeout (1s)"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not name %q: %v", w, err)
		}
	}
}
