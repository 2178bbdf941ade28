package broker

// Fuzz targets for the request path: parseRequest (frame bytes to a
// request) and dispatch (a request to its handler's response). Seeds are
// valid requests of the served keys at old and new versions, and cuts of
// them. Run with
//
//	go test -run '^$' -fuzz FuzzParseRequest -fuzztime 20s ./broker/

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fuzzing reports whether the test binary runs with -fuzz. Time limits on
// single inputs apply only then: in plain test runs the seeds share the
// machine with the whole suite under -race.
func fuzzing() bool {
	f := flag.Lookup("test.fuzz")
	return f != nil && f.Value.String() != ""
}

// parseTimeLimit bounds decoding one frame while fuzzing. Frames the
// fuzzer makes are small; decoding one takes microseconds.
const parseTimeLimit = time.Second

// boundDecodeTime fails the fuzz run if decoding body takes longer than
// parseTimeLimit; if it never finishes, the watchdog crashes the worker so
// the fuzzer records the input. It returns the function to defer.
func boundDecodeTime(t *testing.T, body []byte) func() {
	if !fuzzing() {
		return func() {}
	}
	start := time.Now()
	watchdog := time.AfterFunc(10*parseTimeLimit, func() {
		panic(fmt.Sprintf("decoding a %d-byte frame has taken over %v: %x", len(body), 10*parseTimeLimit, body))
	})
	return func() {
		watchdog.Stop()
		if d := time.Since(start); d > parseTimeLimit {
			t.Fatalf("decoding a %d-byte frame took %v", len(body), d)
		}
	}
}

// fuzzSeedRequests are valid requests to seed the fuzzers with.
func fuzzSeedRequests() []kmsg.Request {
	var reqs []kmsg.Request
	batch := recordBatch(batchOpts{producerID: 7, producerEpoch: 0, baseSequence: 0, timestamp: 1_700_000_000_000}, "k1", "value two")
	for _, v := range []int16{3, 9} {
		reqs = append(reqs, produceReq(v, -1, "fuzz", 0, batch))
	}
	for _, v := range []int16{4, 12, 13} {
		req := fetchReq(v, "fuzz", [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, 0, 0)
		req.MaxWaitMillis = 10
		req.Topics[0].Partitions[0].CurrentLeaderEpoch = 1
		req.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "gone", Partitions: []int32{1, 2}}}
		reqs = append(reqs, req)
	}
	for _, v := range []int16{1, 12} {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = v
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("fuzz")
		req.Topics = append(req.Topics, mt)
		reqs = append(reqs, req)
	}
	reqs = append(reqs, apiVersionsReq(3))
	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 5
	ct.TimeoutMillis = 1000
	ct.Topics = []kmsg.CreateTopicsRequestTopic{newTopic("fuzz-new", 2, 1, "retention.ms", "1000")}
	ra := newTopic("fuzz-assigned", -1, -1)
	ra.ReplicaAssignment = []kmsg.CreateTopicsRequestTopicReplicaAssignment{{Partition: 0, Replicas: []int32{1}}}
	ct.Topics = append(ct.Topics, ra)
	reqs = append(reqs, ct)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 8
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fuzz"
	lt.Partitions = []kmsg.ListOffsetsRequestTopicPartition{{Partition: 0, Timestamp: -3, CurrentLeaderEpoch: -1}}
	lo.Topics = append(lo.Topics, lt)
	reqs = append(reqs, lo)
	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	reqs = append(reqs, ip)
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz"}}
	reqs = append(reqs, dc)
	cl := kmsg.NewPtrDescribeClusterRequest()
	cl.Version = 1
	cl.EndpointType = 1
	reqs = append(reqs, cl)
	return reqs
}

// addFuzzSeeds adds each seed request, cuts of it, and a copy at an
// unserved version.
func addFuzzSeeds(f *testing.F) {
	id := "fuzz-client"
	for i, req := range fuzzSeedRequests() {
		body := appendRequest(nil, int32(i), &id, req)
		f.Add(body)
		for _, n := range []int{10, 12, len(body) / 2, len(body) - 1} {
			if n > 0 && n < len(body) {
				f.Add(body[:n])
			}
		}
		other := bytes.Clone(body)
		other[2], other[3] = 0x7f, 0x00 // version 32512
		f.Add(other)
	}
	f.Add([]byte{0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff}) // key 9999
	f.Add([]byte{0, 11, 0, 9, 0, 0, 0, 1, 0xff, 0xff})      // JoinGroup v9, no body
}

