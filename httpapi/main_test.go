package httpapi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind: every
// goroutine has an owner that joins it (Stop, Close).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
