// Package e2e holds end-to-end tests: they build the real clew binary,
// start it on loopback ports, send spans with real OTLP clients, query the
// HTTP API, restart and kill it, and check what survives.
package e2e