func FuzzParseRequest(f *testing.F) {
	addFuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		defer boundDecodeTime(t, body)()
		h, req, err := parseRequest(body)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			if req != nil {
				t.Fatal("a request came back with an error")
			}
			return
		}
		if req == nil {
			// Not served: the answer is an error response, or a close.
			resp, flex, err := unsupportedVersion(h)
			if err != nil {
				if !errors.Is(err, errMalformed) {
					t.Fatalf("unsupportedVersion error %v does not wrap errMalformed", err)
				}
				return
			}
			if resp.Key() != h.key || flex != resp.IsFlexible() {
				t.Fatalf("answer to key %d is key %d, flexible %v/%v", h.key, resp.Key(), flex, resp.IsFlexible())
			}
			if code := reflect.ValueOf(resp).Elem().FieldByName("ErrorCode").Int(); code != int64(kerr.UnsupportedVersion.Code) {
				t.Fatalf("unsupported %s v%d answered with error %d", kmsg.NameForKey(h.key), h.version, code)
			}
			_ = resp.AppendTo(nil)
			return
		}
		a, served := apis[h.key]
		if !served || h.version < a.minVersion || h.version > a.maxVersion {
			t.Fatalf("parsed %s v%d, which is not served", kmsg.NameForKey(h.key), h.version)
		}
		if req.Key() != h.key || req.GetVersion() != h.version {
			t.Fatalf("header says %d v%d, request is %d v%d", h.key, h.version, req.Key(), req.GetVersion())
		}
		// What was parsed encodes, and parses back to the same thing.
		enc := appendRequest(nil, h.corr, h.clientID, req)
		h2, req2, err := parseRequest(enc)
		if err != nil || req2 == nil {
			t.Fatalf("re-encoded %s v%d does not parse: %v (request %v)", kmsg.NameForKey(h.key), h.version, err, req2 != nil)
		}
		if h2.key != h.key || h2.version != h.version || h2.corr != h.corr || !reflect.DeepEqual(h2.clientID, h.clientID) {
			t.Fatalf("header %+v became %+v", h, h2)
		}
		if enc2 := appendRequest(nil, h2.corr, h2.clientID, req2); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s v%d does not re-encode the same:\n%x\n%x", kmsg.NameForKey(h.key), h.version, enc, enc2)
		}
	})
}

// fuzzDispatchSkips are keys FuzzDispatch does not run: they change the
// cluster's topics, and one fuzzed request could ask for 100k partitions.
var fuzzDispatchSkips = map[int16]bool{
	kmsg.CreateTopics.Int16():     true,
	kmsg.DeleteTopics.Int16():     true,
	kmsg.CreatePartitions.Int16(): true,
}

// FuzzDispatch runs fuzzed frames through a live broker's handlers, on a
// connection without a socket: no frame may panic a handler, and every
// response must encode and decode at its version.
func FuzzDispatch(f *testing.F) {
	addFuzzSeeds(f)
	b := startBroker(f, func(c *Config) { c.MaxFetchWait = 20 * time.Millisecond })
	createTopic(f, b.Addr(), "fuzz", 2)
	cc := &clientConn{b: b, ctx: context.Background(), log: b.log}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) >= 2 && fuzzDispatchSkips[int16(body[0])<<8|int16(body[1])] {
			return
		}
		done := boundDecodeTime(t, body)
		p, err := cc.dispatch(body)
		done()
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("dispatch error %v does not wrap errMalformed", err)
			}
			return
		}
		if p.reply == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp := p.reply(ctx)
		if resp == nil {
			return // acks=0
		}
		if resp.Key() != p.key {
			t.Fatalf("request key %d answered with key %d", p.key, resp.Key())
		}
		enc := resp.AppendTo(nil)
		dec := kmsg.ResponseForKey(p.key)
		dec.SetVersion(resp.GetVersion())
		if err := dec.ReadFrom(enc); err != nil {
			t.Fatalf("%s v%d response does not decode: %v", kmsg.NameForKey(p.key), resp.GetVersion(), err)
		}
	})
}

// knownBugCorpus keeps fuzz crashers of fixed bugs that are too slow under
// -race for the automatic seed corpus when the bug is back; the test below
// runs them with a deadline.
// They are not in testdata/fuzz/FuzzParseRequest because each costs the
// suite up to a minute of CPU under -race; move them there once fixed.
const knownBugCorpus = "testdata/fuzz/fixed-bugs/FuzzParseRequest"

// readFuzzCorpusFile decodes a one-value []byte corpus file written by go
// test -fuzz.
func readFuzzCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s is not a one-value []byte fuzz corpus file", path)
	}
	b, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(b)
}

// TestParseRequestBoundsTagWork sends frames whose tag sections claim far
// more tags than they have bytes. Decoding must notice the frame is too
// short at once; a loop over the claimed count costs a core for most of a
// minute per 15-byte frame, a cheap way to starve a broker of CPU.
func TestParseRequestBoundsTagWork(t *testing.T) {
	t.Parallel()
	cases := map[string][]byte{
		// ApiVersions v3, null client id, header tag count 2^32-1.
		"header tags": []byte("\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff\xff\xff\xff\xff\x0f"),
		// ApiVersions v3, no header tags, body: software name and version,
		// then a body tag count of 2^32-1.
		"body tags": []byte("\x00\x12\x00\x03\x00\x00\x00\x01\xff\xff\x00\x02a\x02b\xff\xff\xff\xff\x0f"),
	}
	files, err := filepath.Glob(filepath.Join(knownBugCorpus, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no crashers in %s: %v", knownBugCorpus, err)
	}
	for _, f := range files {
		cases["crasher "+filepath.Base(f)] = readFuzzCorpusFile(t, f)
	}
	for name, frame := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			done := make(chan error, 1)
			go func() {
				_, _, err := parseRequest(frame)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, errMalformed) {
					t.Fatalf("parseRequest: %v, want a malformed request", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatalf("parseRequest of a %d-byte frame still running after 2s", len(frame))
			}
		})
	}
}
