package legion

// Fault injection for tests and drills in other packages (replicated
// caches, e2e): the same crash and partition the legion's own tests use.

// Crash stops the node at once, as kill -9 would: no lordship release, no
// leadership transfer, no gossip leave; the data directory stays as it is,
// so a new Node on it restarts the same member.
func (n *Node) Crash() { n.halt() }

// CutNetwork partitions the node: every Raft and node-to-node RPC
// connection, in both directions, is closed and new ones are refused until
// HealNetwork. Gossip is left alone, so peers still see it alive.
func (n *Node) CutNetwork() { n.gate.closeAll() }

// HealNetwork ends a CutNetwork.
func (n *Node) HealNetwork() { n.gate.heal() }
