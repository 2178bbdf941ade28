package broker

// Tests of what the broker does with bad input: malformed and oversized
// frames, unknown keys and versions, and requests that are well formed but
// wrong (corrupt batches, bad acks, bad names, sequence gaps, stale epochs).
// Each answer is checked on the wire, with requests at exact versions sent
// over a rawConn, and each test checks that the broker keeps serving.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ioTimeout bounds every read and write of a rawConn, so a broker that
// stops answering fails the test instead of hanging it.
const ioTimeout = 15 * time.Second

// rawConn is a Kafka connection driven by hand: requests go out at exactly
// the version they carry, and the test can write bytes that no client would.
type rawConn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

// appendRequest appends a request's header and body (everything after the
// size) to dst, encoded at req's version.
func appendRequest(dst []byte, corr int32, clientID *string, req kmsg.Request) []byte {
	dst = kbin.AppendInt16(dst, req.Key())
	dst = kbin.AppendInt16(dst, req.GetVersion())
	dst = kbin.AppendInt32(dst, corr)
	dst = kbin.AppendNullableString(dst, clientID)
	if req.IsFlexible() {
		dst = append(dst, 0) // no header tags
	}
	return req.AppendTo(dst)
}

// frame prefixes body with its size.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func (r *rawConn) write(b []byte) error {
	if err := r.conn.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
		return err
	}
	_, err := r.conn.Write(b)
	return err
}

// send writes req and returns its correlation id.
func (r *rawConn) send(req kmsg.Request) (int32, error) {
	r.corr++
	id := "raw-test"
	return r.corr, r.write(frame(appendRequest(nil, r.corr, &id, req)))
}

// readFrame reads one response frame.
func (r *rawConn) readFrame() ([]byte, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(r.r, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r.r, body)
	return body, err
}

// recv reads the response to req, decoded at version; it returns the
// correlation id it carried.
func (r *rawConn) recv(req kmsg.Request, version int16) (int32, kmsg.Response, error) {
	body, err := r.readFrame()
	if err != nil {
		return 0, nil, err
	}
	resp := req.ResponseKind()
	resp.SetVersion(version)
	rd := kbin.Reader{Src: body}
	corr := rd.Int32()
	if resp.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		kmsg.SkipTags(&rd)
	}
	if !rd.Ok() {
		return corr, nil, errors.New("short response header")
	}
	if err := resp.ReadFrom(rd.Src); err != nil {
		return corr, nil, fmt.Errorf("decoding %s v%d response: %w", kmsg.NameForKey(req.Key()), version, err)
	}
	return corr, resp, nil
}

// tryRoundTrip sends req and reads its response. It is safe to call from
// any goroutine.
func (r *rawConn) tryRoundTrip(req kmsg.Request) (kmsg.Response, error) {
	corr, err := r.send(req)
	if err != nil {
		return nil, err
	}
	got, resp, err := r.recv(req, req.GetVersion())
	if err != nil {
		return nil, err
	}
	if got != corr {
		return nil, fmt.Errorf("response correlation id %d, want %d", got, corr)
	}
	return resp, nil
}

// roundTrip is tryRoundTrip that fails the test on error.
func roundTrip[R kmsg.Response](r *rawConn, req kmsg.Request) R {
	r.t.Helper()
	resp, err := r.tryRoundTrip(req)
	if err != nil {
		r.t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp.(R)
}

// expectClosed fails the test unless the broker closes the connection
// without sending anything more.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	if err := r.conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		r.t.Fatal(err)
	}
	n, err := r.r.Read(make([]byte, 1))
	switch {
	case n > 0:
		r.t.Fatal("broker answered; want the connection closed")
	case errors.Is(err, os.ErrDeadlineExceeded):
		r.t.Fatalf("connection still open after %v; want it closed", ioTimeout)
	case err == nil:
		r.t.Fatal("read returned nothing and no error")
	}
	// io.EOF or a reset: closed.
}

