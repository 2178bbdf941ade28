// Package cluster is a broker's address book of its peers and its failure
// detector, built on gossip (hashicorp/memberlist, the SWIM protocol of Consul
// and Serf).
//
// Gossip says who is alive; Raft says what is true. A Cluster tells its
// broker, within a second or two, which brokers answer and where to reach
// them (Kafka, Raft and admin addresses, rack, version). It never decides
// membership of the cluster or placement of replicas: those live in the
// metadata Raft log, and a broker that gossip calls dead is only a hint to the
// controller, which fences it through the log.
//
// Each broker gossips as the memberlist node "broker-<id>" and advertises a
// Member as the node's metadata, a small versioned encoding (see
// member.go). Beside membership, a Cluster carries two kinds of
// application data:
//
//   - Broadcast and Messages: small best-effort messages ("broker 2 leads
//     group 1034 at term 7") that every node re-gossips once, so they spread
//     epidemically. They may arrive more than once, out of order, or never
//     (a node that is down while a message spreads never sees it).
//   - Config.LocalState and Config.OnRemoteState: a full state exchanged on
//     every join and every push/pull interval, so that state which must
//     converge does, and a node that joins late learns it.
//
// Memberlist calls the package's delegates from its network goroutines, some
// while holding its own locks. Delegates therefore only enqueue: they never
// block, never call back into memberlist, and never wait for the consumer of
// Events or Messages. See Cluster.Events and Cluster.Messages for exactly what
// happens when a consumer falls behind.
package cluster
