package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newConsumeCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		fromBeginning bool
		maxRecords    int
		partition     int32
		offset        string
		format        string
		group         string
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC",
		Short: "Print a topic's records to stdout",
		Long: `Read records from TOPIC and print each one with --format (by default its
value and a newline). Like kafka-console-consumer, it starts at the end of each
partition and prints only new records, unless --from-beginning or --offset say
otherwise. It runs until Ctrl-C, or until it has printed -n records.

With --group it consumes as a member of a consumer group: the group's members
share the topic's partitions, and each starts where the group last committed
(--from-beginning or --offset say where to start in partitions the group has
never committed). It commits what it printed as it goes and when it exits, so
the next run with the same group goes on from there.

--format is a template: %v value, %k key, %p partition, %o offset,
%t timestamp (milliseconds since the Unix epoch), %% a percent sign; \n, \t,
\r and \\ are a newline, a tab, a carriage return and a backslash.`,
		Example: `  # Everything in the topic so far, then wait for more
  raftka consume orders --from-beginning

  # The first 10 records, then exit
  raftka consume orders --from-beginning -n 10

  # Partition 2 from offset 100, with keys and positions
  raftka consume orders --partition 2 --offset 100 --format '%p/%o %k=%v\n'

  # The last 5 records of each partition
  raftka consume orders --offset -5

  # As a member of a group: run it twice to share the partitions
  raftka consume orders --group orders-readers --from-beginning`,
		Args: positional(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			f := cmd.Flags()
			if fromBeginning && f.Changed("offset") {
				return usageError(cmd, "give --from-beginning or --offset, not both")
			}
			if maxRecords < 0 {
				return usageError(cmd, "-n must be >= 0, got %d", maxRecords)
			}
			tmpl, err := parseRecordFormat(format)
			if err != nil {
				return usageError(cmd, "--format: %v", err)
			}
			start := kgo.NewOffset().AtEnd()
			if fromBeginning {
				start = kgo.NewOffset().AtStart()
			}
			if f.Changed("offset") {
				if start, err = parseStartOffset(offset); err != nil {
					return usageError(cmd, "--offset: %v", err)
				}
			}
			manual := f.Changed("partition")
			if manual && partition < 0 {
				return usageError(cmd, "--partition must be >= 0, got %d", partition)
			}
			if manual && group != "" {
				return usageError(cmd, "give --partition or --group, not both: a group assigns partitions to its members")
			}

			opts := []kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(start)}
			if manual {
				opts = []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: start}})}
			}
			if group != "" {
				// Commit only what was printed: with -n, a poll may return
				// records this run will not print.
				opts = append(opts, kgo.ConsumerGroup(group), kgo.AutoCommitMarks())
			}
			cl, err := cf.newClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := e.interruptible(cmd.Context())
			defer cancel()
			if err := checkConsumable(ctx, cf, cl, topic, partition, manual); err != nil {
				return cf.explain(err)
			}
			var printed func(*kgo.Record)
			if group != "" {
				printed = func(r *kgo.Record) { cl.MarkCommitRecords(r) }
			}
			n, err := consumeRecords(ctx, cl, e.stdout, tmpl, maxRecords, printed)
			fmt.Fprintf(e.stderr, "consumed %d records\n", n)
			if group != "" {
				// Commit what was printed before leaving the group, even
				// after Ctrl-C.
				cctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
				cerr := cl.CommitMarkedOffsets(cctx)
				cancel()
				if cerr != nil && err == nil {
					err = fmt.Errorf("committing the offsets of group %q: %w", group, cerr)
				}
			}
			if err != nil {
				return cf.explain(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&fromBeginning, "from-beginning", false, "start at the beginning of each partition instead of its end")
	f.IntVarP(&maxRecords, "max-records", "n", 0, "exit after printing this many records (0: run until Ctrl-C)")
	f.Int32VarP(&partition, "partition", "p", 0, "read only this partition (default: all)")
	f.StringVarP(&offset, "offset", "o", "", "start offset: a number, -N for the last N records, earliest or latest")
	format = `%v\n`
	f.VarP(templateFlag{&format}, "format", "f", "output template; see above")
	f.StringVarP(&group, "group", "g", "", "consume as a member of this consumer group, committing offsets")
	return cmd
}

// parseStartOffset parses --offset.
func parseStartOffset(s string) (kgo.Offset, error) {
	switch s {
	case "earliest", "beginning":
		return kgo.NewOffset().AtStart(), nil
	case "latest", "end":
		return kgo.NewOffset().AtEnd(), nil
	}
	o, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return kgo.Offset{}, fmt.Errorf("%q is not an offset: want a number, -N, earliest or latest", s)
	}
	if o < 0 {
		return kgo.NewOffset().AtEnd().Relative(o), nil
	}
	return kgo.NewOffset().At(o), nil
}

