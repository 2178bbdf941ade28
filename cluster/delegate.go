package cluster

import (
	"log/slog"

	"github.com/hashicorp/memberlist"
)

// delegate is the Cluster as memberlist sees it. Memberlist calls it from its
// own goroutines, and calls the EventDelegate, AliveDelegate and
// ConflictDelegate methods while holding its node lock, so none of these
// methods may block or call back into memberlist: they only read the
// Cluster's own state and enqueue.
type delegate struct{ c *Cluster }

var (
	_ memberlist.Delegate         = delegate{}
	_ memberlist.EventDelegate    = delegate{}
	_ memberlist.AliveDelegate    = delegate{}
	_ memberlist.ConflictDelegate = delegate{}
)

// NodeMeta returns this broker's encoded Member, validated at Start and
// UpdateSelf to fit MaxMetaBytes.
func (d delegate) NodeMeta(limit int) []byte {
	meta := d.c.selfMeta()
	if len(meta) > limit {
		// Unreachable: meta is checked against MaxMetaBytes == limit.
		// Returning it would make memberlist panic; peers reject nil meta.
		d.c.log.Error("cluster: member metadata over memberlist's limit", "bytes", len(meta), "limit", limit)
		return nil
	}
	return meta
}

// NotifyMsg delivers a user message; memberlist reuses buf, so it is copied.
func (d delegate) NotifyMsg(buf []byte) { d.c.gossip.receive(buf) }

// GetBroadcasts hands queued user messages to memberlist's gossip.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.c.gossip.queue.GetBroadcasts(overhead, limit)
}

// localStateVersion1 prefixes the application state in a push/pull, so that
// the package can later carry state of its own beside it.
const localStateVersion1 = 1

// LocalState returns the application's state for a push/pull.
func (d delegate) LocalState(join bool) []byte {
	f := d.c.localState.Load()
	if f == nil {
		return nil
	}
	state := (*f)()
	if state == nil {
		return nil
	}
	b := make([]byte, 0, 1+len(state))
	b = append(b, localStateVersion1)
	return append(b, state...)
}

// MergeRemoteState passes a peer's application state to OnRemoteState.
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	if len(buf) == 0 {
		return
	}
	if buf[0] != localStateVersion1 {
		d.c.log.Debug("cluster: ignoring remote state of unknown version", "version", buf[0])
		return
	}
	f := d.c.remoteState.Load()
	if f == nil {
		return
	}
	(*f)(append([]byte(nil), buf[1:]...))
}

// NotifyAlive rejects nodes whose metadata is not a Member, such as another
// application's memberlist cluster on the same port.
func (d delegate) NotifyAlive(n *memberlist.Node) error {
	if _, err := decodeMeta(n.Meta); err != nil {
		d.c.stats.aliveRejected.Add(1)
		return err
	}
	return nil
}

// NotifyJoin records a member that became alive.
func (d delegate) NotifyJoin(n *memberlist.Node) { d.c.notify(EventJoin, n) }

// NotifyUpdate records new metadata of an alive member.
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.c.notify(EventUpdate, n) }

// NotifyLeave records a member that left or was declared dead.
func (d delegate) NotifyLeave(n *memberlist.Node) { d.c.notify(EventLeave, n) }

// NotifyConflict reports two live nodes under one name, that is two brokers
// configured with the same id. Memberlist keeps the first and ignores the
// other until the first is dead.
func (d delegate) NotifyConflict(existing, other *memberlist.Node) {
	d.c.log.Warn("cluster: two brokers claim the same id; broker ids must be unique",
		slog.String("node", existing.Name),
		slog.String("existing_addr", existing.Address()),
		slog.String("other_addr", other.Address()))
}
