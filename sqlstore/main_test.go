package sqlstore_test

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind: the
// offer-state writer and the replica monitor belong to a DB that Close
// stops, and the pools close with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
