package main

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the real smp command
// (SMP_TEST_EXEC=1), so process-level tests need no separate build.
func TestMain(m *testing.M) {
	if os.Getenv("SMP_TEST_EXEC") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
