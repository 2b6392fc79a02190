// Package archtest enforces SMP's import rules (docs/architecture.md,
// ../shared/CONVENTIONS.md): the root imports no project package; backends
// import only the root and internal helpers; only the wiring imports
// backends; no library reads the environment.
package archtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// kind is a package's place in the layout.
type kind string

const (
	root      kind = "root"      // the domain: imports no project package
	internal  kind = "internal"  // helpers: the root and other internal helpers
	backend   kind = "backend"   // one per dependency: the root and internal helpers only
	logic     kind = "logic"     // services on narrow interfaces: no backend
	transport kind = "transport" // HTTP, WebSocket, UI: no backend
	suite     kind = "suite"     // exported conformance suites and test helpers: no backend
	wiring    kind = "wiring"    // cmd/, app/, tests/: anything
)

// layout classifies every package by its import path (longest prefix
// wins). A new package must be added here: the test fails until it is.
var layout = map[string]kind{
	"smp":          root,
	"smp/internal": internal,

	"smp/sqlstore":   backend,
	"smp/sqlbus":     backend,
	"smp/kafkabus":   backend,
	"smp/redisstore": backend,
	"smp/inmem":      backend,
	"smp/smsgw":      backend,

	"smp/readmodel/bleveindex": backend,

	"smp/orders":       logic,
	"smp/dispatch":     logic,
	"smp/flags":        logic,
	"smp/outbox":       logic,
	"smp/retention":    logic,
	"smp/payments":     logic,
	"smp/integrations": logic,
	"smp/status":       logic,
	"smp/catalog":      logic,
	"smp/ops":          logic,
	"smp/auth":         logic,
	"smp/bus":          logic,
	"smp/runbook":      logic,
	"smp/sim":          logic,
	"smp/deploy":       logic,
	"smp/wallet":       logic,
	"smp/vnpay":        logic,
	"smp/connect":      logic,
	"smp/masterdata":   logic,
	"smp/pricing":      logic,
	"smp/replication":  logic,
	"smp/cdc":          logic,
	"smp/readmodel":    logic,
	"smp/fraud":        logic,
	"smp/recon":        logic,

	"smp/httpapi":    transport,
	"smp/wsapi":      transport,
	"smp/webui":      transport,
	"smp/connectapi": transport,

	"smp/bustest":                 suite,
	"smp/dispatchtest":            suite,
	"smp/storetest":               suite,
	"smp/sqlstore/sqlstoretest":   suite,
	"smp/readmodel/readmodeltest": suite,
	"smp/fraud/fraudtest":         suite,

	"smp/cmd":   wiring,
	"smp/app":   wiring,
	"smp/tests": wiring,
	"smp/bench": wiring,
}

func classify(path string) (kind, bool) {
	best, k := "", kind("")
	for p, kk := range layout {
		match := path == p || (p != "smp" && strings.HasPrefix(path, p+"/"))
		if match && len(p) > len(best) {
			best, k = p, kk
		}
	}
	return k, best != ""
}

// allowed says whether a package of kind from may import one of kind to.
func allowed(from, to kind) bool {
	switch from {
	case root:
		return false
	case internal, backend:
		return to == root || to == internal
	case logic, transport, suite:
		return to != backend && to != wiring
	case wiring:
		return true
	}
	return false
}

type pkg struct {
	ImportPath string
	Dir        string
	Imports    []string
	GoFiles    []string
}

// goList runs go list once for the whole test binary: every rule reads the
// same listing.
var goList = sync.OnceValues(func() ([]pkg, error) {
	cmd := exec.Command("go", "list", "-json", "smp/...")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list: %v\n%s", err, errb.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			return nil, fmt.Errorf("decode go list: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, nil
})

func listPackages(t *testing.T) []pkg {
	t.Helper()
	pkgs, err := goList()
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; expected the whole module", len(pkgs))
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		from, ok := classify(p.ImportPath)
		if !ok {
			t.Errorf("%s is not classified: add it to layout in internal/archtest (and to docs/architecture.md)", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if imp != "smp" && !strings.HasPrefix(imp, "smp/") {
				continue
			}
			to, ok := classify(imp)
			if !ok {
				continue // reported as the importing package's own entry
			}
			if !allowed(from, to) {
				t.Errorf("%s (%s) imports %s (%s): not allowed", p.ImportPath, from, imp, to)
			}
		}
	}
}

func TestClassifyAndAllow(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		path string
		want kind
	}{{"smp", root}, {"smp/internal/panics", internal}, {"smp/sqlstore", backend}, {"smp/sqlstore/sqlstoretest", suite}, {"smp/cmd/smp", wiring}} {
		if got, _ := classify(c.path); got != c.want {
			t.Errorf("classify(%s) = %s, want %s", c.path, got, c.want)
		}
	}
	if _, ok := classify("smp/newthing"); ok {
		t.Error("an unlisted package must not be classified")
	}
	if allowed(backend, backend) || allowed(logic, backend) || allowed(root, internal) || !allowed(wiring, backend) {
		t.Error("allowed() does not encode the rules")
	}
}

// TestNoGetenvInLibraries: configuration is parsed only in cmd/; test
// helpers (package names ending in "test") may read SMP_TEST_* variables.
func TestNoGetenvInLibraries(t *testing.T) {
	t.Parallel()
	for _, p := range listPackages(t) {
		if strings.HasPrefix(p.ImportPath, "smp/cmd/") || strings.HasSuffix(p.ImportPath, "test") {
			continue
		}
		for _, f := range p.GoFiles {
			for _, call := range envCalls(t, filepath.Join(p.Dir, f)) {
				t.Errorf("%s outside cmd/: take it in the component's Config instead", call)
			}
		}
	}
}

func envCalls(t *testing.T, file string) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, file, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && slices.Contains([]string{"Getenv", "LookupEnv", "Environ"}, sel.Sel.Name) {
			found = append(found, fset.Position(sel.Pos()).String()+": os."+sel.Sel.Name)
		}
		return true
	})
	return found
}
