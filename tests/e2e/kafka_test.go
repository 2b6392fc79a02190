package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"smp"
	"smp/app"
	smpbus "smp/bus"
	"smp/dispatch"
	"smp/internal/wait"
	"smp/orders"
)

// fakeKafka is an in-process 3-broker cluster whose brokers can all be
// taken down: every request then closes its connection, as a dead broker
// does.
type fakeKafka struct {
	c    *kfake.Cluster
	down atomic.Bool
}

func startKafka(t *testing.T) *fakeKafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3))
	must(t, err)
	t.Cleanup(c.Close)
	k := &fakeKafka{c: c}
	c.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if k.down.Load() {
			return nil, errors.New("broker down"), true
		}
		return nil, nil, false
	})
	return k
}

func (k *fakeKafka) brokers() string { return strings.Join(k.c.ListenAddrs(), ",") }

func startKafkaApp(t *testing.T, k *fakeKafka) *testApp {
	return startApp(t, func(c *Config) { c.KafkaBrokers, c.Partitions = k.brokers(), 12 })
}

func consumed(a *testApp, group, outcome string) float64 {
	return testutil.ToFloat64(a.Consumed.Counter(group, outcome))
}

// TestKafkaPoisonMessage (INC-007 scenario 4): a message no consumer can
// decode goes to orders.events.dlq with its reason, once per group, its
// partition keeps flowing, lag returns under 1000; smp ctl bus lists it,
// replays dead letters idempotently and resets offsets as the runbook does.
func TestKafkaPoisonMessage(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	a := startKafkaApp(t, k)
	ids := runLoad(t, a, 5, 20)

	// The poison shares a partition with a real order's events.
	must(t, a.Bus.Publish(context.Background(), smp.Message{Topic: smp.TopicOrders, Key: ids[0], Value: []byte(`{"event_id":`)}))
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		// --data-dir: actions are audited in the platform's database.
		err := run(context.Background(), append([]string{"ctl", "bus"}, append(args, "--kafka-brokers", k.brokers(), "--data-dir", a.Cfg.DataDir)...), &out, &errb)
		return out.String() + errb.String(), err
	}
	var listing string
	groups := groupsReading(smp.TopicOrders)
	wait.Until(t, 60*time.Second, "one dead letter per group reading orders.events", func() bool {
		out, err := ctl("dlq", "list", "--topic", "orders.events.dlq")
		listing = out
		return err == nil && strings.Contains(out, fmt.Sprintf("%d dead letters", groups))
	})
	if !strings.Contains(listing, "schema mismatch") || !strings.Contains(listing, "order-svc") || !strings.Contains(listing, "dispatch-engine") {
		t.Fatalf("dlq list:\n%s", listing)
	}

	// The partition flows on: more orders complete, lag is back under 1000.
	more := runLoad(t, a, 10, 20)
	wait.Until(t, 30*time.Second, "lag under 1000 for both groups", func() bool {
		return metricValue(t, a, "kafka_consumergroup_lag") < 1000
	})
	for _, g := range []string{orders.ConsumerGroup, dispatch.ConsumerGroup} {
		out, err := ctl("lag", "--group", g)
		if err != nil || !strings.Contains(out, "LOG-END-OFFSET") {
			t.Fatalf("ctl bus lag --group %s: %v\n%s", g, err, out)
		}
	}
	t.Logf("after the poison: %d more orders completed; lag %v", len(more), metricValue(t, a, "kafka_consumergroup_lag"))

	// Replaying a dead letter puts it back with its origin marked; replaying
	// a dead copy of a real, applied event changes nothing (dedupe).
	applied := consumed(a, orders.ConsumerGroup, smpbus.Applied)
	real, err := a.Kafka.Read(context.Background(), smp.TopicOrders, 1)
	must(t, err)
	dead := real[0]
	dead.Topic = smp.TopicOrders + smp.DLQSuffix
	dead.Headers = map[string]string{smp.HeaderDLQTopic: smp.TopicOrders, smp.HeaderDLQGroup: "order-svc", smp.HeaderDLQReason: "order not found"}
	must(t, a.Bus.Publish(context.Background(), dead))
	var letters []smp.Message
	wait.Until(t, 30*time.Second, "the poison's dead letters and the dead copy", func() bool {
		letters, err = a.Kafka.Read(context.Background(), smp.TopicOrders+smp.DLQSuffix, 10)
		return err == nil && len(letters) == groups+1
	})
	var at string
	for _, l := range letters {
		if l.Headers[smp.HeaderDLQReason] == "order not found" {
			at = fmt.Sprintf("%d:%d", l.Partition, l.Offset)
		}
	}
	// The replay changes nothing: order-svc finds the event recorded
	// (duplicate) or, since dispatch on commit, its order already past
	// 01_created (ignored, nothing to record).
	unchanged := func() float64 {
		return consumed(a, orders.ConsumerGroup, smpbus.Duplicate) + consumed(a, orders.ConsumerGroup, smpbus.Ignored)
	}
	dupBefore := unchanged()
	for i := 0; i < 2; i++ {
		out, err := ctl("dlq", "replay", "--topic", "orders.events.dlq", "--offset", at, "--reason", "INC-007 replay")
		if err != nil || !strings.Contains(out, "replayed 1 dead letters") {
			t.Fatalf("replay: %v\n%s", err, out)
		}
	}
	wait.Until(t, 30*time.Second, "both replays delivered", func() bool {
		return unchanged() >= dupBefore+2
	})
	if got := consumed(a, orders.ConsumerGroup, smpbus.Applied); got != applied {
		t.Fatalf("replaying an applied event applied it again: %v -> %v", applied, got)
	}
	if out, err := ctl("dlq", "replay", "--topic", "orders.events.dlq", "--offset", "0:999999", "--reason", "INC-007 replay"); smp.ErrorCode(err) != smp.ENOTFOUND {
		t.Fatalf("replaying a missing dead letter: %v\n%s", err, out)
	}

	// Reset offsets: refused while the group runs, done on a stopped one.
	if out, err := ctl("reset-offsets", "--group", dispatch.ConsumerGroup, "--topic", "orders.events:0", "--to-offset", "0", "--reason", "INC-007"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("reset-offsets on a running group: %v\n%s", err, out)
	}
	// A group SMP does not run, or a topic its group does not read, is
	// refused before anything is recorded: it would only leave a stray
	// position (or hide a typo).
	for _, bad := range [][]string{{"--group", "analytics", "--topic", "orders.events:0"}, {"--group", orders.ConsumerGroup, "--topic", "payments.events:0"}} {
		if out, err := ctl(append([]string{"reset-offsets", "--to-offset", "0", "--reason", "INC-007"}, bad...)...); smp.ErrorCode(err) != smp.EINVALID {
			t.Fatalf("reset-offsets %v: %v\n%s", bad, err, out)
		}
	}
	// The order intake stopped (its members gone), its offset may move.
	must(t, a.StopModule(context.Background(), app.ServiceOrders))
	group := orders.ConsumerGroup
	offs, err := a.Kafka.Offsets(context.Background(), group, []string{smp.TopicOrders})
	must(t, err)
	p := slices.IndexFunc(offs, func(o smp.PartitionOffsets) bool { return o.End >= 2 })
	tp := fmt.Sprintf("orders.events:%d", p)
	var out string
	wait.Until(t, 30*time.Second, "the stopped group's offset reset", func() bool {
		out, err = ctl("reset-offsets", "--group", group, "--topic", tp, "--to-offset", "1", "--reason", "INC-007 skip")
		if smp.ErrorCode(err) == smp.ECONFLICT {
			return false // its members are still leaving
		}
		if err != nil {
			t.Fatalf("reset-offsets: %v\n%s", err, out)
		}
		return true
	})
	offs, err = a.Kafka.Offsets(context.Background(), group, []string{smp.TopicOrders})
	must(t, err)
	if offs[p].Committed != 1 || offs[p].Lag != offs[p].End-1 {
		t.Fatalf("after reset the group is at %+v, want offset 1", offs[p])
	}
	if _, err := ctl("reset-offsets", "--group", group, "--topic", tp, "--to-offset", "999999", "--reason", "INC-007 skip"); smp.ErrorCode(err) != smp.EINVALID {
		t.Fatalf("reset past the log end: %v", err)
	}
	// Each attempt is on record: intent, then done or failed (the
	// conflicts while its members left included).
	audit, err := a.Store.FindAudit(context.Background(), smp.AuditFilter{Target: "group:" + group})
	must(t, err)
	if len(audit) < 4 || !strings.Contains(audit[0].After, `"phase":"failed"`) || !strings.Contains(audit[2].After, `"phase":"done"`) ||
		!strings.HasPrefix(audit[0].Actor, "cli:") {
		t.Fatalf("the resets' audit: %+v", audit)
	}
	for _, bad := range [][]string{
		{"reset-offsets", "--group", orders.ConsumerGroup, "--topic", "orders.events", "--to-offset", "1"},
		{"reset-offsets", "--group", orders.ConsumerGroup, "--topic", "orders.events:0"},
		{"dlq", "list", "--topic", "orders.events"},
		{"dlq", "replay", "--topic", "orders.events.dlq"},
		{"lag"},
	} {
		if _, err := ctl(bad...); exitCode(err) != 2 {
			t.Errorf("ctl bus %v: %v, want a usage error", bad, err)
		}
	}
}

