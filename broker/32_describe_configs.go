package broker

// DescribeConfigs (key 32), versions 0–4.
//
// Topic resources list every topic config Raftka knows with its value: set
// on the topic (DYNAMIC_TOPIC_CONFIG) or the default (DEFAULT_CONFIG).
// Broker resources list the broker's static settings, read-only. Synonyms
// and documentation are included when asked for.

import (
	"context"
	"strconv"

	"github.com/raftka/raftka/metadata"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(kmsg.DescribeConfigs.Int16(), 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(b *Broker, cc *clientConn, kreq kmsg.Request) reply {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	return func(context.Context) kmsg.Response {
		resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
		view := b.meta.View()
		for _, rr := range req.Resources {
			sr := kmsg.NewDescribeConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
			want := func(name string) bool {
				if rr.ConfigNames == nil {
					return true
				}
				for _, n := range rr.ConfigNames {
					if n == name {
						return true
					}
				}
				return false
			}
			switch rr.ResourceType {
			case kmsg.ConfigResourceTypeTopic:
				t := view.Topics[rr.ResourceName]
				if t == nil {
					sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
					sr.ErrorMessage = strPtr("unknown topic " + strconv.Quote(rr.ResourceName))
					break
				}
				for _, c := range metadata.TopicConfigs {
					if !want(c.Name) {
						continue
					}
					v, set := t.Configs[c.Name]
					if !set {
						v = b.topicConfigDefault(c)
					}
					source := kmsg.ConfigSourceDefaultConfig
					if set {
						source = kmsg.ConfigSourceDynamicTopicConfig
					}
					sr.Configs = append(sr.Configs, describedConfig(req, c.Name, v, source, false, c.Doc))
				}
			case kmsg.ConfigResourceTypeBroker:
				if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
					sr.ErrorCode = kerr.InvalidRequest.Code
					sr.ErrorMessage = strPtr("ask broker " + rr.ResourceName + " itself for its configs")
					break
				}
				for _, kv := range b.brokerConfigs() {
					if want(kv[0]) {
						sr.Configs = append(sr.Configs, describedConfig(req, kv[0], kv[1], kmsg.ConfigSourceStaticBrokerConfig, true, ""))
					}
				}
			default:
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = strPtr("only topic and broker configs can be described")
			}
			resp.Resources = append(resp.Resources, sr)
		}
		return resp
	}
}

func describedConfig(req *kmsg.DescribeConfigsRequest, name, value string, source kmsg.ConfigSource, readOnly bool, doc string) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value, c.ReadOnly, c.Source = name, &value, readOnly, source
	c.IsDefault = source == kmsg.ConfigSourceDefaultConfig
	c.ConfigType = kmsg.ConfigTypeString
	if req.IncludeSynonyms {
		s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
		s.Name, s.Value, s.Source = name, &value, source
		c.ConfigSynonyms = append(c.ConfigSynonyms, s)
	}
	if req.IncludeDocumentation && doc != "" {
		c.Documentation = &doc
	}
	return c
}

// brokerConfigs are the broker settings DescribeConfigs reports.
func (b *Broker) brokerConfigs() [][2]string {
	return [][2]string{
		{"auto.create.topics.enable", strconv.FormatBool(b.cfg.AutoCreateTopics)},
		{"broker.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"broker.rack", b.cfg.Rack},
		{"default.replication.factor", strconv.Itoa(int(b.cfg.DefaultReplicationFactor))},
		{"message.max.bytes", strconv.Itoa(b.cfg.MaxMessageBytes)},
		{"node.id", strconv.Itoa(int(b.cfg.NodeID))},
		{"num.partitions", strconv.Itoa(int(b.cfg.DefaultPartitions))},
		{"socket.request.max.bytes", strconv.Itoa(int(b.cfg.MaxFrameBytes))},
	}
}

// topicConfigDefault is the value a topic has for c when it sets none:
// the broker's setting where it has one, else Kafka's default.
func (b *Broker) topicConfigDefault(c metadata.TopicConfig) string {
	if c.Name == "max.message.bytes" {
		return strconv.Itoa(b.cfg.MaxMessageBytes)
	}
	return c.Default
}
