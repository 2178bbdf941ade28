package broker

// Tests of each served API's answers on the wire, at the versions clients
// use, with raw requests (rawConn, see badinput_test.go) where the version
// or a field matters, and franz-go clients where behaviour does.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataFor asks for one topic's metadata at v12.
func metadataFor(t testing.TB, rc *rawConn, topic string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, mt)
	resp := roundTrip[*kmsg.MetadataResponse](rc, req)
	if len(resp.Topics) != 1 {
		t.Fatalf("Metadata for %s answered %d topics", topic, len(resp.Topics))
	}
	return resp.Topics[0]
}

// batchValues decodes the values of uncompressed record batches as
// returned by Fetch, checking each record's offset follows from the batch's
// base offset.
func batchValues(t testing.TB, raw []byte) (values []string, offsets []int64) {
	t.Helper()
	for len(raw) > 0 {
		if len(raw) < 61 {
			t.Fatalf("%d trailing bytes after the last batch", len(raw))
		}
		n := int(binary.BigEndian.Uint32(raw[8:])) + 12
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(raw[:n]); err != nil {
			t.Fatalf("decoding record batch: %v", err)
		}
		if rb.Attributes&0x07 != 0 {
			t.Fatalf("batch is compressed (codec %d)", rb.Attributes&0x07)
		}
		recs := rb.Records
		for range rb.NumRecords {
			l, w := binary.Varint(recs)
			if w <= 0 || int(l)+w > len(recs) {
				t.Fatal("truncated record")
			}
			var r kmsg.Record
			if err := r.ReadFrom(recs[:w+int(l)]); err != nil {
				t.Fatalf("decoding record: %v", err)
			}
			values = append(values, string(r.Value))
			offsets = append(offsets, rb.FirstOffset+int64(r.OffsetDelta))
			recs = recs[w+int(l):]
		}
		raw = raw[n:]
	}
	return values, offsets
}

func TestApiVersionsListsServedKeys(t *testing.T) {
	t.Parallel()
	// Kafka 3.7's versions, except where Raftka serves less.
	want := map[int16][2]int16{
		0:  {3, 10}, // Produce
		1:  {4, 16}, // Fetch
		2:  {1, 8},  // ListOffsets
		3:  {0, 12}, // Metadata
		8:  {0, 8},  // OffsetCommit
		9:  {0, 8},  // OffsetFetch
		10: {0, 4},  // FindCoordinator
		11: {0, 9},  // JoinGroup
		12: {0, 4},  // Heartbeat
		13: {0, 5},  // LeaveGroup
		14: {0, 5},  // SyncGroup
		15: {0, 5},  // DescribeGroups
		16: {0, 4},  // ListGroups
		18: {0, 3},  // ApiVersions
		19: {0, 7},  // CreateTopics
		20: {0, 6},  // DeleteTopics
		22: {0, 4},  // InitProducerId
		23: {0, 4},  // OffsetForLeaderEpoch
		32: {0, 4},  // DescribeConfigs
		37: {0, 3},  // CreatePartitions
		42: {0, 2},  // DeleteGroups
		45: {0, 0},  // AlterPartitionReassignments
		46: {0, 0},  // ListPartitionReassignments
		47: {0, 0},  // OffsetDelete
		60: {0, 1},  // DescribeCluster
	}
	// The registry is what ApiVersions is built from.
	if len(apis) != len(want) {
		t.Errorf("registry holds %d APIs, want %d", len(apis), len(want))
	}
	for k, a := range apis {
		if w, ok := want[k]; !ok || w != [2]int16{a.minVersion, a.maxVersion} {
			t.Errorf("registry: %s v%d-%d, want %v (listed %v)", kmsg.NameForKey(k), a.minVersion, a.maxVersion, w, ok)
		}
	}

	b := startBroker(t, nil)
	rc := dialRaw(t, b.Addr())
	for v := int16(0); v <= 3; v++ {
		resp := roundTrip[*kmsg.ApiVersionsResponse](rc, apiVersionsReq(v))
		wantCode(t, fmt.Sprintf("ApiVersions v%d", v), resp.ErrorCode, nil)
		got := map[int16][2]int16{}
		for i, k := range resp.ApiKeys {
			if i > 0 && resp.ApiKeys[i-1].ApiKey >= k.ApiKey {
				t.Errorf("ApiVersions v%d: keys not in ascending order at %d", v, k.ApiKey)
			}
			got[k.ApiKey] = [2]int16{k.MinVersion, k.MaxVersion}
		}
		if len(got) != len(want) {
			t.Errorf("ApiVersions v%d lists %d keys, want %d: %v", v, len(got), len(want), got)
		}
		for k, w := range want {
			if got[k] != w {
				t.Errorf("ApiVersions v%d: %s versions %v, want %v", v, kmsg.NameForKey(k), got[k], w)
			}
		}
	}

	// franz-go negotiates from the same list.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vs, err := kadm.NewClient(newClient(t, b.Addr())).ApiVersions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("kadm ApiVersions from %d brokers, want 1", len(vs))
	}
	vs.Each(func(bv kadm.BrokerApiVersions) {
		if bv.Err != nil {
			t.Fatalf("kadm ApiVersions from %d: %v", bv.NodeID, bv.Err)
		}
		for k, w := range want {
			if lo, hi, ok := bv.KeyVersions(k); !ok || lo != w[0] || hi != w[1] {
				t.Errorf("kadm sees %s v%d-%d (%v), want %v", kmsg.NameForKey(k), lo, hi, ok, w)
			}
		}
	})
}

