//go:build !linux

package storage

// setThreadNice does nothing where threads have no priority of their own
// that the process can set.
func setThreadNice(nice int) error { return nil }
