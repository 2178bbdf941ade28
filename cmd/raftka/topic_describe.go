package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

// topicDescription is what `raftka topic describe` reports about a topic.
type topicDescription struct {
	Name       string                 `json:"name"`
	ID         string                 `json:"id"`
	Internal   bool                   `json:"internal"`
	Partitions []partitionDescription `json:"partitions"`
	Configs    []configDescription    `json:"configs"`
}

type partitionDescription struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas,omitempty"`
	// LogStartOffset and HighWatermark are -1 when they could not be read.
	LogStartOffset int64  `json:"log_start_offset"`
	HighWatermark  int64  `json:"high_watermark"`
	Error          string `json:"error,omitempty"`
}

type configDescription struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

func newTopicDescribeCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe NAME...",
		Short: "Show a topic's partitions, offsets and configs",
		Long: `Show, for each partition of a topic, its leader, leader epoch, replicas and
in-sync replicas, its log start offset and high watermark (the offset the next
committed record will take), and the topic's configs with where each value
comes from.`,
		Example: `  raftka topic describe orders
  raftka topic describe orders --output json | jq '.[0].partitions[].high_watermark'`,
		Args: positional(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			if err := checkOutput(cmd, output); err != nil {
				return err
			}
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			descs, err := describeTopics(ctx, adm, names)
			if err != nil {
				return cf.explain(err)
			}
			if output == "json" {
				return writeJSON(e.stdout, descs)
			}
			for i, d := range descs {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				if err := printTopicDescription(e.stdout, d); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// describeTopics gathers the metadata, offsets and configs of names. A topic
// that does not exist fails the whole call.
func describeTopics(ctx context.Context, adm *kadm.Client, names []string) ([]topicDescription, error) {
	topics, err := adm.ListTopics(ctx, names...)
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		t, ok := topics[name]
		if !ok {
			return nil, fmt.Errorf("topic %q: missing from the broker's metadata", name)
		}
		if t.Err != nil {
			return nil, fmt.Errorf("topic %q: %w", name, t.Err)
		}
	}
	starts, err := adm.ListStartOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("list end offsets: %w", err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe configs: %w", err)
	}

	var out []topicDescription
	for _, name := range names {
		t := topics[name]
		d := topicDescription{Name: name, ID: t.ID.String(), Internal: t.IsInternal, Partitions: []partitionDescription{}, Configs: []configDescription{}}
		for _, p := range t.Partitions.Sorted() {
			pd := partitionDescription{
				Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: p.Replicas, ISR: p.ISR, OfflineReplicas: p.OfflineReplicas,
				LogStartOffset: -1, HighWatermark: -1,
			}
			var errs []error
			if p.Err != nil {
				errs = append(errs, p.Err)
			}
			if o, ok := starts.Lookup(name, p.Partition); ok && o.Err == nil {
				pd.LogStartOffset = o.Offset
			} else if ok {
				errs = append(errs, fmt.Errorf("log start offset: %w", o.Err))
			}
			if o, ok := ends.Lookup(name, p.Partition); ok && o.Err == nil {
				pd.HighWatermark = o.Offset
			} else if ok {
				errs = append(errs, fmt.Errorf("high watermark: %w", o.Err))
			}
			if err := errors.Join(errs...); err != nil {
				pd.Error = err.Error()
			}
			d.Partitions = append(d.Partitions, pd)
		}
		rc, err := configs.On(name, nil)
		if err == nil && rc.Err != nil {
			err = withDetail(rc.Err, rc.ErrMessage)
		}
		if err != nil {
			return nil, fmt.Errorf("topic %q: describe configs: %w", name, err)
		}
		for _, c := range rc.Configs {
			d.Configs = append(d.Configs, configDescription{Name: c.Key, Value: c.MaybeValue(), Source: c.Source.String()})
		}
		out = append(out, d)
	}
	return out, nil
}

func printTopicDescription(w io.Writer, d topicDescription) error {
	tw := newTable(w)
	rf := 0
	if len(d.Partitions) > 0 {
		rf = len(d.Partitions[0].Replicas)
	}
	fmt.Fprintf(tw, "NAME\t%s\n", d.Name)
	fmt.Fprintf(tw, "ID\t%s\n", d.ID)
	fmt.Fprintf(tw, "PARTITIONS\t%d\n", len(d.Partitions))
	fmt.Fprintf(tw, "REPLICATION-FACTOR\t%d\n", rf)
	if d.Internal {
		fmt.Fprintf(tw, "INTERNAL\ttrue\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "PARTITION\tLEADER\tEPOCH\tREPLICAS\tISR\tLOG-START-OFFSET\tHIGH-WATERMARK")
	for _, p := range d.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s", p.Partition, p.Leader, p.LeaderEpoch,
			brokerIDs(p.Replicas), brokerIDs(p.ISR), offsetString(p.LogStartOffset), offsetString(p.HighWatermark))
		if p.Error != "" {
			fmt.Fprintf(tw, "\terror: %s", p.Error)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "CONFIG\tVALUE\tSOURCE")
	for _, c := range d.Configs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Name, c.Value, c.Source)
	}
	return tw.Flush()
}

func offsetString(o int64) string {
	if o < 0 {
		return "-"
	}
	return fmt.Sprint(o)
}
