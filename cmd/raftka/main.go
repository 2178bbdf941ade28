// Command raftka is Raftka's one binary: it runs a broker (`raftka start`)
// and talks to a cluster over the Kafka protocol (`topic`, `produce`,
// `consume`). It stays thin: it parses flags and config files and calls the
// broker package, kadm and kgo.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes. Scripts can tell a mistake in the command line (2) from a
// failure of the operation (1).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(context.Background(), osEnv(), os.Args[1:]))
}

// env is the process a command runs in: its streams, the signals that stop
// it and how it exits. Tests substitute buffers and a fake signal channel.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// signals subscribes to SIGINT and SIGTERM until stop is called.
	signals func() (ch <-chan os.Signal, stop func())
	// exit ends the process at once; start uses it when a second signal
	// arrives during shutdown.
	exit func(code int)
	// tune tunes the Go runtime for brokers running in this process (see
	// runtime.go); nil leaves it alone, as tests do.
	tune func()
}

// tuneRuntime tunes the Go runtime for the commands that run brokers in
// this process (start, demo, bench): the heap budget and the processors.
// Client commands keep the Go runtime's defaults.
func (e *env) tuneRuntime() {
	if e.tune != nil {
		e.tune()
	}
}

func osEnv() *env {
	return &env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		signals: func() (<-chan os.Signal, func()) {
			ch := make(chan os.Signal, 2)
			signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
			return ch, func() { signal.Stop(ch) }
		},
		exit: os.Exit,
		tune: tuneRuntime,
	}
}

// interruptible returns a context that ends at the first SIGINT or SIGTERM,
// for commands (produce, consume) that stop cleanly when interrupted.
func (e *env) interruptible(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	sigs, stop := e.signals()
	go func() {
		defer stop()
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, e *env, args []string) int {
	root := newRootCmd(e)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitCodeError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(e.stderr, "error: %v\n", ee.err)
		}
		if ee.code == exitUsage && ee.usage != "" {
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", ee.usage)
		}
		return ee.code
	}
	fmt.Fprintf(e.stderr, "error: %v\n", err)
	return exitError
}

// exitCodeError carries the exit code of a failed command. A nil err means
// the command already reported the failure.
type exitCodeError struct {
	code  int
	err   error
	usage string // command path to suggest --help for, with exitUsage
}

func (e *exitCodeError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitCodeError) Unwrap() error { return e.err }

// usageError reports a mistake in cmd's command line.
func usageError(cmd *cobra.Command, format string, args ...any) error {
	return &exitCodeError{code: exitUsage, err: fmt.Errorf(format, args...), usage: cmd.CommandPath()}
}

// failed reports that the operation failed; the error has been printed.
func failed() error { return &exitCodeError{code: exitError} }
