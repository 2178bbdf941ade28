package raftlog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
)

// raftLogger adapts slog to raft.Logger. Raft's chatter is debug level;
// its warnings and errors stay warnings and errors.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) logf(level slog.Level, format string, v ...any) {
	if r.l.Enabled(context.Background(), level) {
		r.l.Log(context.Background(), level, fmt.Sprintf(format, v...))
	}
}

func (r raftLogger) Debug(v ...any)                 { r.logf(slog.LevelDebug, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.logf(slog.LevelDebug, format, v...) }
func (r raftLogger) Info(v ...any)                  { r.logf(slog.LevelDebug, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.logf(slog.LevelDebug, format, v...) }
func (r raftLogger) Warning(v ...any)               { r.logf(slog.LevelWarn, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.logf(slog.LevelWarn, format, v...)
}
func (r raftLogger) Error(v ...any)                 { r.logf(slog.LevelError, "%s", fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.logf(slog.LevelError, format, v...) }
func (r raftLogger) Fatal(v ...any) {
	r.logf(slog.LevelError, "%s", fmt.Sprint(v...))
	os.Exit(1)
}
func (r raftLogger) Fatalf(format string, v ...any) {
	r.logf(slog.LevelError, format, v...)
	os.Exit(1)
}
func (r raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
