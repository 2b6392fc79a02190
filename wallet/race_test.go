//go:build race

package wallet_test

// defaultSimSteps: under the race detector (CI) every step costs several
// times more, so each of the 500 seeds takes fewer steps to stay within a
// minute.
const defaultSimSteps = 12