// expectServing fails the test unless a fresh connection is answered.
func expectServing(t testing.TB, addr string) {
	t.Helper()
	resp := roundTrip[*kmsg.ApiVersionsResponse](dialRaw(t, addr), apiVersionsReq(3))
	if resp.ErrorCode != 0 || len(resp.ApiKeys) == 0 {
		t.Fatalf("ApiVersions on a fresh connection: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
	}
}

func apiVersionsReq(version int16) *kmsg.ApiVersionsRequest {
	req := kmsg.NewPtrApiVersionsRequest()
	req.Version = version
	req.ClientSoftwareName, req.ClientSoftwareVersion = "raftka-test", "1.0"
	return req
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// batchOpts describes a record batch for recordBatch.
type batchOpts struct {
	producerID    int64 // -1: not idempotent
	producerEpoch int16
	baseSequence  int32
	timestamp     int64
}

var plainBatch = batchOpts{producerID: -1, producerEpoch: -1, baseSequence: -1}

// recordBatch encodes a valid, uncompressed magic 2 record batch of values.
func recordBatch(o batchOpts, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte(v)}
		r.Length = int32(len(r.AppendTo(nil)) - 1) // Length 0 encodes in one byte
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{
		Magic:           2,
		LastOffsetDelta: int32(len(values) - 1),
		FirstTimestamp:  o.timestamp,
		MaxTimestamp:    o.timestamp,
		ProducerID:      o.producerID,
		ProducerEpoch:   o.producerEpoch,
		FirstSequence:   o.baseSequence,
		NumRecords:      int32(len(values)),
		Records:         recs,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoliTable))
	return b
}

// produceReq builds a produce request for one partition.
func produceReq(version int16, acks int16, topic string, partition int32, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version = version
	req.Acks = acks
	req.TimeoutMillis = 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// produceOne sends a one-partition produce and returns its partition
// response.
func produceOne(t testing.TB, rc *rawConn, req *kmsg.ProduceRequest) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := roundTrip[*kmsg.ProduceResponse](rc, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response has %d topics, want 1 with 1 partition: %+v", len(resp.Topics), resp.Topics)
	}
	return resp.Topics[0].Partitions[0]
}

// fetchReq builds a fetch of one partition by name (version ≤ 12) or id.
func fetchReq(version int16, topic string, id [16]byte, partition int32, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis = 0
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchOne fetches and returns the one partition response.
func fetchOne(t testing.TB, rc *rawConn, req *kmsg.FetchRequest) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp := roundTrip[*kmsg.FetchResponse](rc, req)
	if resp.ErrorCode != 0 {
		t.Fatalf("fetch: top-level error %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// endOffset returns a partition's high watermark from ListOffsets.
func endOffset(t testing.TB, addr, topic string, partition int32) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	ends, err := kadm.NewClient(newClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	o, ok := ends.Lookup(topic, partition)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s/%d: found %v, err %v", topic, partition, ok, o.Err)
	}
	return o.Offset
}

// wantCode fails the test unless got is want's code; a nil want means no
// error.
func wantCode(t testing.TB, what string, got int16, want *kerr.Error) {
	t.Helper()
	var code int16
	if want != nil {
		code = want.Code
	}
	if got != code {
		t.Fatalf("%s: error %v (%d), want %v (%d)", what, kerr.ErrorForCode(got), got, want, code)
	}
}

// produceConsume checks a fresh client can produce to topic and read the
// record back.
func produceConsume(t *testing.T, addr, topic, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := newClient(t, addr, kgo.DefaultProduceTopic(topic))
	r, err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(value)}).First()
	if err != nil {
		t.Fatalf("produce to %s after bad input: %v", topic, err)
	}
	cons := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {r.Partition: kgo.NewOffset().At(r.Offset)},
	}))
	for {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consume from %s after bad input: %v", topic, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", tp, p, err) })
		var got []string
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		if len(got) > 0 {
			if got[0] != value {
				t.Fatalf("consumed %q, want %q", got[0], value)
			}
			return
		}
	}
}

