package connect

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// The worker's metrics, computed at scrape from the connectors' states:
// kafka_connect_connector_status{connector,state} (the runbook's INC-008
// trigger) is 1 for the connector's current state and 0 for the others;
// kafka_connect_task_status{connector,task,state} the same per task.
var (
	connectorStatusDesc = prometheus.NewDesc("kafka_connect_connector_status",
		"1 for the connector's current state (UNASSIGNED, RUNNING, PAUSED, FAILED, RESTARTING, STOPPED), 0 for the others.",
		[]string{"connector", "state"}, nil)
	taskStatusDesc = prometheus.NewDesc("kafka_connect_task_status",
		"1 for the task's current state, 0 for the others.",
		[]string{"connector", "task", "state"}, nil)
)

type collector struct{ w *Worker }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- connectorStatusDesc
	ch <- taskStatusDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for name, conn := range c.w.connectors {
		for _, s := range States {
			ch <- prometheus.MustNewConstMetric(connectorStatusDesc, prometheus.GaugeValue, one(conn.state == s), name, string(s))
		}
		for _, t := range conn.tasks {
			for _, s := range States {
				ch <- prometheus.MustNewConstMetric(taskStatusDesc, prometheus.GaugeValue, one(t.state == s), name, strconv.Itoa(t.id), string(s))
			}
		}
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