func TestMetadataDescribesBrokerTopicsAndLeaders(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "md", 3)
	createTopic(t, addr, "md-other", 1)
	host, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	rc := dialRaw(t, addr)

	checkBrokers := func(what string, brokers []kmsg.MetadataResponseBroker, controller int32) {
		t.Helper()
		if len(brokers) != 1 || brokers[0].NodeID != 1 || brokers[0].Host != host || brokers[0].Port != int32(port) {
			t.Fatalf("%s: brokers %+v, want node 1 at %s", what, brokers, addr)
		}
		if controller != 1 {
			t.Fatalf("%s: controller id %d, want 1", what, controller)
		}
	}

	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("md")
	req.Topics = append(req.Topics, mt)
	resp := roundTrip[*kmsg.MetadataResponse](rc, req)
	checkBrokers("Metadata v12", resp.Brokers, resp.ControllerID)
	if resp.ClusterID == nil || *resp.ClusterID != "raftka" {
		t.Fatalf("cluster id %v, want raftka", resp.ClusterID)
	}
	if len(resp.Topics) != 1 {
		t.Fatalf("Metadata for md answered %d topics", len(resp.Topics))
	}
	st := resp.Topics[0]
	wantCode(t, "Metadata for md", st.ErrorCode, nil)
	if st.Topic == nil || *st.Topic != "md" || st.TopicID == ([16]byte{}) {
		t.Fatalf("topic %v id %x", st.Topic, st.TopicID)
	}
	if len(st.Partitions) != 3 {
		t.Fatalf("md has %d partitions, want 3", len(st.Partitions))
	}
	for i, p := range st.Partitions {
		if p.Partition != int32(i) {
			t.Fatalf("partition %d listed at %d", p.Partition, i)
		}
		wantCode(t, fmt.Sprintf("md/%d", i), p.ErrorCode, nil)
		if p.Leader != 1 || p.LeaderEpoch < 0 {
			t.Fatalf("md/%d: leader %d epoch %d, want leader 1 with an epoch", i, p.Leader, p.LeaderEpoch)
		}
		if !slices.Equal(p.Replicas, []int32{1}) || !slices.Equal(p.ISR, []int32{1}) || len(p.OfflineReplicas) != 0 {
			t.Fatalf("md/%d: replicas %v isr %v offline %v", i, p.Replicas, p.ISR, p.OfflineReplicas)
		}
		// The leader epoch is the one ListOffsets and Fetch check against.
		lo := kmsg.NewPtrListOffsetsRequest()
		lo.Version = 8
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = "md"
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = int32(i), -1, p.LeaderEpoch
		lt.Partitions = append(lt.Partitions, lp)
		lo.Topics = append(lo.Topics, lt)
		lr := roundTrip[*kmsg.ListOffsetsResponse](rc, lo).Topics[0].Partitions[0]
		wantCode(t, fmt.Sprintf("ListOffsets md/%d at the metadata epoch", i), lr.ErrorCode, nil)
		if lr.LeaderEpoch != p.LeaderEpoch {
			t.Fatalf("md/%d: ListOffsets leader epoch %d, Metadata %d", i, lr.LeaderEpoch, p.LeaderEpoch)
		}
	}

	// By topic id (v10+).
	byID := kmsg.NewPtrMetadataRequest()
	byID.Version = 12
	it := kmsg.NewMetadataRequestTopic()
	it.TopicID = st.TopicID
	byID.Topics = append(byID.Topics, it)
	unknownID := kmsg.NewMetadataRequestTopic()
	unknownID.TopicID = [16]byte{9, 9, 9}
	byID.Topics = append(byID.Topics, unknownID)
	ir := roundTrip[*kmsg.MetadataResponse](rc, byID)
	if len(ir.Topics) != 2 || ir.Topics[0].Topic == nil || *ir.Topics[0].Topic != "md" || len(ir.Topics[0].Partitions) != 3 {
		t.Fatalf("Metadata by id: %+v", ir.Topics)
	}
	wantCode(t, "Metadata for an unknown topic id", ir.Topics[1].ErrorCode, kerr.UnknownTopicID)

	// All topics: a null list at v1+, an empty list at v0; an empty list
	// at v1+ asks for none.
	names := func(ts []kmsg.MetadataResponseTopic) []string {
		var out []string
		for _, t := range ts {
			out = append(out, *t.Topic)
		}
		slices.Sort(out)
		return out
	}
	for _, v := range []int16{0, 1, 4, 9, 12} {
		all := kmsg.NewPtrMetadataRequest()
		all.Version = v
		if v == 0 {
			all.Topics = []kmsg.MetadataRequestTopic{}
		}
		ar := roundTrip[*kmsg.MetadataResponse](rc, all)
		if got := names(ar.Topics); !slices.Equal(got, []string{"md", "md-other"}) {
			t.Fatalf("Metadata v%d for all topics: %v", v, got)
		}
		if v >= 1 {
			checkBrokers(fmt.Sprintf("Metadata v%d", v), ar.Brokers, ar.ControllerID)
		}
	}
	none := kmsg.NewPtrMetadataRequest()
	none.Version = 12
	none.Topics = []kmsg.MetadataRequestTopic{}
	if nr := roundTrip[*kmsg.MetadataResponse](rc, none); len(nr.Topics) != 0 {
		t.Fatalf("Metadata for no topics answered %d", len(nr.Topics))
	}
}

