package redisstore_test

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// goroutine has an owner that joins it (Stop, Close).
func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
