package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// seeds returns the --brokers addresses.
func (f *clientFlags) seeds() ([]string, error) {
	var out []string
	for _, b := range f.brokers {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(b); err != nil {
			return nil, fmt.Errorf("--brokers: %q is not host:port", b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, errors.New("--brokers: no broker addresses given")
	}
	return out, nil
}

// newClient returns a Kafka client of the --brokers cluster.
func (f *clientFlags) newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	seeds, err := f.seeds()
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout must be > 0, got %v", f.timeout)
	}
	base := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DialTimeout(min(f.timeout, defaultDialTimeout))}
	return kgo.NewClient(append(base, opts...)...)
}

// defaultDialTimeout is kgo's own default; --timeout may only shorten it.
const defaultDialTimeout = 10 * time.Second

// newAdmin returns an admin client whose requests ask the brokers to finish
// within --timeout, and a context with that deadline.
func (f *clientFlags) newAdmin(ctx context.Context) (*kadm.Client, context.Context, func(), error) {
	cl, err := f.newClient()
	if err != nil {
		return nil, nil, nil, err
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(f.timeout.Milliseconds()))
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return adm, ctx, func() { cancel(); adm.Close() }, nil
}

// explain turns a client error into a message for people: the Kafka error's
// name and meaning, or what failed to connect, with a hint on what to do.
func (f *clientFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	var ke *kerr.Error
	switch {
	case errors.As(err, &ke):
		msg := ke.Error() // "NAME: description"
		if full := err.Error(); strings.Contains(full, msg) {
			msg = full // the context, the broker's message and the Kafka error
		} else {
			msg = full + " (" + msg + ")"
		}
		if h := kafkaHints[ke]; h != "" {
			msg += "\nhint: " + h
		}
		return errors.New(msg)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrRecordTimeout),
		errors.Is(err, syscall.ECONNREFUSED), isNetError(err):
		return fmt.Errorf("%w\nhint: could not reach the cluster at %s within --timeout %v; is 'raftka start' running there? Point at it with --brokers host:port",
			err, strings.Join(f.brokers, ","), f.timeout)
	}
	return err
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

// kafkaHints say what to do about the Kafka errors the CLI commonly meets.
var kafkaHints = map[*kerr.Error]string{
	kerr.TopicAlreadyExists:         "choose another name, or delete the topic first with 'raftka topic delete NAME'",
	kerr.UnknownTopicOrPartition:    "'raftka topic list' shows the topics; 'raftka topic create NAME' creates one",
	kerr.InvalidTopicException:      "a topic name is 1 to 249 characters of a-z, A-Z, 0-9, '.', '_' and '-', and is not '.' or '..'",
	kerr.InvalidPartitions:          "--partitions must be at least 1",
	kerr.InvalidReplicationFactor:   "--replicas cannot exceed the number of brokers; -1 takes the broker's default",
	kerr.InvalidReplicaAssignment:   "every partition needs the same number of distinct, existing brokers",
	kerr.InvalidConfig:              "'raftka topic describe NAME' on an existing topic lists the topic configs and their defaults",
	kerr.PolicyViolation:            "the cluster's policy refused the request; see the broker's log",
	kerr.NotController:              "the controller is changing; retry in a moment",
	kerr.RequestTimedOut:            "the cluster did not finish in time; retry, or raise --timeout",
	kerr.NotLeaderForPartition:      "partition leadership is moving; retry in a moment",
	kerr.LeaderNotAvailable:         "the partition has no leader right now; retry in a moment",
	kerr.NotEnoughReplicas:          "too few replicas are in sync to accept acks=all writes; check that the brokers are up",
	kerr.MessageTooLarge:            "the record is larger than the topic's max.message.bytes",
	kerr.RecordListTooLarge:         "the batch is larger than the broker accepts; produce smaller records",
	kerr.CorruptMessage:             "the broker rejected a damaged record batch; retry, and report it if it persists",
	kerr.UnsupportedVersion:         "this broker does not serve that request (or that version of it) yet",
	kerr.UnsupportedCompressionType: "produce with another --compression",
	kerr.TopicDeletionDisabled:      "topic deletion is disabled on the broker",
	kerr.UnknownServerError:         "the broker failed unexpectedly; its log has the details",
	kerr.OffsetOutOfRange:           "the offset is outside the partition's log; 'raftka topic describe' shows its start offset and high watermark",
}
