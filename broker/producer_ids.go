package broker

import (
	"context"
	"sync"

	"github.com/raftka/raftka/metadata"
)

// producerIDBlockSize is how many producer ids a broker reserves from the
// metadata log at a time.
const producerIDBlockSize = 1000

// producerIDAllocator hands out producer ids from blocks reserved in the
// metadata log, so ids stay unique across brokers and restarts.
type producerIDAllocator struct {
	meta   *metadata.Store
	broker int32

	mu   sync.Mutex
	next int64 // next id to hand out; Invariant: next <= end
	end  int64
}

// allocate returns a fresh producer id.
func (a *producerIDAllocator) allocate(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next == a.end {
		start, err := a.meta.AllocateProducerIDs(ctx, a.broker, producerIDBlockSize)
		if err != nil {
			return 0, err
		}
		a.next, a.end = start, start+producerIDBlockSize
	}
	id := a.next
	a.next++
	return id, nil
}
