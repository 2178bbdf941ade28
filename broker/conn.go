package broker

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/raftka/raftka/internal/bufpool"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errMalformed marks a frame that cannot be parsed; the connection closes.
var errMalformed = errors.New("malformed request")

// clientConn is one client connection. Its read goroutine parses requests
// and runs handlers in order; its write goroutine waits for each reply in
// the same order and writes the responses, so responses are never
// reordered while produce and fetch waits overlap. At most
// Config.MaxInflightRequests requests are in flight, which bounds the
// memory one connection can hold to about that many frames.
type clientConn struct {
	b      *Broker
	conn   net.Conn
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	pending chan pendingReply
	// clientID is the client id of the request being dispatched (the
	// request header's); owned by the read goroutine, where handlers run.
	clientID string
}

type pendingReply struct {
	corr    int32
	key     int16
	version int16
	flex    bool
	reply   reply
	start   time.Time
}

// header is a parsed request header.
type header struct {
	key, version int16
	corr         int32
	clientID     *string
}

func (b *Broker) serveConn(ctx context.Context, conn net.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	cc := &clientConn{
		b: b, conn: conn, ctx: ctx, cancel: cancel,
		log:     b.log.With("remote", conn.RemoteAddr().String()),
		pending: make(chan pendingReply, b.cfg.MaxInflightRequests),
	}
	b.metrics.connections.Inc()
	defer b.metrics.connections.Dec()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		cc.writeLoop()
	}()
	err := cc.readLoop()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		// The client is gone or misbehaved: nobody reads the replies, so
		// stop waiting for them. (A drain deadline keeps them: in-flight
		// requests finish during a clean shutdown.)
		cancel()
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil {
		cc.log.Info("closing connection", "err", err)
	}
	close(cc.pending)
	wg.Wait()
	cancel()
	conn.Close()
}

// readLoop reads frames until the connection fails or a frame is malformed.
func (cc *clientConn) readLoop() error {
	r := bufio.NewReaderSize(cc.conn, 64<<10)
	var sizeBuf [4]byte
	for {
		if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		if size < 8 || size > cc.b.cfg.MaxFrameBytes {
			cc.b.metrics.malformed.Inc()
			return fmt.Errorf("%w: frame of %d bytes (limit %d)", errMalformed, size, cc.b.cfg.MaxFrameBytes)
		}
		body := bufpool.Get(int(size))
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		p, err := cc.dispatch(body)
		if err != nil {
			cc.b.metrics.malformed.Inc()
			return err
		}
		if p.key == kmsg.Produce.Int16() {
			// Produce is the one request whose frame is recycled: its
			// handler copies each batch into its proposal before
			// returning, and keeps only copied strings (kmsg's safe
			// ReadFrom) and numbers. Other handlers may keep slices of
			// their frame (group metadata, offsets' metadata), so their
			// frames are left to the garbage collector.
			bufpool.Put(body)
		}
		select {
		case cc.pending <- p:
		case <-cc.ctx.Done():
			return cc.ctx.Err()
		}
	}
}

// parseRequest decodes a request frame. It returns errMalformed for bytes
// that are not a request, and a nil request with the header for a key or
// version this broker does not serve.
func parseRequest(body []byte) (header, kmsg.Request, error) {
	rd := kbin.Reader{Src: body}
	h := header{key: rd.Int16(), version: rd.Int16(), corr: rd.Int32()}
	h.clientID = rd.NullableString()
	if !rd.Ok() {
		return h, nil, fmt.Errorf("%w: short header", errMalformed)
	}
	a, served := apis[h.key]
	if !served || h.version < a.minVersion || h.version > a.maxVersion {
		return h, nil, nil
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		if err := skipHeaderTags(&rd); err != nil {
			return h, nil, err
		}
	}
	if err := req.ReadFrom(rd.Src); err != nil {
		return h, nil, fmt.Errorf("%w: %s v%d: %v", errMalformed, kmsg.NameForKey(h.key), h.version, err)
	}
	return h, req, nil
}

// skipHeaderTags skips the request header's tagged fields. Unlike
// kmsg.SkipTags it refuses a tag count larger than the bytes left, which
// would otherwise loop billions of times on a 15-byte frame.
func skipHeaderTags(rd *kbin.Reader) error {
	n := rd.Uvarint()
	if !rd.Ok() || int(n) > len(rd.Src) {
		return fmt.Errorf("%w: header claims %d tags in %d bytes", errMalformed, n, len(rd.Src))
	}
	for range n {
		rd.Uvarint()
		rd.Span(int(rd.Uvarint()))
		if !rd.Ok() {
			return fmt.Errorf("%w: header tags", errMalformed)
		}
	}
	return nil
}

