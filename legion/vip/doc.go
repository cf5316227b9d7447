// Package vip owns virtual IP addresses: it is the only package of gouwsgi
// that talks netlink or sends raw frames.
//
// A Manager adds one address to one interface when its node becomes lord of
// a legion (Claim), announces it with a burst of gratuitous ARPs alternating
// request and reply (unsolicited neighbour advertisements for IPv6), keeps
// re-asserting and re-announcing it while held, and removes it on unlord,
// shutdown or lease loss (Release). The address is treated as reconciled
// state, never as a one-shot event: Reconcile re-applies "present if lord,
// absent otherwise", and CleanStale removes a copy left by a previous run
// before the node joins. Every claim and release carries the lordship's epoch
// (the fencing token) into the logs.
//
// Before a graceful handover, Drain keeps new TCP connections away from a
// held address (a classic BPF program on the interface's tc ingress drops
// SYNs to it, so clients retry and reach the successor) and waits until the
// connections in progress are done: once the successor announces the
// address, every segment of a connection still open here would reach the
// successor and be reset. Release removes the filter after the address.
//
// The hook action spelling is `vip:ADDR[/LEN][,dev=IFACE]`, for example
//
//	legion-lord   = web vip:10.0.0.100/24,dev=eth0
//	legion-unlord = web vip:10.0.0.100/24,dev=eth0
//
// parsed by ParseSpec. Without dev, the interface whose subnet contains the
// address is used; New refuses an address outside every subnet of its
// interface. Frames are built by pure functions (GratuitousARP,
// UnsolicitedNA), unit-tested byte for byte.
//
// Only Linux is supported; elsewhere New returns ErrNotSupported.
package vip
