package archtest

import (
	"go/ast"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the module's root, seen from internal/archtest.
const repoRoot = "../.."

// touchpoint is one row of the table under "## Runbook touchpoints" in
// docs/architecture.md:
//
//	| `name` | kind | INC-00N | `path/to/file` | as |
//
// The file must exist and hold the name. "as" is empty when the file holds
// the name itself (inside a string literal, for a Go file); `part` when the
// name is built at run time from a part of it (a key prefix, a topic
// suffix, a route inside "GET /route"); const `pkg.Name` when the file
// refers to a string constant, declared in pkg (or the file's own package
// for a bare Name), whose value is the name or a part of it.
type touchpoint struct {
	line     int
	name     string
	kind     string
	incident string
	file     string
	as       string // the part, or the constant's identifier
	isConst  bool
}

var (
	codeSpan   = regexp.MustCompile("`([^`]+)`")
	incidentRe = regexp.MustCompile(`^INC-0\d\d(, INC-0\d\d)*$`)
)

func code(cell string) string {
	if m := codeSpan.FindStringSubmatch(cell); m != nil {
		return m[1]
	}
	return ""
}

// parseTouchpoints reads the rows of the touchpoint table from the
// architecture document's text.
func parseTouchpoints(t *testing.T, doc string) []touchpoint {
	t.Helper()
	var rows []touchpoint
	in, header := false, 0
	for i, l := range strings.Split(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			in = strings.TrimSpace(l) == "## Runbook touchpoints"
			header = 0
			continue
		case !in || !strings.HasPrefix(l, "|"):
			continue
		}
		if header < 2 { // the header line and the separator
			header++
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		if len(cells) != 5 {
			t.Errorf("docs/architecture.md:%d: %d cells, want 5 (touchpoint, kind, incident, file, as): %s", i+1, len(cells), l)
			continue
		}
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		tp := touchpoint{line: i + 1, name: code(cells[0]), kind: cells[1], incident: cells[2], file: code(cells[3])}
		if as := cells[4]; as != "" {
			tp.as, tp.isConst = code(as), strings.HasPrefix(as, "const ")
			if tp.as == "" {
				t.Errorf("docs/architecture.md:%d: as %q is neither `part` nor const `Name`", tp.line, as)
			}
		}
		if tp.name == "" || tp.file == "" || tp.kind == "" || !incidentRe.MatchString(tp.incident) {
			t.Errorf("docs/architecture.md:%d: malformed row: %s", tp.line, l)
			continue
		}
		rows = append(rows, tp)
	}
	return rows
}

// TestRunbookTouchpoints holds the touchpoint table of docs/architecture.md
// to the code: every row's file exists and implements the touchpoint.
func TestRunbookTouchpoints(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	rows := parseTouchpoints(t, string(doc))
	if len(rows) < 40 {
		t.Fatalf("docs/architecture.md: %d touchpoint rows under \"## Runbook touchpoints\"; the table is missing or unparsed", len(rows))
	}
	for _, tp := range rows {
		if err := checkTouchpoint(tp); err != "" {
			t.Errorf("docs/architecture.md:%d: %s → %s: %s", tp.line, tp.name, tp.file, err)
		}
	}
}

func checkTouchpoint(tp touchpoint) string {
	path := filepath.Join(repoRoot, filepath.FromSlash(tp.file))
	src, err := os.ReadFile(path)
	if err != nil {
		return "the file does not exist"
	}
	if tp.isConst {
		return checkConst(tp, path, src)
	}
	needle := tp.name
	if tp.as != "" {
		if !strings.Contains(tp.name, tp.as) {
			return "as " + strconv.Quote(tp.as) + " is not part of the touchpoint"
		}
		needle = tp.as
	}
	if !strings.HasSuffix(path, ".go") {
		if !strings.Contains(string(src), needle) {
			return strconv.Quote(needle) + " is not in the file"
		}
		return ""
	}
	for _, lit := range stringLiterals(src) {
		if strings.Contains(lit, needle) {
			return ""
		}
	}
	return "no string literal in the file holds " + strconv.Quote(needle)
}

// stringLiterals returns the values of a Go file's string literals (not
// its comments).
func stringLiterals(src []byte) []string {
	fset := token.NewFileSet()
	var s scanner.Scanner
	s.Init(fset.AddFile("", fset.Base(), len(src)), src, nil, 0)
	var lits []string
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			return lits
		}
		if tok == token.STRING {
			if v, err := strconv.Unquote(lit); err == nil {
				lits = append(lits, v)
			}
		}
	}
}

