package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"smp"
	smpbus "smp/bus"
	"smp/kafkabus"
	"smp/ops"
	"smp/sqlbus"
)

const ctlBusUsage = `smp ctl bus: the event bus, as kafka-consumer-groups.sh and kafka-console-consumer.sh are used in the runbook (INC-007)

  smp ctl bus lag --group dispatch-engine [--topic orders.events] [--output table|json|csv]
  smp ctl bus dlq list --topic orders.events.dlq [--max-messages 10] [--output table|json|csv]
  smp ctl bus dlq replay --topic orders.events.dlq [--offset P:O ...|--all]
      put dead letters back on their topic; consumers dedupe by event id,
      so replaying one twice applies it once
  smp ctl bus reset-offsets --group G --topic orders.events:0 --to-offset N
      the group's members must be stopped first

  Which bus: --kafka-brokers (SMP_KAFKA_BROKERS), else the embedded log of
  --mysql-dsn or --data-dir (its tables in smp.db, beside the store's), as
  for smp serve.
`

// openBusForCtl opens the bus a running platform uses, from the same flags.
func openBusForCtl(cfg *Config) (smp.EventBus, smp.BusAdmin, error) {
	if brokers := cfg.KafkaBrokerList(); len(brokers) > 0 {
		b, err := kafkabus.Open(kafkabus.Config{Brokers: brokers, Partitions: int32(cfg.Partitions), ReplicationFactor: int16(cfg.KafkaReplication), ClientID: "smp-ctl"})
		return b, b, err
	}
	// The embedded log is in smp.db; a platform whose server has not yet
	// moved its former events.db in (smp serve does at start) still has it there.
	file := "smp.db"
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "events.db")); err == nil && cfg.MySQLDSN == "" {
		file = "events.db"
	}
	if err := needPlatform(*cfg, file, "the embedded event log is there"); err != nil {
		return nil, nil, err
	}
	lc := sqlbus.Config{Path: filepath.Join(cfg.DataDir, file), Partitions: cfg.Partitions, Owner: "smp-ctl"}
	if cfg.MySQLDSN != "" {
		lc.Path, lc.MySQLDSN = "", cfg.MySQLDSN
	}
	l, err := sqlbus.Open(lc)
	return l, l, err
}

// busOpts are the flags of the smp ctl bus commands.
type busOpts struct {
	group, topic, reason string
	maxMessages          int
	toOffset             int64
	all                  bool
	offsets              multiFlag
}

func (c *cli) ctlBusCmd(g *ctlFlags) *cobra.Command {
	var cfg Config
	// Which bus: given before or after the subcommand.
	pfs := flag.NewFlagSet("smp ctl bus", flag.ContinueOnError)
	pfs.StringVar(&cfg.DataDir, "data-dir", "./smp-data", "data dir of the embedded event log")
	cfg.registerMySQL(pfs)
	cfg.registerKafka(pfs)
	pfs.IntVar(&cfg.Partitions, "partitions", 12, "partitions per topic")
	sub := func(cmd, use, short string) *cobra.Command {
		o := &busOpts{}
		fs := flag.NewFlagSet("smp ctl bus "+cmd, flag.ContinueOnError)
		switch cmd {
		case "lag":
			fs.StringVar(&o.group, "group", "", "consumer group")
			fs.StringVar(&o.topic, "topic", smp.TopicOrders, "topic")
		case "dlq list":
			fs.StringVar(&o.topic, "topic", smp.TopicOrders+smp.DLQSuffix, "dead-letter topic")
			fs.IntVar(&o.maxMessages, "max-messages", 10, "at most this many")
		case "dlq replay":
			fs.StringVar(&o.topic, "topic", smp.TopicOrders+smp.DLQSuffix, "dead-letter topic")
			fs.Var(&o.offsets, "offset", "PARTITION:OFFSET of a dead letter to replay (repeatable)")
			fs.BoolVar(&o.all, "all", false, "replay every dead letter of the topic")
			fs.StringVar(&o.reason, "reason", "", "why (audited; required)")
		case "reset-offsets":
			fs.StringVar(&o.group, "group", "", "consumer group")
			fs.StringVar(&o.topic, "topic", "", "TOPIC:PARTITION, e.g. orders.events:0")
			fs.Int64Var(&o.toOffset, "to-offset", -1, "the group's next offset")
			fs.StringVar(&o.reason, "reason", "", "why (audited; required)")
		}
		return c.leaf(&cobra.Command{Use: use, Short: short}, fs, func([]string) error {
			return runCtlBus(c.ctx, cmd, &cfg, g.server, g.output, o, c.stdout)
		})
	}
	dlq := group(&cobra.Command{Use: "dlq", Short: "dead letters (list, replay)"},
		sub("dlq list", "list", "dead letters of a topic"),
		sub("dlq replay", "replay", "put dead letters back on their topic"))
	bus := group(&cobra.Command{Use: "bus", Short: "consumer-group lag, dead letters and offsets (INC-006, INC-007)", Long: ctlBusUsage},
		sub("lag", "lag", "a consumer group's lag per partition"), dlq,
		sub("reset-offsets", "reset-offsets", "move a group's offset (stop its members first)"))
	bus.PersistentFlags().AddGoFlagSet(pfs)
	return bus
}

