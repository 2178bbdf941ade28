package bench

import (
	crand "crypto/rand"
	"fmt"
	"math/rand/v2"

	"github.com/twmb/franz-go/pkg/kgo"
)

// payload is a read-only buffer that record values are slices of, so that
// generating a record allocates nothing for its value. Values start at
// random offsets, so consecutive records differ.
type payload []byte

// payloadBytes is the size of the shared buffer: large enough that a
// compressor cannot find one record repeated in the next.
const payloadBytes = 8 << 20

func newPayload(cfg Config) payload {
	buf := make([]byte, max(payloadBytes, 2*cfg.RecordSize.Max))
	switch cfg.Payload {
	case PayloadRandom:
		_, _ = crand.Read(buf)
	case PayloadText:
		rng := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < len(buf); {
			w := vocabulary[rng.IntN(len(vocabulary))]
			i += copy(buf[i:], w)
			if i < len(buf) {
				buf[i] = ' '
				i++
			}
		}
	case PayloadZeros:
	}
	return buf
}

// vocabulary makes text payloads: a few hundred distinct words compress
// roughly as log lines and JSON events do.
var vocabulary = func() []string {
	base := []string{"the", "partition", "leader", "follower", "commit", "offset", "record", "batch",
		"broker", "topic", "consumer", "producer", "raft", "term", "index", "snapshot", "group", "timestamp",
		"error", "info", "debug", "warn", "request", "response", "latency", "ms", "user", "order", "event",
		"status", "ok", "failed", "id", "value", "key", "{", "}", ":", ",", "true", "false", "null"}
	var out []string
	for i, w := range base {
		out = append(out, w)
		for j := range 6 {
			out = append(out, fmt.Sprintf("%s%d", w, (i*7+j*13)%97))
		}
	}
	return out
}()

// newKeys returns the keys of cfg's key distribution, or nil for none.
func newKeys(cfg Config) [][]byte {
	if cfg.Keys == KeysNone {
		return nil
	}
	keys := make([][]byte, cfg.KeyCount)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "key-%08d", i)
	}
	return keys
}

// recordGen makes the records of one producer. It is not safe for
// concurrent use.
type recordGen struct {
	cfg     Config
	payload payload
	keys    [][]byte
	rng     *rand.Rand
	seq     uint64
}

func newRecordGen(cfg Config, p payload, keys [][]byte, seed uint64) *recordGen {
	return &recordGen{cfg: cfg, payload: p, keys: keys, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// size draws a value size.
func (g *recordGen) size() int {
	d := g.cfg.RecordSize
	if d.Fixed() {
		return d.Min
	}
	return d.Min + g.rng.IntN(d.Max-d.Min+1)
}

// next returns a new record. Its value aliases the shared payload, which
// the client only reads.
func (g *recordGen) next() *kgo.Record {
	n := g.size()
	off := g.rng.IntN(len(g.payload) - n + 1)
	rec := &kgo.Record{Value: g.payload[off : off+n : off+n]}
	switch g.cfg.Keys {
	case KeysRandom:
		rec.Key = g.keys[g.rng.IntN(len(g.keys))]
	case KeysSequential:
		rec.Key = g.keys[g.seq%uint64(len(g.keys))]
	}
	g.seq++
	return rec
}
