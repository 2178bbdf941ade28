package metadata

import (
	"fmt"
	"slices"
	"strconv"
)

// MaxTopicNameLen is Kafka's limit on topic name length.
const MaxTopicNameLen = 249

// ValidateTopicName applies Kafka's rules: 1–249 characters from
// [a-zA-Z0-9._-], and not "." or "..".
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: the name is empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > MaxTopicNameLen:
		return fmt.Errorf("%w: %d characters, the limit is %d", ErrInvalidTopic, len(name), MaxTopicNameLen)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q has character %q; use only a-z, A-Z, 0-9, '.', '_' and '-'", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// TopicConfig describes one topic config key Raftka knows.
type TopicConfig struct {
	Name    string
	Default string
	// Check validates a value; nil accepts anything.
	Check func(string) error
	// Doc is a one-line description.
	Doc string
}

func checkInt(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func checkOneOf(values ...string) func(string) error {
	return func(v string) error {
		if !slices.Contains(values, v) {
			return fmt.Errorf("%q is not one of %v", v, values)
		}
		return nil
	}
}

// TopicConfigs lists the topic configs Raftka accepts, with Kafka's defaults.
var TopicConfigs = []TopicConfig{
	{Name: "cleanup.policy", Default: "delete", Check: checkOneOf("delete", "compact", "compact,delete", "delete,compact"), Doc: "retention policy (only delete is enforced)"},
	{Name: "compression.type", Default: "producer", Check: checkOneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"), Doc: "batches are stored as the producer compressed them"},
	{Name: "max.message.bytes", Default: "1048588", Check: checkInt(0), Doc: "largest record batch accepted"},
	{Name: "message.timestamp.type", Default: "CreateTime", Check: checkOneOf("CreateTime", "LogAppendTime"), Doc: "only CreateTime is served"},
	{Name: "min.insync.replicas", Default: "1", Check: checkInt(1), Doc: "Raft commits need a majority regardless"},
	{Name: "retention.bytes", Default: "-1", Check: checkInt(-1), Doc: "not enforced yet"},
	{Name: "retention.ms", Default: "604800000", Check: checkInt(-1), Doc: "not enforced yet"},
	{Name: "segment.bytes", Default: "1073741824", Check: checkInt(14), Doc: "accepted for compatibility; Raftka has no segments"},
	{Name: "segment.ms", Default: "604800000", Check: checkInt(1), Doc: "accepted for compatibility; Raftka has no segments"},
}

// LookupTopicConfig returns the known config named name.
func LookupTopicConfig(name string) (TopicConfig, bool) {
	for _, c := range TopicConfigs {
		if c.Name == name {
			return c, true
		}
	}
	return TopicConfig{}, false
}

// ValidateTopicConfigs checks every key and value in configs.
func ValidateTopicConfigs(configs map[string]string) error {
	for k, v := range configs {
		c, ok := LookupTopicConfig(k)
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, k)
		}
		if c.Check != nil {
			if err := c.Check(v); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrInvalidConfig, k, err)
			}
		}
	}
	return nil
}

// MaxMessageBytes returns the topic's max.message.bytes.
func (t *Topic) MaxMessageBytes() int {
	v, ok := t.Configs["max.message.bytes"]
	if !ok {
		c, _ := LookupTopicConfig("max.message.bytes")
		v = c.Default
	}
	n, _ := strconv.Atoi(v)
	return n
}
