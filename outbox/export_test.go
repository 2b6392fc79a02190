package outbox

// SetOnReport makes r call f with each batch's report (its first and last
// outbox ids, and the error), in the relay's goroutine; before Start.
func SetOnReport(r *Relay, f func(first, last int64, err error)) { r.onReport = f }
