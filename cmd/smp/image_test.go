package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestContainerImage checks the Dockerfile against the binary: a Go build
// stage at go.mod's version that builds ./cmd/smp (not the benchmarks), a
// small runtime stage as a non-root user, /app/bin/smp as the entrypoint
// with every name argv dispatches on linked to it; and that deploy/k8s
// runs that entrypoint as that user.
func TestContainerImage(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	must(t, err)
	df := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(raw), " ") // join continued lines
	var stages [][]string                                                  // instructions per stage
	for _, line := range strings.Split(df, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("an instruction before FROM: %s", line)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], line)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	mod, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	must(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindStringSubmatch(string(mod))[1]
	build, runtime := strings.Join(stages[0], "\n"), stages[len(stages)-1]
	if !strings.HasPrefix(stages[0][0], "FROM golang:"+goVersion) {
		t.Errorf("build stage %q: want golang:%s (go.mod)", stages[0][0], goVersion)
	}
	if !strings.Contains(build, "CGO_ENABLED=0 go build") || !strings.Contains(build, "-o /out/app/bin/smp ./cmd/smp") || strings.Contains(build, "smp-bench") {
		t.Errorf("build stage does not build ./cmd/smp alone, statically, into /out/app/bin/smp:\n%s", build)
	}
	var linked []string
	for _, m := range regexp.MustCompile(`ln -s smp (\S+)`).FindAllStringSubmatch(build, -1) {
		linked = append(linked, m[1])
	}
	var names []string
	for n := range toolNames {
		names = append(names, n)
	}
	slices.Sort(linked)
	slices.Sort(names)
	if !slices.Equal(linked, names) {
		t.Errorf("links to smp in /app/bin: %v, want the names argv dispatches on: %v", linked, names)
	}
	instr := func(op string) string {
		v := ""
		for _, l := range runtime {
			if strings.HasPrefix(l, op+" ") {
				v = strings.TrimPrefix(l, op+" ")
			}
		}
		return v
	}
	if from := runtime[0]; strings.Contains(from, "golang") {
		t.Errorf("runtime stage %q: want a small base, not the toolchain", from)
	}
	if !slices.Contains(runtime, "COPY --from=build /out/app/bin /app/bin") {
		t.Errorf("runtime stage does not copy /app/bin: %v", runtime)
	}
	user := instr("USER")
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("USER %q: want a non-root user", user)
	}
	if e := instr("ENTRYPOINT"); e != `["/app/bin/smp"]` {
		t.Errorf("ENTRYPOINT %s", e)
	}

	uid, _, _ := strings.Cut(user, ":")
	for _, d := range readManifests(t).deployments {
		c := d.Spec.Template.Spec.Containers[0]
		if !strings.HasPrefix(c.Image, "registry.smp.local/smp:") || !slices.Equal(c.Command, []string{"/app/bin/smp"}) {
			t.Errorf("deployment %s: image %s command %v, want the smp image's /app/bin/smp", d.Name, c.Image, c.Command)
		}
		sc := d.Spec.Template.Spec.SecurityContext
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || itoa(int(*sc.RunAsUser)) != uid {
			t.Errorf("deployment %s: pod securityContext %+v, want runAsNonRoot as the image's user %s", d.Name, sc, uid)
		}
		if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Errorf("deployment %s: container may escalate privileges", d.Name)
		}
	}
}