func TestOversizedFrameClosesOnlyThatConnection(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) { c.MaxFrameBytes = 4096 })
	createTopic(t, b.Addr(), "big", 1)
	bystander := dialRaw(t, b.Addr())
	roundTrip[*kmsg.ApiVersionsResponse](bystander, apiVersionsReq(3))

	// A frame of exactly MaxFrameBytes is allowed (a metadata request padded
	// with a long client id); one byte more is not.
	ok := dialRaw(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 1
	id := strings.Repeat("x", 4096-10-4) // header 10 bytes + id, body: topics array (4)
	body := appendRequest(nil, 1, &id, req)
	if len(body) != 4096 {
		t.Fatalf("test frame is %d bytes, want 4096", len(body))
	}
	if err := ok.write(frame(body)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ok.recv(req, 1); err != nil {
		t.Fatalf("frame of MaxFrameBytes: %v", err)
	}

	bad := dialRaw(t, b.Addr())
	id += "x"
	if err := bad.write(frame(appendRequest(nil, 1, &id, req))); err != nil {
		t.Fatal(err)
	}
	bad.expectClosed()

	// Only the size is read before deciding: a huge size closes at once.
	huge := dialRaw(t, b.Addr())
	if err := huge.write(binary.BigEndian.AppendUint32(nil, 1<<30)); err != nil {
		t.Fatal(err)
	}
	huge.expectClosed()

	roundTrip[*kmsg.ApiVersionsResponse](bystander, apiVersionsReq(3))
	produceConsume(t, b.Addr(), "big", "still serving")
}

func TestMalformedFramesCloseTheConnection(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "after", 1)
	bystander := dialRaw(t, b.Addr())
	roundTrip[*kmsg.ApiVersionsResponse](bystander, apiVersionsReq(3))

	header := func(key, version int16) []byte {
		h := kbin.AppendInt16(nil, key)
		h = kbin.AppendInt16(h, version)
		h = kbin.AppendInt32(h, 7)
		return kbin.AppendNullableString(h, nil)
	}
	cases := []struct {
		name  string
		bytes []byte
	}{
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xFFFFFFF0)},
		{"zero size", binary.BigEndian.AppendUint32(nil, 0)},
		{"size below a header", frame([]byte{0, 18, 0, 3})},
		{"garbage after a valid size", frame([]byte("this is not a kafka request at all"))},
		{"short header", frame([]byte{0, 18, 0, 3, 0, 0, 0, 1, 0x7f, 0x7f})},
		{"truncated body", frame(append(header(kmsg.Metadata.Int16(), 1), 0, 0, 0, 5, 0, 3))},
		{"unknown api key", frame(append(header(9999, 0), 0, 0, 0, 0))},
		{"negative api key", frame(append(header(-1, 0), 0, 0, 0, 0))},
		{"negative version", frame(append(header(kmsg.JoinGroup.Int16(), -1), 0, 0, 0, 0))},
	}
	// The group returns once its parallel cases have finished.
	t.Run("cases", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				rc := dialRaw(t, b.Addr())
				if err := rc.write(tc.bytes); err != nil {
					t.Fatal(err)
				}
				rc.expectClosed()
			})
		}
	})
	if got := counterValue(t, b, "raftka_kafka_malformed_requests_total"); got != float64(len(cases)) {
		t.Errorf("malformed requests counted: %v, want %d", got, len(cases))
	}
	roundTrip[*kmsg.ApiVersionsResponse](bystander, apiVersionsReq(3))
	produceConsume(t, b.Addr(), "after", "still serving")
}

// counterValue reads an unlabelled counter from the broker's registry.
func counterValue(t testing.TB, b *Broker, name string) float64 {
	t.Helper()
	mfs, err := b.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s", name)
	return 0
}

