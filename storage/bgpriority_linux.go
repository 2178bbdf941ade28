package storage

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// setThreadNice locks the calling goroutine to its thread and raises the
// thread's nice value to nice. On Linux PRIO_PROCESS with a thread ID sets
// that one thread's priority.
func setThreadNice(nice int) error {
	runtime.LockOSThread()
	tid := unix.Gettid()
	// The raw system call returns 20 - nice.
	prio, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	if 20-prio >= nice {
		return nil
	}
	return unix.Setpriority(unix.PRIO_PROCESS, tid, nice)
}
