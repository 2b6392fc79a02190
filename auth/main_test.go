package auth_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind (the
// store the authenticator reads is closed).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