func TestMetadataAutoCreatesTopicsWhenAllowed(t *testing.T) {
	t.Parallel()
	b := startBroker(t, func(c *Config) { c.AutoCreateTopics = true; c.DefaultPartitions = 2 })
	rc := dialRaw(t, b.Addr())
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 12
	req.AllowAutoTopicCreation = false
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("auto")
	req.Topics = append(req.Topics, mt)
	wantCode(t, "Metadata without auto-creation", roundTrip[*kmsg.MetadataResponse](rc, req).Topics[0].ErrorCode, kerr.UnknownTopicOrPartition)
	req.AllowAutoTopicCreation = true
	st := roundTrip[*kmsg.MetadataResponse](rc, req).Topics[0]
	wantCode(t, "Metadata with auto-creation", st.ErrorCode, nil)
	if len(st.Partitions) != 2 || st.Partitions[0].Leader != 1 {
		t.Fatalf("auto-created topic: %+v", st.Partitions)
	}
	// Invalid names are not created.
	bad := kmsg.NewPtrMetadataRequest()
	bad.Version = 12
	bad.AllowAutoTopicCreation = true
	bt := kmsg.NewMetadataRequestTopic()
	bt.Topic = kmsg.StringPtr("bad/name")
	bad.Topics = append(bad.Topics, bt)
	wantCode(t, "Metadata auto-creating an invalid name", roundTrip[*kmsg.MetadataResponse](rc, bad).Topics[0].ErrorCode, kerr.InvalidTopicException)
}

func createTopicsReq(validateOnly bool, topics ...kmsg.CreateTopicsRequestTopic) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.Version = 7
	req.TimeoutMillis = 10_000
	req.ValidateOnly = validateOnly
	req.Topics = topics
	return req
}

func newTopic(name string, partitions int32, rf int16, configs ...string) kmsg.CreateTopicsRequestTopic {
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	return rt
}

func TestCreateTopics(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	rc := dialRaw(t, addr)

	resp := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(false, newTopic("ct", 2, 1, "retention.ms", "1000")))
	st := resp.Topics[0]
	wantCode(t, "CreateTopics ct", st.ErrorCode, nil)
	if st.TopicID == ([16]byte{}) || st.NumPartitions != 2 || st.ReplicationFactor != 1 {
		t.Fatalf("CreateTopics ct: id %x, %d partitions, rf %d", st.TopicID, st.NumPartitions, st.ReplicationFactor)
	}
	if len(st.Configs) != len(metadata.TopicConfigs) {
		t.Fatalf("CreateTopics ct lists %d configs, want %d", len(st.Configs), len(metadata.TopicConfigs))
	}
	for _, c := range st.Configs {
		if c.Name == "retention.ms" && (c.Value == nil || *c.Value != "1000" || c.Source != 1) {
			t.Fatalf("retention.ms: %v source %d, want 1000 from DYNAMIC_TOPIC_CONFIG", c.Value, c.Source)
		}
	}
	if md := metadataFor(t, rc, "ct"); md.TopicID != st.TopicID {
		t.Fatalf("Metadata topic id %x, CreateTopics said %x", md.TopicID, st.TopicID)
	}
	// The topic is usable as soon as CreateTopics answers.
	for p := int32(0); p < 2; p++ {
		sp := produceOne(t, rc, produceReq(9, -1, "ct", p, recordBatch(plainBatch, "first")))
		wantCode(t, fmt.Sprintf("produce right after create to ct/%d", p), sp.ErrorCode, nil)
	}

	dup := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(false, newTopic("ct", 2, 1)))
	wantCode(t, "CreateTopics ct again", dup.Topics[0].ErrorCode, kerr.TopicAlreadyExists)
	dupVO := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(true, newTopic("ct", 2, 1)))
	wantCode(t, "validate-only CreateTopics ct again", dupVO.Topics[0].ErrorCode, kerr.TopicAlreadyExists)

	vo := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(true, newTopic("vo", 4, 1)))
	wantCode(t, "validate-only CreateTopics vo", vo.Topics[0].ErrorCode, nil)
	if vo.Topics[0].NumPartitions != 4 {
		t.Fatalf("validate-only answer has %d partitions, want 4", vo.Topics[0].NumPartitions)
	}
	wantCode(t, "Metadata for validated-only vo", metadataFor(t, rc, "vo").ErrorCode, kerr.UnknownTopicOrPartition)
	created := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(false, newTopic("vo", 4, 1)))
	wantCode(t, "CreateTopics vo after validate-only", created.Topics[0].ErrorCode, nil)

	// Defaults, and what is refused.
	def := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(false, newTopic("defaults", -1, -1)))
	wantCode(t, "CreateTopics with -1 partitions and rf", def.Topics[0].ErrorCode, nil)
	if def.Topics[0].NumPartitions != 1 || def.Topics[0].ReplicationFactor != 1 {
		t.Fatalf("defaults: %d partitions, rf %d", def.Topics[0].NumPartitions, def.Topics[0].ReplicationFactor)
	}
	bad := roundTrip[*kmsg.CreateTopicsResponse](rc, createTopicsReq(false,
		newTopic("zero", 0, 1),
		newTopic("rf2", 1, 2),
		newTopic("cfg", 1, 1, "no.such.config", "1"),
		newTopic("cfgval", 1, 1, "retention.ms", "soon"),
		newTopic("twice", 1, 1),
		newTopic("twice", 1, 1),
	))
	wantErrs := []*kerr.Error{kerr.InvalidPartitions, kerr.InvalidReplicationFactor, kerr.InvalidConfig, kerr.InvalidConfig, kerr.InvalidRequest, kerr.InvalidRequest}
	if len(bad.Topics) != len(wantErrs) {
		t.Fatalf("CreateTopics answered %d of %d topics", len(bad.Topics), len(wantErrs))
	}
	for i, st := range bad.Topics {
		wantCode(t, "CreateTopics "+st.Topic, st.ErrorCode, wantErrs[i])
	}
	all := roundTrip[*kmsg.MetadataResponse](rc, kmsg.NewPtrMetadataRequest())
	if len(all.Topics) != 3 {
		t.Fatalf("%d topics exist, want ct, vo and defaults", len(all.Topics))
	}

	// Old versions work too (v0: no validate-only, no configs in the answer).
	old := createTopicsReq(false, newTopic("old", 1, 1))
	old.Version = 0
	wantCode(t, "CreateTopics v0", roundTrip[*kmsg.CreateTopicsResponse](rc, old).Topics[0].ErrorCode, nil)
}

