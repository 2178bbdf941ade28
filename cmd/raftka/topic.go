package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
)

func newTopicCmd(e *env, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Create, list, describe and delete topics",
		Long: `Manage the topics of a running cluster over the Kafka protocol (CreateTopics,
Metadata, ListOffsets, DescribeConfigs, DeleteTopics), as any Kafka admin client
would.`,
		Example: `  raftka topic create orders --partitions 3
  raftka topic list
  raftka topic describe orders
  raftka topic delete orders`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newTopicCreateCmd(e, cf),
		newTopicListCmd(e, cf),
		newTopicDescribeCmd(e, cf),
		newTopicDeleteCmd(e, cf),
	)
	return cmd
}

func newTopicCreateCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		partitions int32
		replicas   int16
		configs    []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME...",
		Short: "Create topics",
		Long: `Create one or more topics with the same partition count, replication factor
and configs. The command returns once the cluster can take writes to them.`,
		Example: `  # One partition, the broker's default replication factor
  raftka topic create orders

  # Three partitions on three brokers, compacted
  raftka topic create users --partitions 3 --replicas 3 --config cleanup.policy=compact

  # Several configs
  raftka topic create logs -c retention.ms=86400000 -c max.message.bytes=2097152`,
		Args: positional(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			cfgs, err := parseTopicConfigs(configs)
			if err != nil {
				return usageError(cmd, "%v", err)
			}
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.CreateTopics(ctx, partitions, replicas, cfgs, names...)
			if err != nil {
				return cf.explain(err)
			}
			ok := true
			for _, name := range names {
				r, found := resps[name]
				switch {
				case !found:
					ok = false
					fmt.Fprintf(e.stderr, "error: topic %q: missing from the broker's response\n", name)
				case r.Err != nil:
					ok = false
					fmt.Fprintf(e.stderr, "error: topic %q: %v\n", name, cf.explain(withDetail(r.Err, r.ErrMessage)))
				default:
					fmt.Fprintf(e.stdout, "created topic %s: %d partitions, replication factor %d\n", name, r.NumPartitions, r.ReplicationFactor)
				}
			}
			if !ok {
				return failed()
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.Int32VarP(&partitions, "partitions", "p", 1, "number of partitions; -1 takes the broker's default")
	f.Int16VarP(&replicas, "replicas", "r", -1, "replication factor; -1 takes the broker's default")
	f.StringArrayVarP(&configs, "config", "c", nil, "topic config as key=value; repeat for several")
	return cmd
}

// parseTopicConfigs turns key=value flags into CreateTopics configs.
func parseTopicConfigs(kvs []string) (map[string]*string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := make(map[string]*string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--config %q: want key=value, e.g. retention.ms=86400000", kv)
		}
		out[strings.TrimSpace(k)] = kadm.StringPtr(v)
	}
	return out, nil
}

// withDetail adds the broker's error message, when it has one, to err.
func withDetail(err error, detail string) error {
	if detail == "" || strings.Contains(err.Error(), detail) {
		return err
	}
	return fmt.Errorf("%s: %w", detail, err)
}

func newTopicListCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List topics",
		Example: `  raftka topic list
  raftka topic list --output json`,
		Args: positional(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(cmd, output); err != nil {
				return err
			}
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			topics, err := adm.ListTopics(ctx)
			if err != nil {
				return cf.explain(err)
			}
			type listedTopic struct {
				Name              string `json:"name"`
				ID                string `json:"id"`
				Partitions        int    `json:"partitions"`
				ReplicationFactor int    `json:"replication_factor"`
				Error             string `json:"error,omitempty"`
			}
			list := []listedTopic{}
			for _, t := range topics.Sorted() {
				lt := listedTopic{Name: t.Topic, ID: t.ID.String(), Partitions: len(t.Partitions), ReplicationFactor: t.Partitions.NumReplicas()}
				if t.Err != nil {
					lt.Error = t.Err.Error()
				}
				list = append(list, lt)
			}
			if output == "json" {
				return writeJSON(e.stdout, list)
			}
			tw := newTable(e.stdout)
			fmt.Fprintln(tw, "NAME\tPARTITIONS\tREPLICATION-FACTOR")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%d\t%d", t.Name, t.Partitions, t.ReplicationFactor)
				if t.Error != "" {
					fmt.Fprintf(tw, "\t%s", t.Error)
				}
				fmt.Fprintln(tw)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newTopicDeleteCmd(e *env, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME...",
		Aliases: []string{"rm"},
		Short:   "Delete topics and all their records",
		Example: `  raftka topic delete orders
  raftka topic delete orders users logs`,
		Args: positional(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, names []string) error {
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteTopics(ctx, names...)
			if err != nil {
				return cf.explain(err)
			}
			ok := true
			for _, name := range names {
				r, found := resps[name]
				switch {
				case !found:
					ok = false
					fmt.Fprintf(e.stderr, "error: topic %q: missing from the broker's response\n", name)
				case r.Err != nil:
					ok = false
					fmt.Fprintf(e.stderr, "error: topic %q: %v\n", name, cf.explain(withDetail(r.Err, r.ErrMessage)))
				default:
					fmt.Fprintf(e.stdout, "deleted topic %s\n", name)
				}
			}
			if !ok {
				return failed()
			}
			return nil
		},
	}
}

// checkOutput validates an --output flag.
func checkOutput(cmd *cobra.Command, output string) error {
	if output != "text" && output != "json" {
		return usageError(cmd, "--output must be text or json, got %q", output)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// brokerIDs formats a replica list as "1,2,3", in the cluster's order (the
// preferred leader first).
func brokerIDs(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	return strings.Join(parts, ",")
}
