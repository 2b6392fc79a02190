package deploy

import (
	"os"
	"testing"

	"smp/internal/envtest"
)

// TestMain reports, in one visible line, the tests skipped for want of
// promtool or amtool.
func TestMain(m *testing.M) { os.Exit(envtest.Main(m).Run()) }