func TestCreatePartitions(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "cp", 2)
	rc := dialRaw(t, addr)
	grow := func(topic string, count int32, validateOnly bool) kmsg.CreatePartitionsResponseTopic {
		t.Helper()
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.Version = 3
		req.TimeoutMillis = 10_000
		req.ValidateOnly = validateOnly
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, count
		req.Topics = append(req.Topics, rt)
		return roundTrip[*kmsg.CreatePartitionsResponse](rc, req).Topics[0]
	}
	wantCode(t, "validate-only grow cp to 7", grow("cp", 7, true).ErrorCode, nil)
	if n := len(metadataFor(t, rc, "cp").Partitions); n != 2 {
		t.Fatalf("validate-only grow left %d partitions, want 2", n)
	}
	wantCode(t, "grow cp 2→5", grow("cp", 5, false).ErrorCode, nil)
	md := metadataFor(t, rc, "cp")
	if len(md.Partitions) != 5 {
		t.Fatalf("cp has %d partitions after growing to 5", len(md.Partitions))
	}
	for _, p := range md.Partitions {
		if p.Leader != 1 {
			t.Fatalf("cp/%d has leader %d", p.Partition, p.Leader)
		}
	}
	// The new partitions take writes at once, from offset 0.
	for p := int32(2); p < 5; p++ {
		sp := produceOne(t, rc, produceReq(9, -1, "cp", p, recordBatch(plainBatch, "new")))
		wantCode(t, fmt.Sprintf("produce to new partition cp/%d", p), sp.ErrorCode, nil)
		if sp.BaseOffset != 0 {
			t.Fatalf("first record of cp/%d at offset %d", p, sp.BaseOffset)
		}
	}
	wantCode(t, "shrink cp 5→3", grow("cp", 3, false).ErrorCode, kerr.InvalidPartitions)
	wantCode(t, "grow cp 5→5", grow("cp", 5, false).ErrorCode, kerr.InvalidPartitions)
	wantCode(t, "grow an unknown topic", grow("nope", 5, false).ErrorCode, kerr.UnknownTopicOrPartition)
	if n := len(metadataFor(t, rc, "cp").Partitions); n != 5 {
		t.Fatalf("cp has %d partitions after refused changes, want 5", n)
	}

	// kadm grows by a delta.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := kadm.NewClient(newClient(t, addr)).CreatePartitions(ctx, 1, "cp")
	if err != nil || rs["cp"].Err != nil {
		t.Fatalf("kadm CreatePartitions: %v %v", err, rs["cp"].Err)
	}
	if n := len(metadataFor(t, rc, "cp").Partitions); n != 6 {
		t.Fatalf("cp has %d partitions after adding 1, want 6", n)
	}
}

func TestDeleteTopics(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "del-name", 2)
	createTopic(t, addr, "del-id", 1)
	createTopic(t, addr, "keep", 1)
	rc := dialRaw(t, addr)
	for _, topic := range []string{"del-name", "del-id", "keep"} {
		wantCode(t, "produce to "+topic, produceOne(t, rc, produceReq(9, -1, topic, 0, recordBatch(plainBatch, "old"))).ErrorCode, nil)
	}
	id := metadataFor(t, rc, "del-id").TopicID

	byName := kmsg.NewPtrDeleteTopicsRequest()
	byName.Version = 5
	byName.TimeoutMillis = 10_000
	byName.TopicNames = []string{"del-name", "never-existed"}
	nr := roundTrip[*kmsg.DeleteTopicsResponse](rc, byName)
	if len(nr.Topics) != 2 {
		t.Fatalf("DeleteTopics v5 answered %d topics", len(nr.Topics))
	}
	wantCode(t, "DeleteTopics del-name", nr.Topics[0].ErrorCode, nil)
	wantCode(t, "DeleteTopics never-existed", nr.Topics[1].ErrorCode, kerr.UnknownTopicOrPartition)

	byID := kmsg.NewPtrDeleteTopicsRequest()
	byID.Version = 6
	byID.TimeoutMillis = 10_000
	rt := kmsg.NewDeleteTopicsRequestTopic()
	rt.TopicID = id
	unknown := kmsg.NewDeleteTopicsRequestTopic()
	unknown.TopicID = [16]byte{1}
	byID.Topics = append(byID.Topics, rt, unknown)
	ir := roundTrip[*kmsg.DeleteTopicsResponse](rc, byID)
	if len(ir.Topics) != 2 {
		t.Fatalf("DeleteTopics v6 answered %d topics", len(ir.Topics))
	}
	wantCode(t, "DeleteTopics by id", ir.Topics[0].ErrorCode, nil)
	if ir.Topics[0].Topic == nil || *ir.Topics[0].Topic != "del-id" || ir.Topics[0].TopicID != id {
		t.Fatalf("DeleteTopics by id answered topic %v id %x", ir.Topics[0].Topic, ir.Topics[0].TopicID)
	}
	wantCode(t, "DeleteTopics by an unknown id", ir.Topics[1].ErrorCode, kerr.UnknownTopicID)

	for _, topic := range []string{"del-name", "del-id"} {
		sp := produceOne(t, rc, produceReq(9, -1, topic, 0, recordBatch(plainBatch, "late")))
		wantCode(t, "produce to deleted "+topic, sp.ErrorCode, kerr.UnknownTopicOrPartition)
		wantCode(t, "Metadata for deleted "+topic, metadataFor(t, rc, topic).ErrorCode, kerr.UnknownTopicOrPartition)
		p := fetchOne(t, rc, fetchReq(12, topic, [16]byte{}, 0, 0))
		wantCode(t, "fetch from deleted "+topic, p.ErrorCode, kerr.UnknownTopicOrPartition)
	}
	p := fetchOne(t, rc, fetchReq(13, "", id, 0, 0))
	wantCode(t, "fetch by the deleted topic's id", p.ErrorCode, kerr.UnknownTopicID)
	wantCode(t, "produce to the kept topic", produceOne(t, rc, produceReq(9, -1, "keep", 0, recordBatch(plainBatch, "new"))).ErrorCode, nil)

	// A real client sees the topic gone.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := newClient(t, addr, kgo.DefaultProduceTopic("del-name"), kgo.RecordRetries(2), kgo.RecordDeliveryTimeout(3*time.Second))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err == nil {
		t.Fatal("kgo produce to a deleted topic succeeded")
	}

	// A topic created again under the same name starts empty, with a new id.
	createTopic(t, addr, "del-id", 1)
	md := metadataFor(t, rc, "del-id")
	if md.TopicID == id {
		t.Fatal("re-created topic reuses the deleted topic's id")
	}
	p = fetchOne(t, rc, fetchReq(12, "del-id", [16]byte{}, 0, 0))
	wantCode(t, "fetch from re-created del-id", p.ErrorCode, nil)
	if p.HighWatermark != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("re-created del-id holds data: high watermark %d, %d bytes", p.HighWatermark, len(p.RecordBatches))
	}
}

