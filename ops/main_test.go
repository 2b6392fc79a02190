package ops_test

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// actions start none, and the backends they drive are closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
