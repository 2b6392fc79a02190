//go:build race

package e2e

// raceEnabled: the tests run with -race, and so does the smp they build.
const raceEnabled = true