func TestDescribeConfigs(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, addr))
	mmb, cp := "5000", "compact"
	if r, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"max.message.bytes": &mmb, "cleanup.policy": &cp}, "dc"); err != nil || r.Err != nil {
		t.Fatalf("create dc: %v %v", err, r.Err)
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "dc")
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On("dc", nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("describe dc: %v %v", err, rc.Err)
	}
	got := map[string]kadm.Config{}
	for _, c := range rc.Configs {
		got[c.Key] = c
	}
	if len(got) != len(metadata.TopicConfigs) {
		t.Fatalf("dc lists %d configs, want %d", len(got), len(metadata.TopicConfigs))
	}
	for _, tc := range metadata.TopicConfigs {
		c, ok := got[tc.Name]
		if !ok {
			t.Fatalf("config %s missing", tc.Name)
		}
		wantValue, wantSource := tc.Default, kmsg.ConfigSourceDefaultConfig
		switch tc.Name {
		case "max.message.bytes":
			wantValue, wantSource = mmb, kmsg.ConfigSourceDynamicTopicConfig
		case "cleanup.policy":
			wantValue, wantSource = cp, kmsg.ConfigSourceDynamicTopicConfig
		}
		if c.MaybeValue() != wantValue || c.Source != wantSource {
			t.Errorf("%s = %q from %v, want %q from %v", tc.Name, c.MaybeValue(), c.Source, wantValue, wantSource)
		}
	}
	// The config takes effect: max.message.bytes=5000.
	raw := dialRaw(t, addr)
	sp := produceOne(t, raw, produceReq(9, -1, "dc", 0, recordBatch(plainBatch, strings.Repeat("x", 6000))))
	wantCode(t, "produce of 6000 bytes to max.message.bytes=5000", sp.ErrorCode, kerr.MessageTooLarge)

	// Named configs only, with synonyms and documentation.
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.Version = 4
	req.IncludeSynonyms, req.IncludeDocumentation = true, true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "dc"
	rr.ConfigNames = []string{"max.message.bytes", "retention.ms"}
	nope := kmsg.NewDescribeConfigsRequestResource()
	nope.ResourceType, nope.ResourceName = kmsg.ConfigResourceTypeTopic, "nope"
	req.Resources = append(req.Resources, rr, nope)
	resp := roundTrip[*kmsg.DescribeConfigsResponse](raw, req)
	if len(resp.Resources) != 2 {
		t.Fatalf("DescribeConfigs answered %d resources", len(resp.Resources))
	}
	named := resp.Resources[0]
	wantCode(t, "DescribeConfigs dc", named.ErrorCode, nil)
	if len(named.Configs) != 2 || named.Configs[0].Name != "max.message.bytes" || named.Configs[1].Name != "retention.ms" {
		t.Fatalf("DescribeConfigs with two names answered %+v", named.Configs)
	}
	for _, c := range named.Configs {
		if len(c.ConfigSynonyms) != 1 || c.Documentation == nil || *c.Documentation == "" || c.ReadOnly {
			t.Fatalf("%s: synonyms %+v, documentation %v, read-only %v", c.Name, c.ConfigSynonyms, c.Documentation, c.ReadOnly)
		}
	}
	if named.Configs[0].Source != kmsg.ConfigSourceDynamicTopicConfig || named.Configs[1].Source != kmsg.ConfigSourceDefaultConfig {
		t.Fatalf("sources: max.message.bytes %v, retention.ms %v", named.Configs[0].Source, named.Configs[1].Source)
	}
	// v0 has no source, only IsDefault.
	req.Version = 0
	v0 := roundTrip[*kmsg.DescribeConfigsResponse](raw, req).Resources[0]
	if len(v0.Configs) != 2 || v0.Configs[0].IsDefault || !v0.Configs[1].IsDefault {
		t.Fatalf("DescribeConfigs v0: %+v", v0.Configs)
	}
	wantCode(t, "DescribeConfigs for an unknown topic", resp.Resources[1].ErrorCode, kerr.UnknownTopicOrPartition)

	// The broker's settings, read-only.
	brs, err := adm.DescribeBrokerConfigs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	br, err := brs.On("1", nil)
	if err != nil || br.Err != nil {
		t.Fatalf("describe broker 1: %v %v", err, br.Err)
	}
	bc := map[string]kadm.Config{}
	for _, c := range br.Configs {
		bc[c.Key] = c
		if c.Source != kmsg.ConfigSourceStaticBrokerConfig {
			t.Errorf("broker config %s from %v, want STATIC_BROKER_CONFIG", c.Key, c.Source)
		}
	}
	for k, v := range map[string]string{"broker.id": "1", "node.id": "1", "num.partitions": "1", "auto.create.topics.enable": "false"} {
		if c, ok := bc[k]; !ok || c.MaybeValue() != v {
			t.Errorf("broker config %s = %q (listed %v), want %q", k, c.MaybeValue(), ok, v)
		}
	}
	other := kmsg.NewPtrDescribeConfigsRequest()
	ob := kmsg.NewDescribeConfigsRequestResource()
	ob.ResourceType, ob.ResourceName = kmsg.ConfigResourceTypeBroker, "2"
	other.Resources = append(other.Resources, ob)
	wantCode(t, "DescribeConfigs for another broker", roundTrip[*kmsg.DescribeConfigsResponse](raw, other).Resources[0].ErrorCode, kerr.InvalidRequest)
}

