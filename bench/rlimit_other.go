//go:build !unix

package bench

func raiseFileLimit(uint64) error { return nil }