// checkConsumable fails fast, within --timeout, if the cluster cannot be
// reached or the topic (or partition) does not exist; kgo itself would wait
// for them forever.
func checkConsumable(ctx context.Context, cf *clientFlags, cl *kgo.Client, topic string, partition int32, manual bool) error {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	topics, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	t, ok := topics[topic]
	if !ok {
		return fmt.Errorf("topic %q: %w", topic, kerr.UnknownTopicOrPartition)
	}
	if t.Err != nil {
		return fmt.Errorf("topic %q: %w", topic, t.Err)
	}
	if _, ok := t.Partitions[partition]; manual && !ok {
		return fmt.Errorf("topic %q has no partition %d; it has %d (0 to %d)", topic, partition, len(t.Partitions), len(t.Partitions)-1)
	}
	return nil
}

// consumeRecords prints records with tmpl until ctx ends or, if max > 0,
// max records are printed. It returns how many it printed, and the first
// fetch error the client cannot retry. printed, if set, is called for each
// record once its output is flushed.
func consumeRecords(ctx context.Context, cl *kgo.Client, out io.Writer, tmpl recordFormat, max int, printed func(*kgo.Record)) (int, error) {
	w := bufio.NewWriter(out)
	var buf []byte
	n := 0
	for max == 0 || n < max {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var fatal error
		fetches.EachError(func(t string, p int32, err error) {
			if fatal == nil && !isRetriableFetchError(err) {
				fatal = fmt.Errorf("topic %q partition %d: %w", t, p, err)
			}
		})
		iter := fetches.RecordIter()
		var batch []*kgo.Record
		for !iter.Done() && (max == 0 || n < max) {
			r := iter.Next()
			buf = tmpl.append(buf[:0], r)
			if _, err := w.Write(buf); err != nil {
				return n, err
			}
			batch = append(batch, r)
			n++
		}
		if err := w.Flush(); err != nil {
			return n, err
		}
		if printed != nil {
			for _, r := range batch {
				printed(r)
			}
		}
		if fatal != nil {
			return n, fatal
		}
	}
	return n, w.Flush()
}

// isRetriableFetchError reports whether the client recovers from a fetch
// error by itself; those are not worth stopping for.
func isRetriableFetchError(err error) bool {
	var de *kgo.ErrDataLoss
	return kerr.IsRetriable(err) || errors.As(err, &de) ||
		errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)
}

// templateFlag is a string flag whose default --help shows unquoted, as it
// is typed: %v\n rather than "%v\\n".
type templateFlag struct{ s *string }

func (t templateFlag) String() string {
	if t.s == nil {
		return ""
	}
	return *t.s
}
func (t templateFlag) Set(v string) error { *t.s = v; return nil }
func (t templateFlag) Type() string       { return "template" }

// recordFormat is a compiled --format template.
type recordFormat []formatPart

// formatPart is literal text, or (verb != 0) a field of the record.
type formatPart struct {
	literal string
	verb    byte
}

// parseRecordFormat compiles a --format template; see the consume help.
func parseRecordFormat(s string) (recordFormat, error) {
	var parts recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			parts = append(parts, formatPart{literal: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' && c != '\\' {
			lit.WriteByte(c)
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("%q ends in a lone %c", s, c)
		}
		i++
		next := s[i]
		switch {
		case c == '%' && next == '%':
			lit.WriteByte('%')
		case c == '%' && strings.IndexByte("kvpot", next) >= 0:
			flush()
			parts = append(parts, formatPart{verb: next})
		case c == '\\' && next == 'n':
			lit.WriteByte('\n')
		case c == '\\' && next == 't':
			lit.WriteByte('\t')
		case c == '\\' && next == 'r':
			lit.WriteByte('\r')
		case c == '\\' && next == '\\':
			lit.WriteByte('\\')
		default:
			return nil, fmt.Errorf("unknown %c%c in %q: use %%k %%v %%p %%o %%t %%%% \\n \\t \\r \\\\", c, next, s)
		}
	}
	flush()
	return parts, nil
}

// append appends r formatted by f to b.
func (f recordFormat) append(b []byte, r *kgo.Record) []byte {
	for _, p := range f {
		switch p.verb {
		case 0:
			b = append(b, p.literal...)
		case 'k':
			b = append(b, r.Key...)
		case 'v':
			b = append(b, r.Value...)
		case 'p':
			b = strconv.AppendInt(b, int64(r.Partition), 10)
		case 'o':
			b = strconv.AppendInt(b, r.Offset, 10)
		case 't':
			b = strconv.AppendInt(b, r.Timestamp.UnixMilli(), 10)
		}
	}
	return b
}
