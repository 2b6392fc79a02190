//go:build !race

package wallet_test

// defaultSimSteps is the steps per seed of the money-path simulation.
const defaultSimSteps = 24
