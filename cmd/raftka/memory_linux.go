package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// memoryOfProcess is the memory this process may use: the machine's, or
// its cgroup's limit (cgroup v2) when that is lower; 0 if unknown.
func memoryOfProcess() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	mem := int64(si.Totalram) * int64(si.Unit)
	if limit, ok := cgroupMemoryLimit(os.ReadFile); ok && limit < mem {
		mem = limit
	}
	return mem
}

// cgroupMemoryLimit reads the memory.max of this process's cgroup (v2).
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) (int64, bool) {
	b, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		// The v2 line is "0::/path".
		path, ok := strings.CutPrefix(strings.TrimSpace(line), "0::")
		if !ok {
			continue
		}
		m, err := readFile("/sys/fs/cgroup" + path + "/memory.max")
		if err != nil {
			return 0, false
		}
		return parseCgroupMax(string(m))
	}
	return 0, false
}

// parseCgroupMax parses a cgroup v2 memory.max: a byte count, or "max" for
// no limit.
func parseCgroupMax(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	return n, true
}
