// Package integration holds tests that drive real `raftka` processes and
// real third-party clients (kcat). They build the binary, so they run only
// with the integration build tag:
//
//	go test -tags integration -race ./internal/integration/
package integration