func runCtlBus(ctx context.Context, cmd string, cfg *Config, server, output string, o *busOpts, stdout io.Writer) error {
	group, topic, reason, maxMessages, toOffset, all, offsets := o.group, o.topic, o.reason, o.maxMessages, o.toOffset, o.all, o.offsets
	if err := checkOutput(output); err != nil {
		return err
	}
	if err := cfg.ValidateKafka(); err != nil {
		return usageError{err.Error()}
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
	if cmd == "dlq replay" || cmd == "reset-offsets" {
		if err := needReason(reason); err != nil {
			return err
		}
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
	bus, adm, err := openBusForCtl(cfg)
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
		var rows [][]string
		var total int64
		for _, o := range offs {
			cur := "-"
			if o.Committed >= 0 {
				cur = strconv.FormatInt(o.Committed, 10)
			}
			consumer := o.Consumer
			if consumer == "" {
				consumer = "-"
			}
			rows = append(rows, []string{group, o.Topic, fmt.Sprint(o.Partition), cur, fmt.Sprint(o.End), fmt.Sprint(o.Lag), consumer})
			total += o.Lag
		}
		writeRows(stdout, output, []string{"group", "topic", "partition", "current-offset", "log-end-offset", "lag", "consumer-id"}, rows)
		if output == "table" {
			fmt.Fprintf(stdout, "total lag %d\n", total)
		}
	case "dlq list":
		msgs, err := adm.Read(ctx, topic, maxMessages)
		if err != nil {
			return err
		}
		return printDeadLetters(stdout, output, msgs)
	case "dlq replay", "reset-offsets":
		// Audited in the platform's database, as through the admin API.
		act, closeDB, err := localActions(ctx, *cfg, func(c *ops.Config) { c.Bus, c.BusAdmin = bus, adm })
		if err != nil {
			return err
		}
		defer closeDB()
		if cmd == "dlq replay" {
			n, err := act.ReplayDeadLetters(ctx, localPrincipal(), ops.DLQReplay{Topic: topic, Offsets: offsets, All: all}, reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "replayed %d dead letters from %s\n", n, topic)
			return nil
		}
		if err := act.ResetOffset(ctx, localPrincipal(), ops.OffsetReset{Group: group, Topic: topic, Partition: part, Offset: toOffset}, reason); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "group %s: %s:%d reset to offset %d\n", group, topic, part, toOffset)
	}
	return nil
}

func printDeadLetters(w io.Writer, output string, msgs []smp.Message) error {
	rows := make([]smpbus.View, len(msgs))
	for i, m := range msgs {
		rows[i] = smpbus.ViewOf(m)
	}
	if output == "json" {
		return json.NewEncoder(w).Encode(rows)
	}
	table := make([][]string, len(rows))
	for i, r := range rows {
		table[i] = []string{fmt.Sprintf("%d:%d", r.Partition, r.Offset), r.Key, r.Group, r.From, r.Reason}
	}
	writeRows(w, output, []string{"partition:offset", "key", "group", "from", "reason"}, table)
	if output == "table" {
		fmt.Fprintf(w, "%d dead letters\n", len(rows))
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// busOverAPI runs a bus command through the admin API: the same result,
// and replays and resets are audited with the caller's token.
func busOverAPI(ctx context.Context, server, cmd, group, topic string, part int32, toOffset int64, max int, offsets []string, all bool,
	reason, output string, stdout io.Writer) error {
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
		list, cols = "partitions", []string{"topic", "partition", "current_offset", "log_end_offset", "lag", "consumer_id"}
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