// dispatch parses one frame and runs its handler.
func (cc *clientConn) dispatch(body []byte) (pendingReply, error) {
	h, req, err := parseRequest(body)
	if err != nil {
		return pendingReply{}, err
	}
	p := pendingReply{corr: h.corr, key: h.key, version: h.version, start: time.Now()}
	cc.clientID = ""
	if h.clientID != nil {
		cc.clientID = *h.clientID
	}
	if req == nil {
		resp, flex, err := unsupportedVersion(h)
		if err != nil {
			return pendingReply{}, err
		}
		p.flex = flex
		p.reply = immediate(resp)
		cc.b.metrics.requests.WithLabelValues(kmsg.NameForKey(h.key), "unsupported").Inc()
		return p, nil
	}
	p.flex = req.IsFlexible()
	p.reply = apis[h.key].handle(cc.b, cc, req)
	return p, nil
}

// unsupportedVersion builds the answer to a request for an API key or
// version this broker does not serve: UNSUPPORTED_VERSION in the response's
// top-level error code. ApiVersions answers at v0 with the versions it does
// serve, as Kafka does (KIP-511), so clients can negotiate down.
func unsupportedVersion(h header) (kmsg.Response, bool, error) {
	if h.key == kmsg.ApiVersions.Int16() {
		resp := apiVersionsResponse(0)
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp, false, nil
	}
	proto := kmsg.ResponseForKey(h.key)
	if proto == nil {
		return nil, false, fmt.Errorf("%w: unknown API key %d", errMalformed, h.key)
	}
	v := h.version
	if v > proto.MaxVersion() {
		v = proto.MaxVersion()
	}
	if v < 0 {
		return nil, false, fmt.Errorf("%w: negative version %d", errMalformed, v)
	}
	proto.SetVersion(v)
	noCode := fmt.Errorf("%w: %s v%d is not served and its response has no error code to say so", errMalformed, kmsg.NameForKey(h.key), h.version)
	f := reflect.ValueOf(proto).Elem().FieldByName("ErrorCode")
	if v != h.version || !f.IsValid() || f.Kind() != reflect.Int16 {
		return nil, false, noCode
	}
	f.SetInt(int64(kerr.UnsupportedVersion.Code))
	// The field exists in the struct at every version but is encoded only
	// at some: check that the client will see it, else close.
	check := kmsg.ResponseForKey(h.key)
	check.SetVersion(v)
	if err := check.ReadFrom(proto.AppendTo(nil)); err != nil {
		return nil, false, noCode
	}
	if reflect.ValueOf(check).Elem().FieldByName("ErrorCode").Int() != int64(kerr.UnsupportedVersion.Code) {
		return nil, false, noCode
	}
	return proto, proto.IsFlexible(), nil
}

// writeLoop writes replies in request order until pending closes.
func (cc *clientConn) writeLoop() {
	w := bufio.NewWriterSize(cc.conn, 64<<10)
	var buf []byte
	broken := false
	for p := range cc.pending {
		if broken {
			continue // drain so the read loop never blocks
		}
		// The next reply may wait (a long poll, a commit): what is
		// already encoded must not wait behind it.
		if w.Buffered() > 0 {
			if err := w.Flush(); err != nil {
				broken = true
				cc.cancel()
				continue
			}
		}
		resp := p.reply(cc.ctx)
		name := kmsg.NameForKey(p.key)
		cc.b.metrics.requestLatency.WithLabelValues(name).Observe(time.Since(p.start).Seconds())
		cc.b.metrics.requests.WithLabelValues(name, "ok").Inc()
		if resp == nil {
			continue
		}
		buf = append(buf[:0], 0, 0, 0, 0)
		buf = binary.BigEndian.AppendUint32(buf, uint32(p.corr))
		if p.flex && p.key != kmsg.ApiVersions.Int16() {
			buf = append(buf, 0) // empty header tags
		}
		buf = resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
		if _, err := w.Write(buf); err != nil {
			broken = true
			cc.cancel()
			continue
		}
		if len(cc.pending) == 0 {
			if err := w.Flush(); err != nil {
				broken = true
				cc.cancel()
				continue
			}
		}
		if cap(buf) > 1<<20 {
			buf = nil // do not pin a large fetch response
		}
	}
	_ = w.Flush()
}
