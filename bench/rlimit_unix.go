//go:build unix

package bench

import (
	"fmt"
	"syscall"
	"time"
)

// raiseFileLimit makes room for need open files (sockets), raising the
// soft limit up to the hard one, and the hard one where permitted.
func raiseFileLimit(need uint64) error {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return err
	}
	if rl.Cur >= need {
		return nil
	}
	want := syscall.Rlimit{Cur: need, Max: max(rl.Max, need)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
		return nil
	}
	if rl.Max >= need {
		rl.Cur = need
		return syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	return fmt.Errorf("%d open files are needed but the limit is %d (hard %d): raise it (ulimit -n) or use fewer --technicians", need, rl.Cur, rl.Max)
}

// processCPU is the CPU time (user and system) this process has used; the
// fleet's child process is not in it.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
