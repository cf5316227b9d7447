// Package cli is gouwsgictl: a cobra command tree, one file per command
// group, over the thin admin client in rpc/client. It never imports the
// servers. Output goes through the printers in print.go: aligned tables for
// people, `-o json` (protobuf JSON with the proto field names) for scripts.
// Exit codes are stable: 0 ok, 1 error, 2 usage.
package cli