func TestUnservedKeysAndVersions(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)

	t.Run("SaslHandshake", func(t *testing.T) {
		// SaslHandshake is not served but its response has a top-level
		// error code at every version, so it can say UNSUPPORTED_VERSION.
		for _, v := range []int16{0, 1} {
			rc := dialRaw(t, b.Addr())
			req := kmsg.NewPtrSASLHandshakeRequest()
			req.Version = v
			req.Mechanism = "PLAIN"
			resp := roundTrip[*kmsg.SASLHandshakeResponse](rc, req)
			wantCode(t, fmt.Sprintf("SaslHandshake v%d", v), resp.ErrorCode, kerr.UnsupportedVersion)
			// The connection stays usable.
			roundTrip[*kmsg.ApiVersionsResponse](rc, apiVersionsReq(3))
		}
	})

	t.Run("ApiVersions v99", func(t *testing.T) {
		rc := dialRaw(t, b.Addr())
		req := apiVersionsReq(99)
		body := appendRequest(nil, 42, nil, req)
		// A v99 body is unknown to the broker; send a few tag-like bytes.
		if err := rc.write(frame(append(body[:10], 0, 1, 2, 3))); err != nil {
			t.Fatal(err)
		}
		corr, resp, err := rc.recv(req, 0)
		if err != nil {
			t.Fatalf("ApiVersions v99: %v", err)
		}
		av := resp.(*kmsg.ApiVersionsResponse)
		if corr != 42 {
			t.Fatalf("correlation id %d, want 42", corr)
		}
		wantCode(t, "ApiVersions v99", av.ErrorCode, kerr.UnsupportedVersion)
		if len(av.ApiKeys) != len(apis) {
			t.Fatalf("ApiVersions v99 answer lists %d keys, want the %d served", len(av.ApiKeys), len(apis))
		}
		// The client retries at a version both know.
		roundTrip[*kmsg.ApiVersionsResponse](rc, apiVersionsReq(3))
	})

	t.Run("Produce v2", func(t *testing.T) {
		// ProduceResponse has no top-level error code, so the broker
		// cannot say UNSUPPORTED_VERSION; it closes the connection, as
		// Kafka does for a version it cannot parse.
		rc := dialRaw(t, b.Addr())
		req := produceReq(2, -1, "t", 0, recordBatch(plainBatch, "v"))
		if _, err := rc.send(req); err != nil {
			t.Fatal(err)
		}
		rc.expectClosed()
	})

	t.Run("ListOffsets v0", func(t *testing.T) {
		rc := dialRaw(t, b.Addr())
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = 0
		if _, err := rc.send(req); err != nil {
			t.Fatal(err)
		}
		rc.expectClosed()
	})

	t.Run("Metadata v13", func(t *testing.T) {
		// Above the served max: Metadata v13 has a top-level error code.
		rc := dialRaw(t, b.Addr())
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 13
		resp := roundTrip[*kmsg.MetadataResponse](rc, req)
		wantCode(t, "Metadata v13", resp.ErrorCode, kerr.UnsupportedVersion)
	})

	expectServing(t, b.Addr())
}

// TestUnsupportedVersionErrorReachesClient checks, for every key and
// version kmsg knows that the broker does not serve, that the answer from
// unsupportedVersion either closes the connection or carries
// UNSUPPORTED_VERSION in a field that is on the wire at that version.
func TestUnsupportedVersionErrorReachesClient(t *testing.T) {
	t.Parallel()
	for key := int16(0); key < 1000; key++ {
		proto := kmsg.RequestForKey(key)
		if proto == nil {
			continue
		}
		a, served := apis[key]
		for v := int16(0); v <= proto.MaxVersion(); v++ {
			if served && v >= a.minVersion && v <= a.maxVersion {
				continue
			}
			resp, flex, err := unsupportedVersion(header{key: key, version: v})
			if err != nil {
				if !errors.Is(err, errMalformed) {
					t.Errorf("%s v%d: error %v does not wrap errMalformed", kmsg.NameForKey(key), v, err)
				}
				continue // the connection closes: the client learns
			}
			if resp.GetVersion() != v && key != kmsg.ApiVersions.Int16() { // ApiVersions answers at v0 (KIP-511)
				t.Errorf("%s v%d: answered at v%d", kmsg.NameForKey(key), v, resp.GetVersion())
			}
			if flex != resp.IsFlexible() {
				t.Errorf("%s v%d: flexible %v, response says %v", kmsg.NameForKey(key), v, flex, resp.IsFlexible())
			}
			decoded := kmsg.ResponseForKey(key)
			decoded.SetVersion(resp.GetVersion())
			if err := decoded.ReadFrom(resp.AppendTo(nil)); err != nil {
				t.Errorf("%s v%d: answer does not decode: %v", kmsg.NameForKey(key), v, err)
				continue
			}
			if code := reflect.ValueOf(decoded).Elem().FieldByName("ErrorCode").Int(); code != int64(kerr.UnsupportedVersion.Code) {
				t.Errorf("%s v%d: the client decodes error code %d, want UNSUPPORTED_VERSION", kmsg.NameForKey(key), v, code)
			}
		}
	}
}

// TestFetchBelowMinVersionIsRefused is the wire-level view of the bug
// above for the served key it affects: a Fetch v3 must not be answered
// with a normal-looking empty response.
func TestFetchBelowMinVersionIsRefused(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "old", 1)
	rc := dialRaw(t, b.Addr())
	req := fetchReq(3, "old", [16]byte{}, 0, 0)
	if _, err := rc.send(req); err != nil {
		t.Fatal(err)
	}
	rc.expectClosed()
}