func TestDescribeCluster(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	host, portStr, _ := net.SplitHostPort(b.Addr())
	port, _ := strconv.Atoi(portStr)
	rc := dialRaw(t, b.Addr())
	for _, v := range []int16{0, 1} {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.Version = v
		req.EndpointType = 1
		resp := roundTrip[*kmsg.DescribeClusterResponse](rc, req)
		wantCode(t, fmt.Sprintf("DescribeCluster v%d", v), resp.ErrorCode, nil)
		if resp.ClusterID != "raftka" || resp.ControllerID != 1 {
			t.Fatalf("DescribeCluster v%d: cluster %q controller %d", v, resp.ClusterID, resp.ControllerID)
		}
		if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.Brokers[0].Host != host || resp.Brokers[0].Port != int32(port) {
			t.Fatalf("DescribeCluster v%d brokers: %+v", v, resp.Brokers)
		}
	}
	req := kmsg.NewPtrDescribeClusterRequest()
	req.Version = 1
	req.EndpointType = 2 // controllers
	wantCode(t, "DescribeCluster for controller endpoints", roundTrip[*kmsg.DescribeClusterResponse](rc, req).ErrorCode, kerr.InvalidRequest)
}

func TestListOffsets(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "lo", 1)
	createTopic(t, addr, "lo-empty", 1)
	rc := dialRaw(t, addr)
	const t0 = int64(1_700_000_000_000)
	// One batch per record, timestamps out of order: 1000, 3000, 2000.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod := newClient(t, addr, kgo.DefaultProduceTopic("lo"))
	for i, ms := range []int64{1000, 3000, 2000} {
		r, err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i)), Timestamp: time.UnixMilli(t0 + ms)}).First()
		if err != nil || r.Offset != int64(i) {
			t.Fatalf("produce %d: offset %d, %v", i, r.Offset, err)
		}
	}

	list := func(version int16, topic string, ts int64) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		req.Version = version
		lt := kmsg.NewListOffsetsRequestTopic()
		lt.Topic = topic
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = ts
		lt.Partitions = append(lt.Partitions, lp)
		req.Topics = append(req.Topics, lt)
		resp := roundTrip[*kmsg.ListOffsetsResponse](rc, req)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("ListOffsets answered %+v", resp.Topics)
		}
		return resp.Topics[0].Partitions[0]
	}
	cases := []struct {
		name       string
		ts         int64
		offset, at int64 // at: the timestamp answered; -2 means not checked
	}{
		{"earliest", -2, 0, -2},
		{"latest", -1, 3, -2},
		{"max timestamp", -3, 1, t0 + 3000},
		{"before everything", t0, 0, t0 + 1000},
		{"exactly the first", t0 + 1000, 0, t0 + 1000},
		{"between 1000 and 2000", t0 + 1500, 1, t0 + 3000},
		{"exactly 3000", t0 + 3000, 1, t0 + 3000},
		{"after everything", t0 + 3001, -1, -1}, // Kafka: no such offset
	}
	for _, v := range []int16{1, 4, 7, 8} {
		for _, tc := range cases {
			if tc.ts == -3 && v < 7 {
				continue
			}
			p := list(v, "lo", tc.ts)
			what := fmt.Sprintf("ListOffsets v%d %s (%d)", v, tc.name, tc.ts)
			wantCode(t, what, p.ErrorCode, nil)
			if p.Offset != tc.offset || (tc.at != -2 && p.Timestamp != tc.at) {
				t.Errorf("%s: offset %d timestamp %d, want %d at %d", what, p.Offset, p.Timestamp, tc.offset, tc.at)
			}
		}
	}
	if p := list(8, "lo-empty", -3); p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 {
		t.Errorf("max timestamp of an empty partition: error %d offset %d timestamp %d, want -1 -1", p.ErrorCode, p.Offset, p.Timestamp)
	}
	if p := list(8, "lo-empty", t0); p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 {
		t.Errorf("timestamp lookup in an empty partition: error %d offset %d timestamp %d, want -1 -1", p.ErrorCode, p.Offset, p.Timestamp)
	}
	wantCode(t, "ListOffsets timestamp -7", list(8, "lo", -7).ErrorCode, kerr.InvalidRequest)
	wantCode(t, "ListOffsets of an unknown topic", list(8, "nope", -1).ErrorCode, kerr.UnknownTopicOrPartition)

	// kadm agrees.
	adm := kadm.NewClient(newClient(t, addr))
	check := func(what string, los kadm.ListedOffsets, err error, want int64) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		o, ok := los.Lookup("lo", 0)
		if !ok || o.Err != nil || o.Offset != want {
			t.Errorf("%s: offset %d (%v, %v), want %d", what, o.Offset, ok, o.Err, want)
		}
	}
	los, err := adm.ListStartOffsets(ctx, "lo")
	check("kadm start", los, err, 0)
	los, err = adm.ListEndOffsets(ctx, "lo")
	check("kadm end", los, err, 3)
	los, err = adm.ListOffsetsAfterMilli(ctx, t0+1500, "lo")
	check("kadm after 1500", los, err, 1)
	los, err = adm.ListMaxTimestampOffsets(ctx, "lo")
	check("kadm max timestamp", los, err, 1)
}

