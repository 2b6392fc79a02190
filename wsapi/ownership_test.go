package wsapi_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket/wsjson"

	"smp"
	"smp/wsapi"
)

// sessions is the shared session record (Redis's session:{technician_id}
// in production) as one process sees it; the first Claim waits for
// release, as a slow round-trip would.
type sessions struct {
	mu      sync.Mutex
	holder  map[string]string
	claims  int
	writes  int           // claims landed
	slow    chan struct{} // the first Claim has started
	release chan struct{}
}

func (s *sessions) Claim(ctx context.Context, tech, conn string) error {
	s.mu.Lock()
	s.claims++
	first := s.claims == 1
	s.mu.Unlock()
	if first {
		close(s.slow)
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holder[tech] = conn
	s.writes++
	return nil
}

func (s *sessions) Touch(ctx context.Context, tech, conn string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holder[tech] == conn, nil
}

func (s *sessions) Drop(ctx context.Context, tech, conn string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holder[tech] == conn {
		delete(s.holder, tech)
	}
	return nil
}

func (s *sessions) Holder(ctx context.Context, tech string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.holder[tech]
	return h, ok, nil
}

// TestNewestConnectionClaimsLast (issue 14 item 3): a technician's older
// connection whose session claim is slow cannot overwrite the claim of the
// newer connection that replaced it: messages then go to the newer one,
// which stays open.
func TestNewestConnectionClaimsLast(t *testing.T) {
	t.Parallel()
	s := &sessions{holder: map[string]string{}, slow: make(chan struct{}), release: make(chan struct{})}
	hub, url := startHub(t, okGateway{}, wsapi.Config{Sessions: s})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dial(t, ctx, url)
	<-s.slow // the first connection is claiming
	newer := dial(t, ctx, url)
	// A hub that let connections claim in any order would have the newer
	// one claim now, while the older one's claim is still on its way: give
	// it that chance (half a second) before the older claim lands.
	until := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(until) {
		s.mu.Lock()
		n := s.claims
		s.mu.Unlock()
		if n == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	close(s.release)
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := s.writes
		s.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the two connections' claims landed", n)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if r := readReply(t, ctx, newer); r.Type != "welcome" {
		t.Fatalf("newer connection: %+v", r)
	}
	if !hub.Notify("tech-1", smp.TechnicianMessage{Type: "offer", OrderID: "o1"}) {
		t.Fatal("the newest connection was not sent the offer")
	}
	var m smp.TechnicianMessage
	if err := wsjson.Read(ctx, newer, &m); err != nil || m.Type != "offer" {
		t.Fatalf("newer connection got %+v, %v", m, err)
	}
}
