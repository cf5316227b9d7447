// Package admin serves the gouwsgi admin API (proto/gouwsgi/admin/v1) over
// gRPC: NodeService, LegionService, CacheService, AlarmService and the
// standard grpc.health.v1 service.
//
// The servers depend only on the small interfaces declared here (Node,
// Legion, Caches, Alarms), which cmd/gouwsgi satisfies with adapters over
// the node and legion packages, in the manner of rqlite's proxy package. This
// package is the only place where domain errors become gRPC status codes
// (see the error variables), and it owns the admin API's security: where it
// may listen (Listen), bearer-token and mutual-TLS checks (interceptors on
// unary and streaming calls).
package admin