func TestFetchLongPoll(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "lp", 2)
	createTopic(t, addr, "lp-empty", 1)

	t.Run("wakes on produce", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		// Both partitions, so the wait watches more than one.
		req := fetchReq(12, "lp", [16]byte{}, 0, 0)
		p1 := req.Topics[0].Partitions[0]
		p1.Partition = 1
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, p1)
		req.MaxWaitMillis, req.MinBytes = 5000, 1
		type result struct {
			resp    kmsg.Response
			err     error
			elapsed time.Duration
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			resp, err := rc.tryRoundTrip(req)
			done <- result{resp, err, time.Since(start)}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		prod := newClient(t, addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "lp", Partition: 1, Value: []byte("wake")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		var res result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("fetch did not return within 10s")
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.elapsed >= 4*time.Second {
			t.Fatalf("fetch returned after %v; a produce should end the 5s wait", res.elapsed)
		}
		resp := res.resp.(*kmsg.FetchResponse)
		var values []string
		if resp.Topics[0].Partitions[1].HighWatermark != 1 {
			t.Fatalf("lp/1 high watermark %d, want 1", resp.Topics[0].Partitions[1].HighWatermark)
		}
		for _, p := range resp.Topics[0].Partitions {
			wantCode(t, fmt.Sprintf("long poll lp/%d", p.Partition), p.ErrorCode, nil)
			vs, _ := batchValues(t, p.RecordBatches)
			values = append(values, vs...)
		}
		if !slices.Equal(values, []string{"wake"}) {
			t.Fatalf("long poll returned %q, want [wake]", values)
		}
	})

	t.Run("times out empty", func(t *testing.T) {
		t.Parallel()
		rc := dialRaw(t, addr)
		req := fetchReq(12, "lp-empty", [16]byte{}, 0, 0)
		req.MaxWaitMillis, req.MinBytes = 300, 1
		start := time.Now()
		p := fetchOne(t, rc, req)
		elapsed := time.Since(start)
		wantCode(t, "empty long poll", p.ErrorCode, nil)
		if len(p.RecordBatches) != 0 {
			t.Fatalf("empty partition returned %d bytes", len(p.RecordBatches))
		}
		if elapsed < 300*time.Millisecond || elapsed > 5*time.Second {
			t.Fatalf("a 300ms long poll returned after %v", elapsed)
		}
	})

	t.Run("capped by MaxFetchWait", func(t *testing.T) {
		t.Parallel()
		capped := startBroker(t, func(c *Config) { c.MaxFetchWait = 200 * time.Millisecond })
		createTopic(t, capped.Addr(), "cap", 1)
		rc := dialRaw(t, capped.Addr())
		req := fetchReq(12, "cap", [16]byte{}, 0, 0)
		req.MaxWaitMillis, req.MinBytes = 60_000, 1
		start := time.Now()
		p := fetchOne(t, rc, req)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Fatalf("a fetch capped at 200ms returned after %v", elapsed)
		}
		wantCode(t, "capped long poll", p.ErrorCode, nil)
	})
}

func TestFetchByTopicID(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "fid", 1)
	rc := dialRaw(t, addr)
	for _, vs := range [][]string{{"a", "b"}, {"c"}, {"d", "e", "f"}} {
		wantCode(t, "produce", produceOne(t, rc, produceReq(9, -1, "fid", 0, recordBatch(plainBatch, vs...))).ErrorCode, nil)
	}
	md := metadataFor(t, rc, "fid")
	id, epoch := md.TopicID, md.Partitions[0].LeaderEpoch
	for _, v := range []int16{12, 13, 15, 16} {
		topic, tid := "fid", id
		if v >= 13 {
			topic = ""
		} else {
			tid = [16]byte{}
		}
		for _, from := range []int64{0, 3, 4} {
			p := fetchOne(t, rc, fetchReq(v, topic, tid, 0, from))
			what := fmt.Sprintf("Fetch v%d from %d", v, from)
			wantCode(t, what, p.ErrorCode, nil)
			if p.HighWatermark != 6 || p.LastStableOffset != 6 || p.LogStartOffset != 0 {
				t.Fatalf("%s: high watermark %d, last stable %d, log start %d", what, p.HighWatermark, p.LastStableOffset, p.LogStartOffset)
			}
			values, offsets := batchValues(t, p.RecordBatches)
			// Whole batches come back: from offset 4 the batch at 3.
			all := []string{"a", "b", "c", "d", "e", "f"}
			start := map[int64]int{0: 0, 3: 3, 4: 3}[from]
			if !slices.Equal(values, all[start:]) {
				t.Fatalf("%s: values %q, want %q", what, values, all[start:])
			}
			for i, o := range offsets {
				if o != int64(start+i) {
					t.Fatalf("%s: offsets %v", what, offsets)
				}
			}
			if le := int32(binary.BigEndian.Uint32(p.RecordBatches[12:])); le != epoch {
				t.Fatalf("%s: batch leader epoch %d, want %d", what, le, epoch)
			}
		}
	}
	// v13+ ignores names: a name without an id is an unknown id.
	p := fetchOne(t, rc, fetchReq(13, "fid", [16]byte{}, 0, 0))
	wantCode(t, "Fetch v13 by name only", p.ErrorCode, kerr.UnknownTopicID)

	// Partition max bytes smaller than a batch still returns one batch.
	small := fetchReq(16, "", id, 0, 0)
	small.Topics[0].Partitions[0].PartitionMaxBytes = 1
	vs, _ := batchValues(t, fetchOne(t, rc, small).RecordBatches)
	if !slices.Equal(vs, []string{"a", "b"}) {
		t.Fatalf("fetch with 1 max byte returned %q, want the first batch", vs)
	}
}

