package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newRootCmd builds the command tree. It holds no package state, so tests
// build a fresh tree for every invocation.
func newRootCmd(e *env) *cobra.Command {
	cf := &clientFlags{}
	root := &cobra.Command{
		Use:   "raftka",
		Short: "Raftka, a Kafka-compatible streaming platform on Raft",
		Long: `Raftka is a Kafka-compatible streaming platform: any Kafka client talks to it
over the Kafka protocol, and every partition is replicated by its own Raft group.

This one binary runs a broker ('raftka start') and talks to a running cluster
over the Kafka protocol ('raftka topic', 'raftka produce', 'raftka consume').`,
		Example: `  # Run a single broker that keeps nothing on disk
  raftka start --storage memory

  # In another terminal: create a topic, write to it and read it back
  raftka topic create orders --partitions 3
  printf 'one\ntwo\nthree\n' | raftka produce orders
  raftka consume orders --from-beginning -n 3`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noSubcommand,
		RunE:          func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(cmd, "%v", err)
	})
	root.CompletionOptions.HiddenDefaultCmd = true
	cf.register(root)
	root.AddCommand(
		newStartCmd(e),
		newDemoCmd(e),
		newTopicCmd(e, cf),
		newProduceCmd(e, cf),
		newConsumeCmd(e, cf),
		newGroupCmd(e, cf),
		newBenchCmd(e, cf),
		newChaosCmd(e, cf),
		newVersionCmd(e),
	)
	return root
}

// clientFlags are the persistent flags of the commands that talk to a
// cluster.
type clientFlags struct {
	brokers []string
	timeout time.Duration
}

func (f *clientFlags) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringSliceVar(&f.brokers, "brokers", []string{"127.0.0.1:9092"},
		"Kafka addresses of brokers to bootstrap from, comma-separated (host:port,...)")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second,
		"how long to wait for the cluster: per admin operation, per produced record, and to find the topic when consuming")
}

// noSubcommand is the Args of a command that only groups subcommands: an
// argument there is a mistyped subcommand.
func noSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default
	}
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return usageError(cmd, "%s", msg)
}

// positional wraps a cobra argument validator so that its failure is a
// usage error (exit 2).
func positional(v cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := v(cmd, args); err != nil {
			return usageError(cmd, "%v", err)
		}
		return nil
	}
}
