package kafkabus

import "errors"

// SetAfterClient sets the hook run between a PublishAsync call's taking
// the producing client and its produce.
func SetAfterClient(b *Bus, f func()) { b.async.afterClient = f }

// Fence records a failure of the current attempt, as a failed call does:
// the producing client is fenced (closed).
func Fence(b *Bus) {
	a := &b.async
	a.mu.Lock()
	gen, cl := a.gen, a.cl
	a.mu.Unlock()
	a.fail(gen, cl, errors.New("fenced by the test"))
}
