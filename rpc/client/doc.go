// Package client is the thin admin API client that gouwsgictl (and e2e
// tests) use: it dials a node's admin address with TLS and a bearer token
// as configured and exposes the generated service clients. It imports only
// proto/ and grpc, never the servers in rpc/admin.
package client
