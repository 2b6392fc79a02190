package sim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"smp/sim"
)

// TestSMSFaultKnobs: the simulated provider delivers to its outbox; a
// delay holds a send until its context ends, a drop rate of 1 accepts
// without delivering, fail refuses.
func TestSMSFaultKnobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &sim.SMS{}
	if err := s.SendSMS(ctx, "+84901234567", "SMP: mã 123456"); err != nil {
		t.Fatal(err)
	}
	if m, ok := s.Last("+84901234567"); !ok || m.Code() != "123456" {
		t.Fatalf("outbox: %+v %v", m, ok)
	}

	s.SetDelay(time.Hour)
	dctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.SendSMS(dctx, "+84901234567", "late"); !errors.Is(err, context.Canceled) {
		t.Fatalf("delayed send with its context ended: %v", err)
	}
	s.SetDelay(0)

	s.SetDropRate(1)
	if err := s.SendSMS(ctx, "+84901234568", "dropped 654321"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Last("+84901234568"); ok {
		t.Fatal("a dropped message reached the outbox")
	}
	if sent, dropped := s.Counts(); sent != 2 || dropped != 1 {
		t.Fatalf("counts = %d sent, %d dropped", sent, dropped)
	}
	s.SetDropRate(0)

	s.SetFail(true)
	if err := s.SendSMS(ctx, "+84901234568", "x"); !errors.Is(err, sim.ErrSMSFailed) {
		t.Fatalf("failing provider: %v", err)
	}
	s.SetFail(false)

	// Wait sees a message sent after it started waiting.
	n := len(s.Outbox())
	done := make(chan sim.SMSMessage, 1)
	go func() {
		m, _ := s.Wait(ctx, "+84901234569", n)
		done <- m
	}()
	if err := s.SendSMS(ctx, "+84901234569", "SMP: 111222"); err != nil {
		t.Fatal(err)
	}
	if m := <-done; m.Code() != "111222" {
		t.Fatalf("Wait = %+v", m)
	}
}
