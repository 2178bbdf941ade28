// Package raftlog runs a broker's Raft groups — one per partition replica,
// plus the metadata group — on etcd raft, with every group's log, hard state
// and applied state kept in the broker's one storage.Engine.
//
// # Pieces
//
//   - Scheduler drives all groups from one goroutine. A pass takes the Ready
//     of every group with work and writes all their entries and hard states
//     in one synced batch (group commit), sends their messages, applies their
//     committed entries in one more (unsynced) batch, and advances them.
//     Proposals that arrive during a pass wait for the next one, which is
//     what batches them. Idle groups quiesce; one node-level heartbeat per
//     peer keeps failure detection alive for all of them.
//   - Group wraps one raft.RawNode: proposals with ids so that the proposer
//     learns its entry's result at apply, leadership transfer, configuration
//     changes, quiescence.
//   - logStore is a group's raft.Storage over the engine (key layout in
//     keys.go, versioned). Its entryCache keeps recently appended entries in
//     memory, so raft's rereads (committed entries to apply, appends to
//     followers once the inflight window opens) do not become engine
//     iterator seeks; it is bounded per group and per scheduler.
//   - Partition is the Kafka log as a group's state machine: offsets are
//     assigned when an entry is applied, an offset index maps offsets to
//     Raft indexes, idempotent producers are deduplicated at apply.
//   - TCPTransport (and MemNetwork for tests) carries messages between
//     brokers, one connection per peer, batching what is queued.
//
// # Ordering rules of a pass
//
// Entries and hard state are durable before any message that promises them
// leaves (votes, append acknowledgements), and an entry is applied only once
// it is durable here, so that applied state never runs ahead of the durable
// log. Two things therefore need not wait for a pass's write: a leader's
// appends and heartbeats, which promise nothing about its own log, are sent
// before it (Raft thesis §10.2.1) unless the leader's term or vote is itself
// not yet durable; and committed entries that were durable before the pass
// are applied, and their proposers answered, before it, with a commit index
// covering them written alongside (a single voter's entries are committed
// when its own write completes, so this saves it a second fsync per
// produce). A failed write stops the scheduler: nothing after it may be
// acknowledged.
package raftlog
