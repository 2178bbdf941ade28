package broker

import (
	"context"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A handler serves one Kafka API. It runs on the connection's read
// goroutine, in request order, and must not block: anything that waits
// (Raft commits, long polls) goes into the returned reply, which the
// connection's write goroutine calls in request order. A nil reply, or a
// reply returning a nil response, sends nothing (acks=0 produce).
type handler func(b *Broker, cc *clientConn, req kmsg.Request) reply

// reply produces the response to one request. ctx ends when the connection
// closes or the broker stops.
type reply func(ctx context.Context) kmsg.Response

// api is one registered Kafka API: its handler and the versions served.
type api struct {
	key        int16
	minVersion int16
	maxVersion int16
	handle     handler
}

// apis is the registry of served APIs, filled by the init functions of the
// per-key files (00_produce.go, 01_fetch.go, ...). ApiVersions is answered
// from it, so an API is advertised exactly when it is served.
var apis = map[int16]api{}

func register(key, minVersion, maxVersion int16, h handler) {
	if _, dup := apis[key]; dup {
		panic("broker: API key registered twice: " + kmsg.NameForKey(key))
	}
	if r := kmsg.RequestForKey(key); r == nil || maxVersion > r.MaxVersion() {
		panic("broker: kmsg cannot encode " + kmsg.NameForKey(key) + " at the registered max version")
	}
	apis[key] = api{key: key, minVersion: minVersion, maxVersion: maxVersion, handle: h}
}

// sortedAPIs returns the registry ordered by key.
func sortedAPIs() []api {
	out := make([]api, 0, len(apis))
	for _, a := range apis {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// immediate wraps a response that is ready now.
func immediate(resp kmsg.Response) reply {
	return func(context.Context) kmsg.Response { return resp }
}