func TestProduceRejectsBadBatches(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel() // before the parallel subtests run
	adm := kadm.NewClient(newClient(t, addr))
	small := "1000"
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &small}, "small"); err != nil || r.Err != nil {
		t.Fatalf("create topic small: %v %v", err, r.Err)
	}
	createTopic(t, addr, "bad", 2)

	t.Run("corrupt CRC", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		before := endOffset(t, addr, "bad", 0)
		batch := recordBatch(plainBatch, "one", "two")
		batch[len(batch)-2] ^= 0xff // the last byte of the last record's value
		sp := produceOne(t, rc, produceReq(9, -1, "bad", 0, batch))
		wantCode(t, "produce with a corrupt CRC", sp.ErrorCode, kerr.CorruptMessage)
		if sp.BaseOffset != -1 {
			t.Fatalf("rejected batch got base offset %d", sp.BaseOffset)
		}
		// A batch whose length runs past the payload is corrupt too.
		short := recordBatch(plainBatch, "x")
		sp = produceOne(t, rc, produceReq(3, -1, "bad", 0, short[:len(short)-1]))
		wantCode(t, "produce with a truncated batch", sp.ErrorCode, kerr.CorruptMessage)
		if after := endOffset(t, addr, "bad", 0); after != before {
			t.Fatalf("end offset moved from %d to %d after corrupt batches", before, after)
		}
	})

	t.Run("too large", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		sp := produceOne(t, rc, produceReq(9, -1, "small", 0, recordBatch(plainBatch, strings.Repeat("v", 2000))))
		wantCode(t, "produce of a 2000-byte batch to max.message.bytes=1000", sp.ErrorCode, kerr.MessageTooLarge)
		sp = produceOne(t, rc, produceReq(9, -1, "small", 0, recordBatch(plainBatch, strings.Repeat("v", 500))))
		wantCode(t, "produce of a 500-byte-value batch to max.message.bytes=1000", sp.ErrorCode, nil)
		if end := endOffset(t, addr, "small", 0); end != 1 {
			t.Fatalf("end offset %d, want 1 (only the small batch)", end)
		}
		// A real client gets the same answer.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cl := newClient(t, addr, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchCompression(kgo.NoCompression()))
		err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("v", 2000))}).FirstErr()
		if !errors.Is(err, kerr.MessageTooLarge) {
			t.Fatalf("kgo produce of a too-large record: %v, want MESSAGE_TOO_LARGE", err)
		}
	})

	t.Run("acks=2", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		before := endOffset(t, addr, "bad", 1)
		sp := produceOne(t, rc, produceReq(9, 2, "bad", 1, recordBatch(plainBatch, "v")))
		wantCode(t, "produce with acks=2", sp.ErrorCode, kerr.InvalidRequiredAcks)
		if after := endOffset(t, addr, "bad", 1); after != before {
			t.Fatalf("end offset moved from %d to %d after acks=2", before, after)
		}
	})

	t.Run("unknown topic or partition", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		sp := produceOne(t, rc, produceReq(9, -1, "no-such-topic", 0, recordBatch(plainBatch, "v")))
		wantCode(t, "produce to an unknown topic", sp.ErrorCode, kerr.UnknownTopicOrPartition)
		for _, p := range []int32{99, 2, -1} {
			sp = produceOne(t, rc, produceReq(9, -1, "bad", p, recordBatch(plainBatch, "v")))
			wantCode(t, fmt.Sprintf("produce to partition %d of a 2-partition topic", p), sp.ErrorCode, kerr.UnknownTopicOrPartition)
		}
	})

	t.Run("no records", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		sp := produceOne(t, rc, produceReq(9, -1, "bad", 0, nil))
		if sp.ErrorCode == 0 {
			t.Fatal("produce without a record batch succeeded")
		}
		old := recordBatch(plainBatch, "v")
		old[16] = 1 // magic 1
		sp = produceOne(t, rc, produceReq(9, -1, "bad", 0, old))
		wantCode(t, "produce of a magic 1 batch", sp.ErrorCode, kerr.UnsupportedForMessageFormat)
	})
}

