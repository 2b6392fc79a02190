package pricing

import (
	"testing"

	"go.uber.org/goleak"

	"smp/internal/envtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(envtest.Main(m)) }
