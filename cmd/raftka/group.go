package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

func newGroupCmd(e *env, cf *clientFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "List, describe, delete consumer groups and reset their offsets",
		Long: `Manage the consumer groups of a running cluster over the Kafka protocol
(ListGroups, DescribeGroups, OffsetFetch, ListOffsets, DeleteGroups,
OffsetCommit), as any Kafka admin client would. Groups are created by their
consumers, e.g. 'raftka consume TOPIC --group NAME'.`,
		Example: `  raftka group list
  raftka group describe orders-readers
  raftka group reset-offsets orders-readers --topic orders --to-earliest
  raftka group delete orders-readers`,
		Args: noSubcommand,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newGroupListCmd(e, cf),
		newGroupDescribeCmd(e, cf),
		newGroupDeleteCmd(e, cf),
		newGroupResetOffsetsCmd(e, cf),
	)
	return cmd
}

// groupHints say what to do about the errors group commands meet.
var groupHints = map[*kerr.Error]string{
	kerr.NonEmptyGroup:             "the group still has members; stop its consumers first ('raftka group describe NAME' lists them)",
	kerr.GroupIDNotFound:           "'raftka group list' shows the groups",
	kerr.CoordinatorNotAvailable:   "the group's coordinator is starting or moving; retry in a moment",
	kerr.NotCoordinator:            "the group's coordinator is moving; retry in a moment",
	kerr.CoordinatorLoadInProgress: "the group's coordinator is loading the group; retry in a moment",
	kerr.InvalidGroupID:            "a group name must not be empty",
}

// explainGroup is cf.explain with the group hints.
func explainGroup(cf *clientFlags, err error) error {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if h := groupHints[ke]; h != "" {
			return fmt.Errorf("%w\nhint: %s", err, h)
		}
	}
	return cf.explain(err)
}

func newGroupListCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		output string
		states []string
	)
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List consumer groups",
		Example: `  raftka group list
  raftka group list --state Stable,Empty --output json`,
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
			listed, err := adm.ListGroups(ctx, states...)
			if err != nil {
				return explainGroup(cf, err)
			}
			type listedGroup struct {
				Group        string `json:"group"`
				State        string `json:"state"`
				ProtocolType string `json:"protocol_type"`
				Coordinator  int32  `json:"coordinator"`
			}
			list := []listedGroup{}
			for _, g := range listed.Sorted() {
				list = append(list, listedGroup{g.Group, g.State, g.ProtocolType, g.Coordinator})
			}
			if output == "json" {
				return writeJSON(e.stdout, list)
			}
			tw := newTable(e.stdout)
			fmt.Fprintln(tw, "GROUP\tSTATE\tPROTOCOL-TYPE\tCOORDINATOR")
			for _, g := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", g.Group, g.State, orDash(g.ProtocolType), g.Coordinator)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().StringSliceVar(&states, "state", nil, "list only groups in these states (Empty, PreparingRebalance, CompletingRebalance, Stable), comma-separated")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// groupDescription is what `raftka group describe` reports.
type groupDescription struct {
	Group        string              `json:"group"`
	State        string              `json:"state"`
	ProtocolType string              `json:"protocol_type"`
	Protocol     string              `json:"protocol"`
	Coordinator  int32               `json:"coordinator"`
	Members      []memberDescription `json:"members"`
	Offsets      []groupOffset       `json:"offsets"`
	// TotalLag sums the lag of the partitions whose lag is known.
	TotalLag int64 `json:"total_lag"`
}

type memberDescription struct {
	MemberID   string   `json:"member_id"`
	InstanceID string   `json:"instance_id,omitempty"`
	ClientID   string   `json:"client_id"`
	ClientHost string   `json:"client_host"`
	Assigned   []string `json:"assigned"` // "topic/partition"
}

type groupOffset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is -1 when the group has not committed the partition.
	Committed int64 `json:"committed"`
	// LogEndOffset is the partition's high watermark, -1 if unknown.
	LogEndOffset int64 `json:"log_end_offset"`
	// Lag is LogEndOffset - Committed (from the log start without a
	// commit), -1 if unknown.
	Lag      int64  `json:"lag"`
	MemberID string `json:"member_id,omitempty"`
	Error    string `json:"error,omitempty"`
}

