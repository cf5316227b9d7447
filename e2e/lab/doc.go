// Package lab builds throwaway multi-host networks out of Linux network
// namespaces for end-to-end tests: n hosts and a client, each with an eth0
// into one bridge that lives in its own "switch" namespace.
//
//	l := lab.New(t, 3)            // skips unless root with ip and iptables
//	p := l.Hosts[0].Start("gouwsgi", "--ini", cfg)
//	s := l.SampleVIP(l.VIP(0).Addr())
//	l.Hosts[0].Partition()        // iptables DROP inside the namespace
//	r := s.Stop()                 // r.Dual must be 0
//
// Addresses come from private test subnets (Subnet, Subnet6) and exist only
// inside the lab's namespaces; nothing is added to, or changed in, the root
// namespace. Every name starts with a random lab id, so labs of parallel tests
// never collide. Teardown (registered with t.Cleanup) kills the processes the
// lab started, by process id, and deletes every namespace it created, which
// deletes their links with them.
//
// Plumbing uses the ip and iptables binaries; the address sampler reads
// addresses over netlink, because starting `ip` for every host every 10 ms
// would load the machine more than the system under test.
package lab
