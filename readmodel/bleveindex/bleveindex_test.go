package bleveindex_test

import (
	"testing"

	"smp"
	"smp/readmodel/bleveindex"
	"smp/readmodel/readmodeltest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	readmodeltest.Run(t, "", func(t *testing.T) smp.SearchIndex {
		x, err := bleveindex.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return x
	})
}