// TestCtlBusEmbedded: the same smp ctl bus commands work on the embedded
// log of a running platform (its data dir).
func TestCtlBusEmbedded(t *testing.T) {
	t.Parallel()
	a := startApp(t, nil)
	runLoad(t, a, 3, 20)
	ctl := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append([]string{"ctl", "bus"}, append(args, "--data-dir", a.Cfg.DataDir, "--partitions", "4")...), &out, &errb)
		return out.String() + errb.String(), err
	}
	wait.Until(t, 30*time.Second, "lag 0 in smp ctl bus lag", func() bool {
		out, err := ctl("lag", "--group", "dispatch-engine")
		return err == nil && strings.Contains(out, "total lag 0") && strings.Contains(out, "CURRENT-OFFSET")
	})
	if out, err := ctl("dlq", "list", "--topic", "orders.events.dlq"); err != nil || !strings.Contains(out, "0 dead letters") {
		t.Fatalf("dlq list: %v\n%s", err, out)
	}
	must(t, a.Bus.Publish(context.Background(), smp.Message{Topic: smp.TopicOrders, Key: "x", Value: []byte("poison")}))
	var listing string
	groups := groupsReading(smp.TopicOrders)
	wait.Until(t, 30*time.Second, "the poison dead-lettered by every group reading orders.events", func() bool {
		out, err := ctl("dlq", "list", "--topic", "orders.events.dlq")
		listing = out
		if err != nil {
			t.Logf("dlq list: %v\n%s", err, out)
		}
		return err == nil && strings.Count(out, "schema mismatch") == groups
	})
	t.Logf("smp ctl bus dlq list:\n%s", listing)
	if out, err := ctl("reset-offsets", "--group", "dispatch-engine", "--topic", "orders.events:0", "--to-offset", "0"); exitCode(err) != 2 {
		t.Fatalf("reset-offsets without a reason: %v\n%s", err, out)
	}
	if out, err := ctl("reset-offsets", "--group", "dispatch-engine", "--topic", "orders.events:0", "--to-offset", "0", "--reason", "INC-007 skip"); smp.ErrorCode(err) != smp.ECONFLICT {
		t.Fatalf("reset-offsets on a running group: %v\n%s", err, out)
	}
	// Without --server the attempt is audited in the platform's database:
	// the intent, then the failure.
	audit, err := a.Store.FindAudit(context.Background(), smp.AuditFilter{Target: "group:dispatch-engine"})
	must(t, err)
	if len(audit) != 2 || !strings.HasPrefix(audit[0].Actor, "cli:") || audit[0].Reason != "INC-007 skip" ||
		!strings.Contains(audit[0].After, `"phase":"failed"`) || !strings.Contains(audit[1].After, `"phase":"intent"`) {
		t.Fatalf("the local reset's audit: %+v", audit)
	}
	// A dead letter replayed from the command line is audited too.
	if out, err := ctl("dlq", "replay", "--topic", "orders.events.dlq", "--all", "--reason", "INC-007 poison understood"); err != nil ||
		!strings.Contains(out, fmt.Sprintf("replayed %d dead letters", groups)) {
		t.Fatalf("dlq replay: %v\n%s", err, out)
	}
	audit, err = a.Store.FindAudit(context.Background(), smp.AuditFilter{Action: "bus.dlq_replay"})
	must(t, err)
	if len(audit) != 2 || audit[0].Target != "topic:orders.events.dlq" || !strings.Contains(audit[0].After, fmt.Sprintf(`"replayed":%d`, groups)) {
		t.Fatalf("the local replay's audit: %+v", audit)
	}
}

// TestKafkaDownAtStart: the platform starts while no broker answers
// (topics not created yet), takes orders, and completes them once Kafka
// is back.
func TestKafkaDownAtStart(t *testing.T) {
	t.Parallel()
	k := startKafka(t)
	k.down.Store(true)
	var logs syncBuffer
	a := startAppLogging(t, func(c *Config) { c.KafkaBrokers, c.Partitions = k.brokers(), 12 }, &logs)
	ids := placeOrders(t, a, 3, "with Kafka down")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	startTechnicians(t, ctx, &wg, a)
	k.down.Store(false)
	waitAllCompleted(t, a.Store, ids, time.Minute)
	// Brokers away at start are waited for, not an error to log and retry.
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("Kafka being away at start was logged as an error:\n%s", logs.String())
	}
}

// groupsReading is how many of SMP's consumer groups read topic: a poison
// message on it is dead-lettered once by each.
func groupsReading(topic string) int {
	n := 0
	for _, s := range app.Subscriptions {
		for _, tp := range s.Topics {
			if tp == topic {
				n++
			}
		}
	}
	return n
}
