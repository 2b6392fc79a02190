package fraud

import "github.com/expr-lang/expr"

// exprRun runs a compiled rule on env.
func exprRun(r *Rule, env *Env) (bool, error) {
	out, err := expr.Run(r.program, env)
	if err != nil {
		return false, err
	}
	b, _ := out.(bool)
	return b, nil
}
