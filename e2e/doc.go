// Package e2e holds the end-to-end tests: they build gouwsgi and
// gouwsgictl, start them as real processes with real Python workers,
// real nginx and real multi-node clusters in network namespaces, and check
// what users see. They run when GOUWSGI_E2E=1 (make test sets it).
package e2e