func TestInvalidTopicNames(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	rc := dialRaw(t, b.Addr())
	names := []string{"bad/name", "", ".", "..", strings.Repeat("a", 250), "spaces in name", "ünïcode"}
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 10_000
	for _, n := range names {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = n, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	resp := roundTrip[*kmsg.CreateTopicsResponse](rc, req)
	if len(resp.Topics) != len(names) {
		t.Fatalf("CreateTopics answered %d topics, want %d", len(resp.Topics), len(names))
	}
	for i, st := range resp.Topics {
		if st.Topic != names[i] {
			t.Errorf("answer %d is for %q, want %q", i, st.Topic, names[i])
		}
		wantCode(t, fmt.Sprintf("CreateTopics %q", st.Topic), st.ErrorCode, kerr.InvalidTopicException)
	}
	// 249 characters is the limit, and allowed.
	ok := kmsg.NewPtrCreateTopicsRequest()
	ok.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = strings.Repeat("a", 249), 1, 1
	ok.Topics = append(ok.Topics, rt)
	wantCode(t, "CreateTopics of a 249-character name", roundTrip[*kmsg.CreateTopicsResponse](rc, ok).Topics[0].ErrorCode, nil)

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	for _, n := range []string{"bad/name", strings.Repeat("b", 250), "no-such-topic"} {
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr(n)
		md.Topics = append(md.Topics, mt)
	}
	mresp := roundTrip[*kmsg.MetadataResponse](rc, md)
	want := []*kerr.Error{kerr.InvalidTopicException, kerr.InvalidTopicException, kerr.UnknownTopicOrPartition}
	if len(mresp.Topics) != len(want) {
		t.Fatalf("Metadata answered %d topics, want %d", len(mresp.Topics), len(want))
	}
	for i, st := range mresp.Topics {
		wantCode(t, fmt.Sprintf("Metadata for %q", *md.Topics[i].Topic), st.ErrorCode, want[i])
	}
	// Nothing invalid was created.
	all := roundTrip[*kmsg.MetadataResponse](rc, kmsg.NewPtrMetadataRequest())
	if len(all.Topics) != 1 {
		t.Fatalf("cluster has %d topics after invalid creates, want 1", len(all.Topics))
	}
}

func TestIdempotentSequenceChecks(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "idem", 1)
	rc := dialRaw(t, addr)

	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 4
	init.TransactionTimeoutMillis = -1
	ir := roundTrip[*kmsg.InitProducerIDResponse](rc, init)
	if ir.ErrorCode != 0 || ir.ProducerID < 0 || ir.ProducerEpoch != 0 {
		t.Fatalf("InitProducerID: error %d, id %d, epoch %d", ir.ErrorCode, ir.ProducerID, ir.ProducerEpoch)
	}
	// Ids are unique.
	if ir2 := roundTrip[*kmsg.InitProducerIDResponse](rc, init); ir2.ProducerID == ir.ProducerID {
		t.Fatalf("two InitProducerID calls returned the same id %d", ir.ProducerID)
	}
	pid := ir.ProducerID

	// Some plain records first, so the idempotent base offset is not 0.
	sp := produceOne(t, rc, produceReq(9, -1, "idem", 0, recordBatch(plainBatch, "a", "b")))
	wantCode(t, "plain produce", sp.ErrorCode, nil)

	seq0 := recordBatch(batchOpts{producerID: pid, producerEpoch: 0, baseSequence: 0}, "s0", "s1", "s2")
	first := produceOne(t, rc, produceReq(9, -1, "idem", 0, seq0))
	wantCode(t, "idempotent seq 0", first.ErrorCode, nil)
	if first.BaseOffset != 2 {
		t.Fatalf("idempotent batch base offset %d, want 2", first.BaseOffset)
	}
	end := endOffset(t, addr, "idem", 0)
	if end != 5 {
		t.Fatalf("end offset %d, want 5", end)
	}

	gap := recordBatch(batchOpts{producerID: pid, producerEpoch: 0, baseSequence: 5}, "s5")
	sp = produceOne(t, rc, produceReq(9, -1, "idem", 0, gap))
	wantCode(t, "idempotent seq 5 after 0-2", sp.ErrorCode, kerr.OutOfOrderSequenceNumber)

	again := produceOne(t, rc, produceReq(9, -1, "idem", 0, seq0))
	wantCode(t, "resent seq 0 batch", again.ErrorCode, nil)
	if again.BaseOffset != first.BaseOffset {
		t.Fatalf("resent batch base offset %d, want the original %d", again.BaseOffset, first.BaseOffset)
	}
	if got := endOffset(t, addr, "idem", 0); got != end {
		t.Fatalf("end offset moved from %d to %d after a gap and a duplicate", end, got)
	}

	// The next sequence is accepted, and an older epoch is not.
	next := produceOne(t, rc, produceReq(9, -1, "idem", 0, recordBatch(batchOpts{producerID: pid, producerEpoch: 0, baseSequence: 3}, "s3")))
	wantCode(t, "idempotent seq 3", next.ErrorCode, nil)
	if next.BaseOffset != end {
		t.Fatalf("seq 3 base offset %d, want %d", next.BaseOffset, end)
	}
	bumped := produceOne(t, rc, produceReq(9, -1, "idem", 0, recordBatch(batchOpts{producerID: pid, producerEpoch: 1, baseSequence: 0}, "e1")))
	wantCode(t, "idempotent epoch 1 seq 0", bumped.ErrorCode, nil)
	stale := produceOne(t, rc, produceReq(9, -1, "idem", 0, recordBatch(batchOpts{producerID: pid, producerEpoch: 0, baseSequence: 4}, "old")))
	wantCode(t, "idempotent epoch 0 after epoch 1", stale.ErrorCode, kerr.InvalidProducerEpoch)

	// A new producer must start at sequence 0.
	fresh := roundTrip[*kmsg.InitProducerIDResponse](rc, init)
	sp = produceOne(t, rc, produceReq(9, -1, "idem", 0, recordBatch(batchOpts{producerID: fresh.ProducerID, producerEpoch: 0, baseSequence: 1}, "x")))
	wantCode(t, "new producer at seq 1", sp.ErrorCode, kerr.OutOfOrderSequenceNumber)

	// Transactional ids are refused rather than half served.
	txn := kmsg.NewPtrInitProducerIDRequest()
	txn.TransactionalID = kmsg.StringPtr("tx")
	txn.TransactionTimeoutMillis = 10_000
	wantCode(t, "transactional InitProducerID", roundTrip[*kmsg.InitProducerIDResponse](rc, txn).ErrorCode, kerr.TransactionalIDAuthorizationFailed)

	want := []string{"a", "b", "s0", "s1", "s2", "s3", "e1"}
	got := consumeAll(t, addr, "idem", len(want))[0]
	if !slices.Equal(got, want) {
		t.Fatalf("log holds %q, want %q", got, want)
	}
}

