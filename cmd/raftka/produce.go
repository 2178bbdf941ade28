package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/raftka/raftka/bench"
	"io"
	"sync"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newProduceCmd(e *env, cf *clientFlags) *cobra.Command {
	var (
		keySep      string
		partition   int32
		compression string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Write lines from stdin to a topic, one record per line",
		Long: `Read stdin line by line and produce each line as one record to TOPIC, with
acks=all and idempotence (every record is written once, in order per partition).
Records without a key are spread over the partitions; records with a key go to
the partition of their key, unless --partition names one.

At the end of input (or on Ctrl-C) the command waits for every record to be
acknowledged, prints "produced N records" to stderr, and exits 1 if any record
failed, printing the first error.`,
		Example: `  # Three records
  printf 'one\ntwo\nthree\n' | raftka produce orders

  # Keyed records: "key:value" per line
  printf 'alice:1\nbob:2\n' | raftka produce users --key-separator :

  # A file, compressed, into partition 0
  raftka produce logs --partition 0 --compression zstd < app.log`,
		Args: positional(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			codec, err := compressionCodec(compression)
			if err != nil {
				return usageError(cmd, "%v", err)
			}
			opts := []kgo.Opt{
				kgo.DefaultProduceTopic(topic),
				kgo.ProducerBatchCompression(codec),
				// Bound each record's wait, so an unreachable cluster fails
				// the command instead of hanging it.
				kgo.RecordDeliveryTimeout(cf.timeout),
				// Takes effect only where the broker runs with
				// --auto-create-topics, like kafka-console-producer.
				kgo.AllowAutoTopicCreation(),
			}
			manual := cmd.Flags().Changed("partition")
			if manual {
				if partition < 0 {
					return usageError(cmd, "--partition must be >= 0, got %d", partition)
				}
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := cf.newClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, cancel := e.interruptible(cmd.Context())
			defer cancel()

			var res produceResult
			err = produceLines(ctx, cl, e.stdin, func(line []byte) *kgo.Record {
				r := &kgo.Record{Topic: topic, Value: line}
				if keySep != "" {
					if k, v, ok := bytes.Cut(line, []byte(keySep)); ok {
						r.Key, r.Value = k, v
					}
				}
				if manual {
					r.Partition = partition
				}
				return r
			}, &res)
			ok, nFailed, first := res.get()
			fmt.Fprintf(e.stderr, "produced %d records\n", ok)
			if err != nil {
				return fmt.Errorf("reading stdin: %w", err)
			}
			switch {
			case nFailed == 1:
				return fmt.Errorf("1 record failed: %w", cf.explain(first))
			case nFailed > 1:
				return fmt.Errorf("%d records failed; the first: %w", nFailed, cf.explain(first))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&keySep, "key-separator", "K", "", "split each line at the first SEP into key and value; lines without SEP have no key")
	f.Int32VarP(&partition, "partition", "p", 0, "produce every record to this partition (default: chosen by key, or spread)")
	f.StringVarP(&compression, "compression", "z", "none", "batch compression: none, gzip, snappy, lz4 or zstd")
	return cmd
}

// produceResult counts the outcomes of produced records; the client's
// promise goroutine writes it while the command reads it.
type produceResult struct {
	mu struct {
		sync.Mutex
		ok, failed int
		first      error
	}
}

func (r *produceResult) record(_ *kgo.Record, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.mu.ok++
		return
	}
	r.mu.failed++
	if r.mu.first == nil {
		r.mu.first = err
	}
}

func (r *produceResult) get() (ok, failed int, first error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.mu.ok, r.mu.failed, r.mu.first
}

// produceLines produces one record per line of in (without its line
// ending) until the end of in or ctx, then waits until every record is
// acknowledged or has failed. It returns only a read error; the outcome of
// each record goes to res.
func produceLines(ctx context.Context, cl *kgo.Client, in io.Reader, toRecord func([]byte) *kgo.Record, res *produceResult) error {
	lines := make(chan []byte, 256)
	readErr := make(chan error, 1)
	// The reader may stay blocked on stdin after an interrupt; it ends with
	// the process. Everything else stops when ctx ends.
	go func() {
		defer close(lines)
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				line = bytes.TrimSuffix(line, []byte("\n"))
				line = bytes.TrimSuffix(line, []byte("\r"))
				select {
				case lines <- line:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					readErr <- err
				}
				return
			}
		}
	}()
	// Records already read are delivered even after an interrupt: only
	// reading stops with ctx.
	produceCtx := context.WithoutCancel(ctx)
loop:
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				break loop
			}
			cl.Produce(produceCtx, toRecord(line), res.record)
		case <-ctx.Done():
			break loop
		}
	}
	// Records already handed to the client are bounded by the delivery
	// timeout, so Flush ends even if the cluster went away.
	_ = cl.Flush(context.Background())
	select {
	case err := <-readErr:
		return err
	default:
		return nil
	}
}

// compressionCodec returns the kgo codec named by --compression.
func compressionCodec(name string) (kgo.CompressionCodec, error) {
	c, err := bench.CompressionCodec(name)
	if err != nil {
		return c, fmt.Errorf("--%w", err) // the flag's name, as the user typed it
	}
	return c, nil
}
