package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"smp"
	"smp/internal/delivery"
	"smp/kafkabus"
	"smp/sqlbus"
)

const ctlBusUsage = `smp ctl bus: the event bus, as kafka-consumer-groups.sh and kafka-console-consumer.sh are used in the runbook (INC-007)

  smp ctl bus lag --group dispatch-engine [--topic orders.events] [--output table|json]
  smp ctl bus dlq list --topic orders.events.dlq [--max-messages 10] [--output table|json]
  smp ctl bus dlq replay --topic orders.events.dlq [--offset P:O ...|--all]
      put dead letters back on their topic; consumers dedupe by event id,
      so replaying one twice applies it once
  smp ctl bus reset-offsets --group G --topic orders.events:0 --to-offset N
      the group's members must be stopped first

  Which bus: --kafka-brokers (SMP_KAFKA_BROKERS), else the embedded log of
  --mysql-dsn or --data-dir, as for smp serve.
`

// openBusForCtl opens the bus a running platform uses, from the same flags.
func openBusForCtl(cfg *Config) (smp.EventBus, smp.BusAdmin, error) {
	if brokers := cfg.kafkaBrokers(); len(brokers) > 0 {
		b, err := kafkabus.Open(kafkabus.Config{Brokers: brokers, Partitions: int32(cfg.Partitions), ReplicationFactor: int16(cfg.KafkaReplication), ClientID: "smp-ctl"})
		return b, b, err
	}
	lc := sqlbus.Config{Path: filepath.Join(cfg.DataDir, "events.db"), Partitions: cfg.Partitions, Owner: "smp-ctl"}
	if cfg.MySQLDSN != "" {
		lc.Path, lc.MySQLDSN = "", cfg.MySQLDSN
	}
	l, err := sqlbus.Open(lc)
	return l, l, err
}

