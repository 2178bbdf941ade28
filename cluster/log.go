package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// memberlistLog adapts memberlist's *log.Logger output to slog. Memberlist
// writes one line per call, "[LEVEL] memberlist: message"; every line goes to
// slog at debug level, with memberlist's own level as an attribute, because
// memberlist logs routine events (a failed probe of a dead peer) as errors.
// What an operator must see, the cluster logs itself.
type memberlistLog struct{ l *slog.Logger }

func newMemberlistLogger(l *slog.Logger) *log.Logger {
	return log.New(memberlistLog{l}, "", 0)
}

func (w memberlistLog) Write(p []byte) (int, error) {
	if !w.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	level := ""
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			level = line[1:i]
			line = strings.TrimSpace(line[i+1:])
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.l.Debug(line, slog.String("memberlist_level", level))
	return len(p), nil
}