func newGroupDescribeCmd(e *env, cf *clientFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "describe GROUP...",
		Short: "Show a group's state, members, assignments, committed offsets and lag",
		Long: `Show a consumer group's state, protocol and members with their assignments,
and for every partition the group consumes or has committed: the committed
offset, the log end offset (the partition's high watermark) and the lag
between them. A partition assigned but never committed counts its lag from
the log start.`,
		Example: `  raftka group describe orders-readers
  raftka group describe orders-readers --output json | jq .total_lag`,
		Args: positional(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, groups []string) error {
			if err := checkOutput(cmd, output); err != nil {
				return err
			}
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			descs, err := describeGroups(ctx, adm, groups)
			if err != nil {
				return explainGroup(cf, err)
			}
			if output == "json" {
				return writeJSON(e.stdout, descs)
			}
			for i, d := range descs {
				if i > 0 {
					fmt.Fprintln(e.stdout)
				}
				if err := printGroupDescription(e.stdout, d); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

// describeGroups describes groups and computes their lag. A group that
// does not exist fails the call.
func describeGroups(ctx context.Context, adm *kadm.Client, groups []string) ([]groupDescription, error) {
	lags, err := adm.Lag(ctx, groups...)
	if err != nil {
		return nil, err
	}
	var out []groupDescription
	for _, name := range groups {
		l, ok := lags[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("group %q: missing from the broker's response", name)
		case l.DescribeErr != nil:
			return nil, fmt.Errorf("group %q: %w", name, l.DescribeErr)
		case l.FetchErr != nil:
			return nil, fmt.Errorf("group %q: committed offsets: %w", name, l.FetchErr)
		case l.State == "Dead" && len(l.Lag) == 0:
			return nil, fmt.Errorf("group %q: %w", name, kerr.GroupIDNotFound)
		}
		d := groupDescription{Group: name, State: l.State, ProtocolType: l.ProtocolType, Protocol: l.Protocol,
			Coordinator: l.Coordinator.NodeID, Members: []memberDescription{}, Offsets: []groupOffset{}}
		for _, m := range l.Members {
			md := memberDescription{MemberID: m.MemberID, ClientID: m.ClientID, ClientHost: m.ClientHost, Assigned: []string{}}
			if m.InstanceID != nil {
				md.InstanceID = *m.InstanceID
			}
			if c, ok := m.Assigned.AsConsumer(); ok {
				for _, t := range c.Topics {
					for _, p := range t.Partitions {
						md.Assigned = append(md.Assigned, fmt.Sprintf("%s/%d", t.Topic, p))
					}
				}
			}
			d.Members = append(d.Members, md)
		}
		for _, gl := range l.Lag.Sorted() {
			o := groupOffset{Topic: gl.Topic, Partition: gl.Partition, Committed: gl.Commit.At, LogEndOffset: -1, Lag: gl.Lag}
			if gl.End.Err == nil {
				o.LogEndOffset = gl.End.Offset
			}
			if gl.Member != nil {
				o.MemberID = gl.Member.MemberID
			}
			if gl.Err != nil {
				o.Error = gl.Err.Error()
			}
			if o.Lag > 0 {
				d.TotalLag += o.Lag
			}
			d.Offsets = append(d.Offsets, o)
		}
		out = append(out, d)
	}
	return out, nil
}

func printGroupDescription(w io.Writer, d groupDescription) error {
	tw := newTable(w)
	protocol := d.ProtocolType
	if d.Protocol != "" {
		protocol += "/" + d.Protocol
	}
	fmt.Fprintf(tw, "GROUP\t%s\n", d.Group)
	fmt.Fprintf(tw, "STATE\t%s\n", d.State)
	fmt.Fprintf(tw, "PROTOCOL\t%s\n", orDash(protocol))
	fmt.Fprintf(tw, "COORDINATOR\t%d\n", d.Coordinator)
	fmt.Fprintf(tw, "MEMBERS\t%d\n", len(d.Members))
	fmt.Fprintf(tw, "TOTAL-LAG\t%d\n", d.TotalLag)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(d.Members) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "MEMBER-ID\tINSTANCE-ID\tCLIENT-ID\tHOST\tASSIGNMENT")
		for _, m := range d.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.MemberID, orDash(m.InstanceID), orDash(m.ClientID), orDash(m.ClientHost), orDash(strings.Join(m.Assigned, ",")))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(d.Offsets) > 0 {
		fmt.Fprintln(w)
		tw = newTable(w)
		fmt.Fprintln(tw, "TOPIC\tPARTITION\tCOMMITTED\tLOG-END-OFFSET\tLAG\tMEMBER-ID")
		for _, o := range d.Offsets {
			committed, end, lag := dashIfNegative(o.Committed), dashIfNegative(o.LogEndOffset), dashIfNegative(o.Lag)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s", o.Topic, o.Partition, committed, end, lag, orDash(o.MemberID))
			if o.Error != "" {
				fmt.Fprintf(tw, "\t%s", o.Error)
			}
			fmt.Fprintln(tw)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func dashIfNegative(n int64) string {
	if n < 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

func newGroupDeleteCmd(e *env, cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "delete GROUP...",
		Aliases: []string{"rm"},
		Short:   "Delete empty consumer groups and their committed offsets",
		Example: `  raftka group delete orders-readers`,
		Args:    positional(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, groups []string) error {
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resps, err := adm.DeleteGroups(ctx, groups...)
			if err != nil {
				return explainGroup(cf, err)
			}
			ok := true
			for _, g := range groups {
				r, found := resps[g]
				switch {
				case !found:
					ok = false
					fmt.Fprintf(e.stderr, "error: group %q: missing from the broker's response\n", g)
				case r.Err != nil:
					ok = false
					fmt.Fprintf(e.stderr, "error: group %q: %v\n", g, explainGroup(cf, r.Err))
				default:
					fmt.Fprintf(e.stdout, "deleted group %s\n", g)
				}
			}
			if !ok {
				return failed()
			}
			return nil
		},
	}
}

func newGroupResetOffsetsCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		topic                string
		toEarliest, toLatest bool
		toOffset             int64
		dryRun               bool
		output               string
	)
	cmd := &cobra.Command{
		Use:   "reset-offsets GROUP --topic TOPIC (--to-earliest | --to-latest | --to-offset N)",
		Short: "Set a group's committed offsets for a topic",
		Long: `Commit new offsets for every partition of TOPIC on behalf of GROUP, so that its
consumers start there next time. The group must be empty (no running
consumers): a running consumer would overwrite the new offsets with its own.
--to-offset is clamped to each partition's log start and end.`,
		Example: `  # Read the topic again from the start
  raftka group reset-offsets orders-readers --topic orders --to-earliest

  # Skip everything written so far
  raftka group reset-offsets orders-readers --topic orders --to-latest

  # Show what would be committed, commit nothing
  raftka group reset-offsets orders-readers --topic orders --to-offset 100 --dry-run`,
		Args: positional(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := args[0]
			if err := checkOutput(cmd, output); err != nil {
				return err
			}
			n := 0
			for _, set := range []bool{toEarliest, toLatest, cmd.Flags().Changed("to-offset")} {
				if set {
					n++
				}
			}
			if n != 1 {
				return usageError(cmd, "give exactly one of --to-earliest, --to-latest and --to-offset")
			}
			if topic == "" {
				return usageError(cmd, "--topic is required")
			}
			if toOffset < 0 {
				return usageError(cmd, "--to-offset must be >= 0, got %d", toOffset)
			}
			adm, ctx, done, err := cf.newAdmin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()

			described, err := adm.DescribeGroups(ctx, group)
			if err != nil {
				return explainGroup(cf, err)
			}
			d := described[group]
			if d.Err != nil {
				return explainGroup(cf, fmt.Errorf("group %q: %w", group, d.Err))
			}
			if d.State != "Empty" && d.State != "Dead" {
				return fmt.Errorf("group %q is %s with %d members; offsets can be reset only while it is empty\nhint: stop the group's consumers first", group, d.State, len(d.Members))
			}
			starts, err := adm.ListStartOffsets(ctx, topic)
			if err != nil {
				return explainGroup(cf, err)
			}
			ends, err := adm.ListEndOffsets(ctx, topic)
			if err != nil {
				return explainGroup(cf, err)
			}
			if err := ends.Error(); err != nil {
				return explainGroup(cf, fmt.Errorf("topic %q: %w", topic, err))
			}
			if _, ok := ends[topic]; !ok {
				return explainGroup(cf, fmt.Errorf("topic %q: %w", topic, kerr.UnknownTopicOrPartition))
			}
			previous, err := adm.FetchOffsetsForTopics(ctx, group, topic)
			if err != nil {
				return explainGroup(cf, err)
			}
			type reset struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Previous  int64  `json:"previous"`
				Offset    int64  `json:"offset"`
			}
			var resets []reset
			offsets := kadm.Offsets{}
			ends.Each(func(end kadm.ListedOffset) {
				start, _ := starts.Lookup(topic, end.Partition)
				at := toOffset
				switch {
				case toEarliest:
					at = start.Offset
				case toLatest:
					at = end.Offset
				default:
					at = min(max(at, start.Offset), end.Offset)
				}
				prev := int64(-1)
				if p, ok := previous.Lookup(topic, end.Partition); ok && p.Err == nil {
					prev = p.At
				}
				resets = append(resets, reset{topic, end.Partition, prev, at})
				offsets.Add(kadm.Offset{Topic: topic, Partition: end.Partition, At: at, LeaderEpoch: -1})
			})
			slices.SortFunc(resets, func(a, b reset) int { return int(a.Partition - b.Partition) })
			if !dryRun {
				resps, err := adm.CommitOffsets(ctx, group, offsets)
				if err != nil {
					return explainGroup(cf, err)
				}
				if err := resps.Error(); err != nil {
					return explainGroup(cf, fmt.Errorf("committing offsets of group %q: %w", group, err))
				}
			}
			if output == "json" {
				return writeJSON(e.stdout, resets)
			}
			tw := newTable(e.stdout)
			fmt.Fprintln(tw, "TOPIC\tPARTITION\tPREVIOUS\tNEW-OFFSET")
			for _, r := range resets {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", r.Topic, r.Partition, dashIfNegative(r.Previous), r.Offset)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(e.stderr, "dry run: nothing was committed")
			} else {
				fmt.Fprintf(e.stderr, "reset %d partitions of %s for group %s\n", len(resets), topic, group)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&topic, "topic", "t", "", "topic whose offsets to reset (every partition)")
	f.BoolVar(&toEarliest, "to-earliest", false, "reset to each partition's log start offset")
	f.BoolVar(&toLatest, "to-latest", false, "reset to each partition's end (skip everything written so far)")
	f.Int64Var(&toOffset, "to-offset", 0, "reset to this offset, clamped to each partition's log start and end")
	f.BoolVar(&dryRun, "dry-run", false, "print the new offsets without committing them")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