func TestResponsesKeepRequestOrder(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	createTopic(t, addr, "ord", 1)
	rc := dialRaw(t, addr)

	// A long poll, then an acks=0 produce that should end it, then two
	// quick requests: the produce is handled while the fetch waits, and
	// the answers come in request order, with none for the produce.
	fetch := fetchReq(12, "ord", [16]byte{}, 0, 0)
	fetch.MaxWaitMillis, fetch.MinBytes = 5000, 1
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	av := apiVersionsReq(3)
	start := time.Now()
	fetchCorr, err := rc.send(fetch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.send(produceReq(9, 0, "ord", 0, recordBatch(plainBatch, "pipelined"))); err != nil {
		t.Fatal(err)
	}
	mdCorr, _ := rc.send(md)
	avCorr, err := rc.send(av)
	if err != nil {
		t.Fatal(err)
	}
	corr, resp, err := rc.recv(fetch, fetch.Version)
	if err != nil || corr != fetchCorr {
		t.Fatalf("first response: correlation id %d (want %d), %v", corr, fetchCorr, err)
	}
	if elapsed := time.Since(start); elapsed >= 4*time.Second {
		t.Fatalf("fetch took %v: the pipelined produce did not end its wait", elapsed)
	}
	fp := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0]
	if vs, _ := batchValues(t, fp.RecordBatches); !slices.Equal(vs, []string{"pipelined"}) {
		t.Fatalf("fetch returned %q, want the pipelined record", vs)
	}
	if corr, _, err := rc.recv(md, md.Version); err != nil || corr != mdCorr {
		t.Fatalf("second response: correlation id %d (want %d, no answer to acks=0), %v", corr, mdCorr, err)
	}
	if corr, _, err := rc.recv(av, av.Version); err != nil || corr != avCorr {
		t.Fatalf("third response: correlation id %d (want %d), %v", corr, avCorr, err)
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	addr := b.Addr()
	codecs := []struct {
		name  string
		codec kgo.CompressionCodec
		id    int16
	}{
		{"gzip", kgo.GzipCompression(), 1},
		{"snappy", kgo.SnappyCompression(), 2},
		{"lz4", kgo.Lz4Compression(), 3},
		{"zstd", kgo.ZstdCompression(), 4},
	}
	for _, c := range codecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			topic := "comp-" + c.name
			createTopic(t, addr, topic, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			prod := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(c.codec),
				kgo.ProducerLinger(50*time.Millisecond))
			const n = 50
			var want []string
			for i := range n {
				v := fmt.Sprintf("%s-%03d-%s", c.name, i, strings.Repeat("compressible ", 20))
				want = append(want, v)
				prod.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err != nil {
						t.Errorf("produce %s: %v", c.name, err)
					}
				})
			}
			if err := prod.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			got := consumeAll(t, addr, topic, n)[0]
			if !slices.Equal(got, want) {
				t.Fatalf("consumed %d records, not the %d produced (first %q)", len(got), n, got[:min(1, len(got))])
			}
			// The batches are stored as the producer compressed them.
			p := fetchOne(t, dialRaw(t, addr), fetchReq(12, topic, [16]byte{}, 0, 0))
			if len(p.RecordBatches) < 61 {
				t.Fatalf("fetch returned %d bytes", len(p.RecordBatches))
			}
			if attrs := int16(binary.BigEndian.Uint16(p.RecordBatches[21:])); attrs&0x07 != c.id {
				t.Fatalf("stored batch has codec %d, want %d (%s)", attrs&0x07, c.id, c.name)
			}
		})
	}
}

// TestReadyResponsesAreNotHeldBehindALongPoll pipelines a 1s long poll, an
// ApiVersions and a 4s long poll on one connection. The first two answers
// are ready after about 1s and must be sent then, not held in the write
// buffer until the second long poll ends: clients that share a connection
// for fetches and other requests (the Java client does) would see every
// request wait out the next fetch.
func TestReadyResponsesAreNotHeldBehindALongPoll(t *testing.T) {
	t.Parallel()
	b := startBroker(t, nil)
	createTopic(t, b.Addr(), "hol", 1)
	rc := dialRaw(t, b.Addr())
	short := fetchReq(12, "hol", [16]byte{}, 0, 0)
	short.MaxWaitMillis = 1000
	long := fetchReq(12, "hol", [16]byte{}, 0, 0)
	long.MaxWaitMillis = 4000
	av := apiVersionsReq(3)
	start := time.Now()
	for _, req := range []kmsg.Request{short, av, long} {
		if _, err := rc.send(req); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := rc.recv(short, short.Version); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rc.recv(av, av.Version); err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Fatalf("the 1s long poll and the ApiVersions behind it were answered after %v", elapsed)
	}
}