func TestFetchErrors(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "fe", 1)
	rc := dialRaw(t, addr)
	sp := produceOne(t, rc, produceReq(9, -1, "fe", 0, recordBatch(plainBatch, "a", "b", "c")))
	wantCode(t, "produce", sp.ErrorCode, nil)

	t.Run("session id", func(t *testing.T) {
		req := fetchReq(12, "fe", [16]byte{}, 0, 0)
		req.SessionID, req.SessionEpoch = 1234, 1
		resp := roundTrip[*kmsg.FetchResponse](rc, req)
		wantCode(t, "fetch with session id 1234", resp.ErrorCode, kerr.FetchSessionIDNotFound)
		if resp.SessionID != 0 {
			t.Fatalf("response session id %d, want 0", resp.SessionID)
		}
	})

	t.Run("offset out of range", func(t *testing.T) {
		for _, off := range []int64{4, 1000, -5} {
			p := fetchOne(t, rc, fetchReq(12, "fe", [16]byte{}, 0, off))
			wantCode(t, fmt.Sprintf("fetch at %d with high watermark 3", off), p.ErrorCode, kerr.OffsetOutOfRange)
			if p.HighWatermark != 3 || len(p.RecordBatches) != 0 {
				t.Fatalf("fetch at %d: high watermark %d, %d bytes", off, p.HighWatermark, len(p.RecordBatches))
			}
		}
		// At the high watermark is in range, and empty.
		p := fetchOne(t, rc, fetchReq(12, "fe", [16]byte{}, 0, 3))
		wantCode(t, "fetch at the high watermark", p.ErrorCode, nil)
		if len(p.RecordBatches) != 0 {
			t.Fatalf("fetch at the high watermark returned %d bytes", len(p.RecordBatches))
		}
	})

	t.Run("unknown partition", func(t *testing.T) {
		p := fetchOne(t, rc, fetchReq(12, "fe", [16]byte{}, 7, 0))
		wantCode(t, "fetch of partition 7", p.ErrorCode, kerr.UnknownTopicOrPartition)
		p = fetchOne(t, rc, fetchReq(12, "nope", [16]byte{}, 0, 0))
		wantCode(t, "fetch of an unknown topic", p.ErrorCode, kerr.UnknownTopicOrPartition)
		p = fetchOne(t, rc, fetchReq(13, "", [16]byte{1, 2, 3}, 0, 0))
		wantCode(t, "fetch of an unknown topic id", p.ErrorCode, kerr.UnknownTopicID)
	})

	t.Run("leader epoch", func(t *testing.T) {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = 12
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("fe")
		md.Topics = append(md.Topics, mt)
		mresp := roundTrip[*kmsg.MetadataResponse](rc, md)
		epoch := mresp.Topics[0].Partitions[0].LeaderEpoch
		if epoch < 0 {
			t.Fatalf("leader epoch %d", epoch)
		}
		check := func(clientEpoch int32, want *kerr.Error) {
			t.Helper()
			req := fetchReq(12, "fe", [16]byte{}, 0, 0)
			req.Topics[0].Partitions[0].CurrentLeaderEpoch = clientEpoch
			p := fetchOne(t, rc, req)
			wantCode(t, fmt.Sprintf("fetch with epoch %d, leader's %d", clientEpoch, epoch), p.ErrorCode, want)
			if want != nil && len(p.RecordBatches) != 0 {
				t.Fatalf("fetch with epoch %d returned records", clientEpoch)
			}
			lo := kmsg.NewPtrListOffsetsRequest()
			lo.Version = 8
			lt := kmsg.NewListOffsetsRequestTopic()
			lt.Topic = "fe"
			lp := kmsg.NewListOffsetsRequestTopicPartition()
			lp.Timestamp, lp.CurrentLeaderEpoch = -1, clientEpoch
			lt.Partitions = append(lt.Partitions, lp)
			lo.Topics = append(lo.Topics, lt)
			lr := roundTrip[*kmsg.ListOffsetsResponse](rc, lo)
			wantCode(t, fmt.Sprintf("list offsets with epoch %d, leader's %d", clientEpoch, epoch), lr.Topics[0].Partitions[0].ErrorCode, want)
		}
		check(-1, nil)
		check(epoch, nil)
		check(epoch+1, kerr.UnknownLeaderEpoch)
		check(epoch+100, kerr.UnknownLeaderEpoch)
		if epoch > 0 {
			check(epoch-1, kerr.FencedLeaderEpoch)
		}
	})
}

