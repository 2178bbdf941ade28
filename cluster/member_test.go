package cluster

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// goldenMember and goldenMetaHex pin the version-1 meta encoding. Brokers of
// different versions decode each other's metadata: never change these bytes,
// add a new version instead.
var goldenMember = Member{
	ID:         7,
	KafkaAddr:  "10.0.0.7:9092",
	RaftAddr:   "10.0.0.7:9093",
	AdminAddr:  "10.0.0.7:9644",
	Rack:       "us-east-1a",
	Version:    "0.1.0",
	GossipAddr: "10.0.0.7:9094", // not encoded
	Alive:      true,            // not encoded
}

const goldenMetaHex = "" +
	"01" + // version 1
	"00000007" + // id 7
	"0d" + "31302e302e302e373a39303932" + // "10.0.0.7:9092"
	"0d" + "31302e302e302e373a39303933" + // "10.0.0.7:9093"
	"0d" + "31302e302e302e373a39363434" + // "10.0.0.7:9644"
	"0a" + "75732d656173742d3161" + // "us-east-1a"
	"05" + "302e312e30" // "0.1.0"

func TestMetaGoldenEncoding(t *testing.T) {
	t.Parallel()
	got, err := encodeMeta(goldenMember)
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != goldenMetaHex {
		t.Fatalf("encoding changed:\n got %s\nwant %s", h, goldenMetaHex)
	}
	golden, _ := hex.DecodeString(goldenMetaHex)
	m, err := decodeMeta(golden)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenMember
	want.GossipAddr, want.Alive = "", false
	if m != want {
		t.Fatalf("decode = %+v, want %+v", m, want)
	}
}

func TestMetaRoundTrip(t *testing.T) {
	t.Parallel()
	for _, m := range []Member{
		{ID: 1, KafkaAddr: "a:1"},
		{ID: 2147483647, KafkaAddr: "[::1]:9092", Rack: strings.Repeat("r", 200)},
		{ID: -5}, // decodable even if Validate rejects it
	} {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("round trip %+v = %+v, %v", m, got, err)
		}
	}
}

func TestMetaTooLarge(t *testing.T) {
	t.Parallel()
	// 1 version + 4 id + 5 one-byte lengths = 10 bytes, a rack of 127 fits
	// in a one-byte length; reach exactly the limit with the version string.
	m := Member{ID: 1, Rack: strings.Repeat("r", 100)}
	m.Version = strings.Repeat("v", MaxMetaBytes-10-100-1) // two-byte length
	b, err := encodeMeta(m)
	if err != nil {
		t.Fatalf("meta of exactly %d bytes: %v", MaxMetaBytes, err)
	}
	if len(b) != MaxMetaBytes {
		t.Fatalf("len = %d, want %d", len(b), MaxMetaBytes)
	}
	m.Version += "v"
	if _, err := encodeMeta(m); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("meta of %d bytes: err = %v, want ErrMetaTooLarge", MaxMetaBytes+1, err)
	}

	cfg := LocalConfig()
	cfg.Self = testMember(1)
	cfg.Self.Rack = strings.Repeat("r", 600)
	if err := cfg.Validate(); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Validate = %v, want ErrMetaTooLarge", err)
	}
	if _, err := Start(cfg); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Start = %v, want ErrMetaTooLarge", err)
	}
}

func TestMetaDecodeRejectsCorrupt(t *testing.T) {
	t.Parallel()
	golden, _ := hex.DecodeString(goldenMetaHex)
	for name, b := range map[string][]byte{
		"empty":            nil,
		"version 0":        append([]byte{0}, golden[1:]...),
		"truncated id":     golden[:3],
		"truncated string": golden[:len(golden)-1],
		"no strings":       golden[:5],
		"trailing v1":      append(bytes.Clone(golden), 0),
		"huge length":      {1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
	} {
		if m, err := decodeMeta(b); err == nil {
			t.Errorf("%s: decoded %+v, want error", name, m)
		}
	}
}

func TestMetaDecodeNewerVersion(t *testing.T) {
	t.Parallel()
	// A later version appends fields; this version reads what it knows.
	golden, _ := hex.DecodeString(goldenMetaHex)
	b := append(bytes.Clone(golden), 3, 'x', 'y', 'z')
	b[0] = 2
	m, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 7 || m.Version != "0.1.0" {
		t.Fatalf("decoded %+v", m)
	}
}
