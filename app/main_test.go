package app

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind: Close
// stops every module and joins its goroutines.
func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
