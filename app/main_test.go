package app

import (
	"testing"

	"go.uber.org/goleak"
	"smp/internal/envtest"
)

// TestMain fails the package when a test leaves a goroutine behind: Close
// stops every module and joins its goroutines. bleve's analysis workers
// are started by its package's init, once per binary, and are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(envtest.Main(m), goleak.IgnoreTopFunction("github.com/blevesearch/bleve_index_api.AnalysisWorker"))
}
