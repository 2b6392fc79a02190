package httpapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWriteErrorLogsOnlyRealFailures: an internal error is logged at ERROR
// once; a request its client abandoned is not.
func TestWriteErrorLogsOnlyRealFailures(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewJSONHandler(&buf, nil))}

	w := httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("POST", "/v1/orders", nil), errors.New("disk on fire"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "disk") || strings.Count(buf.String(), `"level":"ERROR"`) != 1 {
		t.Fatalf("internal error: %d %s; log %s", w.Code, w.Body.String(), buf.String())
	}

	buf.Reset()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w = httptest.NewRecorder()
	s.writeError(w, httptest.NewRequest("POST", "/v1/orders", nil).WithContext(ctx), context.Canceled)
	if strings.Contains(buf.String(), "ERROR") {
		t.Fatalf("an abandoned request was logged as an error: %s", buf.String())
	}
}
