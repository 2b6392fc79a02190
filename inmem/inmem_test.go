package inmem_test

import (
	"testing"

	"smp"
	"smp/dispatchtest"
	"smp/fraud/fraudtest"
	"smp/inmem"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	dispatchtest.RunQueue(t, func(*testing.T) smp.DispatchQueue { return inmem.NewQueue() })
	dispatchtest.RunInvitations(t, func(*testing.T) smp.InvitationStore { return inmem.NewInvitations() })
	dispatchtest.RunGeo(t, func(*testing.T) smp.GeoIndex { return inmem.NewGeo() })
	dispatchtest.RunLocker(t, func(*testing.T) smp.Locker { return inmem.NewLocker() })
	dispatchtest.RunOTP(t, func(*testing.T) smp.OTPStore { return inmem.NewOTP(nil) })
	dispatchtest.RunRateCounter(t, func(*testing.T) smp.RateCounter { return inmem.NewOTP(nil) })
}

func TestFraudWindows(t *testing.T) {
	fraudtest.RunWindows(t, func(t *testing.T) (smp.FraudWindows, smp.FraudWindows) { return inmem.NewFraudWindows(), nil })
}
