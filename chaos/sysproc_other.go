//go:build !linux

package chaos

import "syscall"

// brokerSysProcAttr keeps a broker out of the terminal's process group, so
// Ctrl-C reaches only the harness, which then stops the brokers itself.
func brokerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