// TestBrokerMaxMessageBytesIsTheTopicDefault checks Config.MaxMessageBytes
// (Kafka's message.max.bytes) limits batches to topics that do not set
// max.message.bytes, as its doc says.
func TestBrokerMaxMessageBytesIsTheTopicDefault(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) { c.MaxMessageBytes = 2000 })
	createTopic(t, b.Addr(), "dflt", 1)
	rc := dialRaw(t, b.Addr())
	sp := produceOne(t, rc, produceReq(9, -1, "dflt", 0, recordBatch(plainBatch, strings.Repeat("x", 5000))))
	wantCode(t, "produce of 5000 bytes with broker max-message-bytes=2000", sp.ErrorCode, kerr.MessageTooLarge)

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "dflt"
	rr.ConfigNames = []string{"max.message.bytes"}
	req.Resources = append(req.Resources, rr)
	resp := roundTrip[*kmsg.DescribeConfigsResponse](rc, req)
	if cs := resp.Resources[0].Configs; len(cs) != 1 || cs[0].Value == nil || *cs[0].Value != "2000" {
		t.Fatalf("topic max.message.bytes described as %+v, want the broker's 2000", cs)
	}
}

// TestProduceOfSeveralBatchesIsAllOrError sends five batches for one
// partition in one request while Raft can hold little uncommitted data, so
// proposing the later batches fails. The partition's answer must then be an
// error, or every batch must be in the log: a success that covers only the
// first batch silently loses the rest.
func TestProduceOfSeveralBatchesIsAllOrError(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) { c.Raft.MaxUncommittedBytes = 1024 })
	createTopic(t, b.Addr(), "multi", 1)
	rc := dialRaw(t, b.Addr())
	var records []byte
	for i := range 5 {
		records = append(records, recordBatch(plainBatch, strings.Repeat(string(rune('a'+i)), 2000))...)
	}
	sp := produceOne(t, rc, produceReq(9, -1, "multi", 0, records))
	end := endOffset(t, b.Addr(), "multi", 0)
	if sp.ErrorCode == 0 && end != 5 {
		t.Fatalf("produce of 5 batches succeeded at base offset %d, but the log ends at %d", sp.BaseOffset, end)
	}
}
