// Package admintest provides in-memory implementations of the admin
// package's Node, Legion, Caches and Alarms interfaces with fixed,
// deterministic data, and a helper that starts a real admin server on them.
// It exists for tests (rpc/admin's and gouwsgictl's golden tests); the real
// implementations are adapters over node and legion wired in cmd/gouwsgi.
package admintest
