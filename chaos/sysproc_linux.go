//go:build linux

package chaos

import "syscall"

// brokerSysProcAttr makes a broker die with the harness (a harness killed
// with SIGKILL leaves no brokers behind) and keeps it out of the
// terminal's process group, so Ctrl-C reaches only the harness, which then
// stops the brokers itself.
func brokerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
