package app

import (
	"slices"
	"testing"
)

func TestModuleOrder(t *testing.T) {
	t.Parallel()
	names := func(ms []module) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.name)
		}
		return out
	}
	// kafka-connect and replication-agent are targets of their own
	// (--connect-addr, --replicate-from).
	all, err := order(append(append(slices.Clone(alwaysOn), AllServices...), ModuleConnect, ModuleReplication))
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range all {
		pos[m.name] = i
	}
	for _, m := range all {
		for _, d := range m.deps {
			if p, ok := pos[d]; !ok || p > pos[m.name] {
				t.Errorf("%s opens before its dependency %s: %v", m.name, d, names(all))
			}
		}
	}
	if len(all) != len(modules) {
		t.Errorf("--services all, --connect-addr and --replicate-from open %v, want every module of the table", names(all))
	}
	// One target pulls in what it needs and nothing else.
	relay, err := order(append(slices.Clone(alwaysOn), ServiceOutboxRelay))
	if err != nil {
		t.Fatal(err)
	}
	got := names(relay)
	if !slices.Contains(got, ModuleRelay) || slices.Contains(got, ServiceDispatchEngine) || slices.Contains(got, ServiceIntegration) {
		t.Errorf("--services outbox-relay opens %v", got)
	}
	if _, err := order([]string{"billing"}); err == nil {
		t.Error("an unknown module must fail")
	}
}
