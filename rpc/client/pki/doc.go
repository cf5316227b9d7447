// Package pki creates the certificates that secure a gouwsgi cluster: a
// cluster CA, and node (or operator) certificates signed by it, usable for
// both TLS serving and mutual-TLS clients. gouwsgictl's `cert` commands are
// its front end; it has no dependency beyond the standard library.
package pki
