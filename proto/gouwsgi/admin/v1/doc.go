// Package adminv1 is the generated Go code of the gouwsgi admin API
// (gouwsgi.admin.v1): NodeService, LegionService, CacheService and
// AlarmService. The .proto files beside it are the source; regenerate with
// `buf generate` (see buf.gen.yaml) and never edit the *.pb.go files.
package adminv1
