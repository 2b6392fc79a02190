//go:build !unix

package bench

import "time"

func raiseFileLimit(uint64) error { return nil }

// processCPU is unknown here.
func processCPU() time.Duration { return 0 }
