package fraud

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"smp"
)

// DefaultRulesFile is the name the runbook gives the rules file.
const DefaultRulesFile = "rules_engine.yaml"

// DefaultRules is the rules file shipped with SMP (embedded), used when
// no --fraud-rules file is given.
//
//go:embed rules_engine.yaml
var DefaultRules []byte

// Inputs a rule may need (its needs: list); without them it answers
// unknown.
const (
	NeedIPCountry      = "ip_country"
	NeedPartnerCountry = "partner_country"
)

// Rule is one compiled rule of the file.
type Rule struct {
	Name        string
	Description string
	Severity    string
	Outcome     smp.FraudOutcome
	Score       int
	Needs       []string
	When        string
	Line        int // where the rule starts in its file

	program *vm.Program
	fields  []string // Topup.X and Partner.X the expression reads
}

// RuleSet is a loaded, compiled rules file.
type RuleSet struct {
	Source  string // the file's name
	Version string // hex SHA-256 of its content, first 16 digits
	Rules   []*Rule
}

// LoadError is a rules file refused: which rule, at which line, and why.
type LoadError struct {
	File   string
	Rule   string // "" for an error of the file itself
	Line   int
	Reason string
}

func (e *LoadError) Error() string {
	if e.Rule == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s:%d: rule %q: %s", e.File, e.Line, e.Rule, e.Reason)
}

type fileRule struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Severity    string   `yaml:"severity"`
	Outcome     string   `yaml:"outcome"`
	Score       int      `yaml:"score"`
	Needs       []string `yaml:"needs"`
	When        string   `yaml:"when"`
}

type file struct {
	Category string      `yaml:"category"`
	Version  int         `yaml:"version"`
	Rules    []yaml.Node `yaml:"rules"`
}

// Parse reads and compiles a rules file (name is how errors name it).
// Every rule's expression is compiled against Env and must be a boolean;
// the first problem refuses the whole file with a *LoadError.
func Parse(name string, data []byte) (*RuleSet, error) {
	var f file
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		line := lineOf([]string{strings.TrimPrefix(err.Error(), "yaml: ")})
		var te *yaml.TypeError
		if ok := asTypeError(err, &te); ok {
			line = lineOf(te.Errors)
		}
		return nil, &LoadError{File: name, Line: line, Reason: err.Error()}
	}
	if f.Category != "fraud" {
		return nil, &LoadError{File: name, Line: 1, Reason: fmt.Sprintf("category is %q, want fraud", f.Category)}
	}
	if len(f.Rules) == 0 {
		return nil, &LoadError{File: name, Line: 1, Reason: "no rules"}
	}
	sum := sha256.Sum256(data)
	rs := &RuleSet{Source: name, Version: hex.EncodeToString(sum[:])[:16]}
	seen := map[string]bool{}
	for i := range f.Rules {
		node := &f.Rules[i]
		var fr fileRule
		for j := 0; j+1 < len(node.Content); j += 2 {
			switch k := node.Content[j]; k.Value {
			case "name", "description", "severity", "outcome", "score", "needs", "when":
			default:
				return nil, &LoadError{File: name, Rule: ruleName(node), Line: k.Line, Reason: fmt.Sprintf("unknown field %q", k.Value)}
			}
		}
		if err := node.Decode(&fr); err != nil {
			return nil, &LoadError{File: name, Rule: ruleName(node), Line: node.Line, Reason: err.Error()}
		}
		r, err := compileRule(fr, node.Line)
		if err != nil {
			line := node.Line
			if strings.HasPrefix(err.Error(), "when:") {
				line = keyLine(node, "when", line)
			}
			return nil, &LoadError{File: name, Rule: fr.Name, Line: line, Reason: err.Error()}
		}
		if seen[r.Name] {
			return nil, &LoadError{File: name, Rule: fr.Name, Line: node.Line, Reason: "a rule of this name comes earlier in the file"}
		}
		seen[r.Name] = true
		rs.Rules = append(rs.Rules, r)
	}
	return rs, nil
}

func compileRule(fr fileRule, line int) (*Rule, error) {
	r := &Rule{Name: fr.Name, Description: fr.Description, Severity: fr.Severity, Outcome: smp.FraudOutcome(fr.Outcome),
		Score: fr.Score, Needs: fr.Needs, When: strings.TrimSpace(fr.When), Line: line}
	switch {
	case r.Name == "" || strings.ContainsAny(r.Name, " ,\"'"):
		return nil, fmt.Errorf("a rule needs a name without spaces, commas or quotes")
	case smp.SeverityRank(r.Severity) < 1:
		return nil, fmt.Errorf("severity %q is not low, medium or high", r.Severity)
	case r.Outcome.Rank() < 0:
		return nil, fmt.Errorf("outcome %q is not allow, review, soft_block or freeze", r.Outcome)
	case r.Score < 0 || r.Score > 100:
		return nil, fmt.Errorf("score %d is not within 0..100", r.Score)
	case r.When == "":
		return nil, fmt.Errorf("when: the rule's expression is missing")
	}
	for _, n := range r.Needs {
		if n != NeedIPCountry && n != NeedPartnerCountry {
			return nil, fmt.Errorf("needs: unknown input %q (ip_country, partner_country)", n)
		}
	}
	tree, err := expr.Compile(r.When, expr.Env(&Env{}), expr.AsBool())
	if err != nil {
		return nil, fmt.Errorf("when: %s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	r.program = tree
	r.fields = readFields(tree.Node())
	return r, nil
}

// readFields lists the inputs an expression reads (Topup.AmountVND …), so a
// decision can show what each rule saw.
func readFields(n ast.Node) []string {
	v := &fieldVisitor{seen: map[string]bool{}}
	ast.Walk(&n, v)
	sort.Strings(v.out)
	return v.out
}

type fieldVisitor struct {
	seen map[string]bool
	out  []string
}

func (v *fieldVisitor) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || (id.Value != "Topup" && id.Value != "Partner") {
		return
	}
	p, ok := m.Property.(*ast.StringNode)
	if !ok {
		return
	}
	k := id.Value + "." + p.Value
	if !v.seen[k] {
		v.seen[k] = true
		v.out = append(v.out, k)
	}
}

// fieldValue reads "Topup.X" or "Partner.X" from env.
func fieldValue(env *Env, path string) any {
	base, field, _ := strings.Cut(path, ".")
	var v reflect.Value
	switch base {
	case "Topup":
		v = reflect.ValueOf(env.Topup)
	case "Partner":
		v = reflect.ValueOf(env.Partner)
	default:
		return nil
	}
	f := v.FieldByName(field)
	if !f.IsValid() {
		return nil
	}
	return f.Interface()
}

// keyLine is the line of key's value in mapping n (def when absent).
func keyLine(n *yaml.Node, key string, def int) int {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1].Line
		}
	}
	return def
}

func ruleName(n *yaml.Node) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			return n.Content[i+1].Value
		}
	}
	return ""
}

func asTypeError(err error, te **yaml.TypeError) bool {
	t, ok := err.(*yaml.TypeError)
	if ok {
		*te = t
	}
	return ok
}

// lineOf finds "line N" in yaml's messages.
func lineOf(msgs []string) int {
	for _, m := range msgs {
		var n int
		if _, err := fmt.Sscanf(m, "line %d:", &n); err == nil {
			return n
		}
	}
	return 0
}