// checkConst: the file refers to the constant (pkg.Name through an import
// of pkg, or Name in its own package), and the constant is a string
// declared with the touchpoint or a part of it.
func checkConst(tp touchpoint, path string, src []byte) string {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		return "not a Go file: " + err.Error()
	}
	qual, name, ok := strings.Cut(tp.as, ".")
	if !ok {
		qual, name = "", tp.as
	}
	dir := filepath.Dir(path)
	if qual != "" {
		found := false
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			local := p[strings.LastIndex(p, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			if local != qual {
				continue
			}
			switch {
			case p == "smp":
				dir, found = repoRoot, true
			case strings.HasPrefix(p, "smp/"):
				dir, found = filepath.Join(repoRoot, filepath.FromSlash(strings.TrimPrefix(p, "smp/"))), true
			}
		}
		if !found {
			return "the file imports no project package " + qual
		}
	}
	used := false
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			if id, ok := n.X.(*ast.Ident); ok && qual != "" && id.Name == qual && n.Sel.Name == name {
				used = true
			}
		case *ast.Ident:
			if qual == "" && n.Name == name {
				used = true
			}
		}
		return !used
	})
	if !used {
		return "the file does not refer to " + tp.as
	}
	value, ok := constValue(dir, name)
	if !ok {
		return "no string constant " + tp.as + " declared in " + dir
	}
	if !strings.Contains(tp.name, value) {
		return tp.as + " = " + strconv.Quote(value) + ", not the touchpoint or a part of it"
	}
	return ""
}

// constValue finds a string constant declared in a package directory.
func constValue(dir, name string) (string, bool) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
		if err != nil {
			continue
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if id.Name != name || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						return v, err == nil
					}
				}
			}
		}
	}
	return "", false
}

// TestTouchpointCheckFails: the check refuses a wrong file, a string that
// is not in the file, a part that is not part of the name, and a constant
// with another value.
func TestTouchpointCheckFails(t *testing.T) {
	t.Parallel()
	for _, tp := range []touchpoint{
		{name: "dispatch_engine_up", file: "orders/orders.go"},
		{name: "dispatch_engine_up", file: "dispatch/no_such_file.go"},
		{name: "dispatch_engine_upp", file: "dispatch/metrics.go"},
		{name: "dispatch:queue:HCMC", file: "redisstore/keys.go", as: "dispatch:invitations:"},
		{name: "ENABLE_AUTO_DISPATCH", file: "dispatch/engine.go", as: "smp.FlagIntegrationBypassCircuit", isConst: true},
		{name: "ENABLE_AUTO_DISPATCH", file: "orders/orders.go", as: "smp.FlagEnableAutoDispatch", isConst: true},
	} {
		if checkTouchpoint(tp) == "" {
			t.Errorf("%+v passed", tp)
		}
	}
	for _, tp := range []touchpoint{
		{name: "dispatch_engine_up", file: "dispatch/heartbeat.go"},
		{name: "dispatch:queue:HCMC", file: "redisstore/keys.go", as: "dispatch:queue:"},
		{name: "ENABLE_AUTO_DISPATCH", file: "dispatch/engine.go", as: "smp.FlagEnableAutoDispatch", isConst: true},
	} {
		if err := checkTouchpoint(tp); err != "" {
			t.Errorf("%+v: %s", tp, err)
		}
	}
}