func runCtlBus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, ctlBusUsage)
		return usageError{"smp ctl bus: which command?"}
	}
	cmd := args[0]
	rest := args[1:]
	if cmd == "dlq" {
		if len(rest) == 0 {
			fmt.Fprint(stderr, ctlBusUsage)
			return usageError{"smp ctl bus dlq: list or replay?"}
		}
		cmd, rest = "dlq "+rest[0], rest[1:]
	}
	fs := flag.NewFlagSet("smp ctl bus "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	fs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded event log")
	cfg.registerMySQL(fs)
	cfg.registerKafka(fs)
	fs.IntVar(&cfg.Partitions, "partitions", 12, "partitions per topic")
	var group, topic, output, server, reason string
	fs.StringVar(&server, "server", "", "a running platform's URL: go through its admin API (audited) instead of the bus (SMP_SERVER)")
	var maxMessages int
	var toOffset int64
	var all bool
	var offsets multiFlag
	fs.StringVar(&output, "output", "table", "table or json")
	switch cmd {
	case "lag":
		fs.StringVar(&group, "group", "", "consumer group")
		fs.StringVar(&topic, "topic", smp.TopicOrders, "topic")
	case "dlq list":
		fs.StringVar(&topic, "topic", smp.TopicOrders+smp.DLQSuffix, "dead-letter topic")
		fs.IntVar(&maxMessages, "max-messages", 10, "at most this many")
	case "dlq replay":
		fs.StringVar(&topic, "topic", smp.TopicOrders+smp.DLQSuffix, "dead-letter topic")
		fs.Var(&offsets, "offset", "PARTITION:OFFSET of a dead letter to replay (repeatable)")
		fs.BoolVar(&all, "all", false, "replay every dead letter of the topic")
		fs.StringVar(&reason, "reason", "", "why (audited; required with --server)")
	case "reset-offsets":
		fs.StringVar(&group, "group", "", "consumer group")
		fs.StringVar(&topic, "topic", "", "TOPIC:PARTITION, e.g. orders.events:0")
		fs.Int64Var(&toOffset, "to-offset", -1, "the group's next offset")
		fs.StringVar(&reason, "reason", "", "why (audited; required with --server)")
	default:
		fmt.Fprint(stderr, ctlBusUsage)
		return usageError{fmt.Sprintf("smp ctl bus: unknown command %q", cmd)}
	}
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	if output != "table" && output != "json" && !(server != "" && output == "csv") {
		return usageError{"--output must be table or json (or csv with --server)"}
	}
	if err := cfg.validateKafka(); err != nil {
		return err
	}
	switch cmd {
	case "lag", "reset-offsets":
		if group == "" {
			return usageError{"--group is required"}
		}
	case "dlq list", "dlq replay":
		if !strings.HasSuffix(topic, smp.DLQSuffix) {
			return usageError{fmt.Sprintf("--topic %q is not a dead-letter topic (*%s)", topic, smp.DLQSuffix)}
		}
	}
	var part int32
	if cmd == "reset-offsets" {
		t, p, ok := strings.Cut(topic, ":")
		n, err := strconv.Atoi(p)
		if !ok || err != nil || t == "" || n < 0 {
			return usageError{"--topic must be TOPIC:PARTITION, e.g. orders.events:0"}
		}
		if toOffset < 0 {
			return usageError{"--to-offset is required (the next good offset)"}
		}
		topic, part = t, int32(n)
	}
	if cmd == "dlq replay" && all == (len(offsets) > 0) {
		return usageError{"give --offset PARTITION:OFFSET (repeatable) or --all"}
	}
	for _, o := range offsets {
		p, off, ok := strings.Cut(o, ":")
		if _, err := strconv.Atoi(p); !ok || err != nil {
			return usageError{fmt.Sprintf("--offset %q: use PARTITION:OFFSET", o)}
		}
		if _, err := strconv.ParseInt(off, 10, 64); err != nil {
			return usageError{fmt.Sprintf("--offset %q: use PARTITION:OFFSET", o)}
		}
	}

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if server != "" {
		return busOverAPI(ctx, server, cmd, group, topic, part, toOffset, maxMessages, offsets, all, reason, output, stdout)
	}
	bus, adm, err := openBusForCtl(&cfg)
	if err != nil {
		return err
	}
	defer bus.Close()
	switch cmd {
	case "lag":
		offs, err := adm.Offsets(ctx, group, []string{topic})
		if err != nil {
			return err
		}
		if output == "json" {
			return json.NewEncoder(stdout).Encode(offs)
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG")
		var total int64
		for _, o := range offs {
			cur := "-"
			if o.Committed >= 0 {
				cur = strconv.FormatInt(o.Committed, 10)
			}
			fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%d\t%d\n", group, o.Topic, o.Partition, cur, o.End, o.Lag)
			total += o.Lag
		}
		w.Flush()
		fmt.Fprintf(stdout, "total lag %d\n", total)
	case "dlq list":
		msgs, err := adm.Read(ctx, topic, maxMessages)
		if err != nil {
			return err
		}
		return printDeadLetters(stdout, output, msgs)
	case "dlq replay":
		msgs, err := adm.Read(ctx, topic, 100000)
		if err != nil {
			return err
		}
		out, missing := delivery.SelectReplays(msgs, topic, offsets, all)
		if len(missing) > 0 {
			return smp.Errorf(smp.ENOTFOUND, "no dead letter at %s in %s", strings.Join(missing, ", "), topic)
		}
		if err := bus.Publish(ctx, out...); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replayed %d dead letters from %s\n", len(out), topic)
	case "reset-offsets":
		if err := adm.ResetOffset(ctx, group, topic, part, toOffset); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: %s:%d reset to offset %d\n", group, topic, part, toOffset)
	}
	return nil
}

func printDeadLetters(w io.Writer, output string, msgs []smp.Message) error {
	rows := make([]delivery.View, len(msgs))
	for i, m := range msgs {
		rows[i] = delivery.ViewOf(m)
	}
	if output == "json" {
		return json.NewEncoder(w).Encode(rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION:OFFSET\tKEY\tGROUP\tFROM\tREASON")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d:%d\t%s\t%s\t%s\t%s\n", r.Partition, r.Offset, r.Key, r.Group, r.From, r.Reason)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d dead letters\n", len(rows))
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// busOverAPI runs a bus command through the admin API: the same result,
// and replays and resets are audited with the caller's token.
func busOverAPI(ctx context.Context, server, cmd, group, topic string, part int32, toOffset int64, max int, offsets []string, all bool,
	reason, output string, stdout io.Writer) error {
	if (cmd == "dlq replay" || cmd == "reset-offsets") && len(strings.TrimSpace(reason)) < 3 {
		return usageError{"--reason is required: replays and resets are audited"}
	}
	c, err := newAPIClient(server, 30*time.Second)
	if err != nil {
		return err
	}
	var v any
	var list string
	var cols []string
	switch cmd {
	case "lag":
		v, err = c.do(ctx, http.MethodGet, "/admin/bus/lag?group="+url.QueryEscape(group)+"&topic="+url.QueryEscape(topic), nil)
		list, cols = "partitions", []string{"topic", "partition", "current_offset", "log_end_offset", "lag"}
	case "dlq list":
		v, err = c.do(ctx, http.MethodGet, fmt.Sprintf("/admin/bus/dlq?topic=%s&max=%d", url.QueryEscape(topic), max), nil)
		list, cols = "dead_letters", []string{"partition", "offset", "key", "group", "from", "reason"}
	case "dlq replay":
		v, err = c.do(ctx, http.MethodPost, "/admin/bus/dlq/replay", map[string]any{"topic": topic, "offsets": offsets, "all": all, "reason": reason})
	case "reset-offsets":
		v, err = c.do(ctx, http.MethodPost, "/admin/bus/reset-offsets", map[string]any{"group": group, "topic": topic, "partition": part, "offset": toOffset, "reason": reason})
	}
	if err != nil {
		return err
	}
	return render(stdout, output, v, list, cols)
}
