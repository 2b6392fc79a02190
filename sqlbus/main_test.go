package sqlbus_test

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind
// (consumers, wake-ups, pools all belong to a Bus that Close stops).
func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
