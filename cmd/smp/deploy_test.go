package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifests reads every object under deploy/k8s, decoded strictly into the
// Kubernetes API types of its kind.
type manifests struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	configMaps  []corev1.ConfigMap
	hpas        []autoscalingv2.HorizontalPodAutoscaler
	namespaces  []corev1.Namespace
	cronJobs    []batchv1.CronJob
}

func readManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "deploy", "k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		raw, err := os.ReadFile(f)
		must(t, err)
		rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			doc, err := rd.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			must(t, err)
			var meta struct {
				Kind string `json:"kind"`
			}
			must(t, yaml.Unmarshal(doc, &meta))
			var target any
			switch meta.Kind {
			case "":
				continue // a comment-only document
			case "Deployment":
				m.deployments = append(m.deployments, appsv1.Deployment{})
				target = &m.deployments[len(m.deployments)-1]
			case "Service":
				m.services = append(m.services, corev1.Service{})
				target = &m.services[len(m.services)-1]
			case "ConfigMap":
				m.configMaps = append(m.configMaps, corev1.ConfigMap{})
				target = &m.configMaps[len(m.configMaps)-1]
			case "HorizontalPodAutoscaler":
				m.hpas = append(m.hpas, autoscalingv2.HorizontalPodAutoscaler{})
				target = &m.hpas[len(m.hpas)-1]
			case "CronJob":
				m.cronJobs = append(m.cronJobs, batchv1.CronJob{})
				target = &m.cronJobs[len(m.cronJobs)-1]
			case "Namespace":
				m.namespaces = append(m.namespaces, corev1.Namespace{})
				target = &m.namespaces[len(m.namespaces)-1]
			default:
				t.Fatalf("%s: unexpected kind %s", f, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, target); err != nil {
				t.Fatalf("%s: %s does not decode strictly: %v", f, meta.Kind, err)
			}
		}
	}
	return m
}

// TestKubernetesManifests: namespace smp-prod; one Deployment per SMP
// service named and labelled as the runbook's kubectl commands expect
// (app=dispatch-engine, app=integration-svc, ...); arguments smp serve
// accepts; liveness on /livez and readiness on /readyz at the listening port;
// resources; env only from smp-config (every key a real setting) and
// smp-secrets; Services and HPAs pointing at those Deployments.
func TestKubernetesManifests(t *testing.T) {
	m := readManifests(t)
	if len(m.namespaces) != 1 || m.namespaces[0].Name != "smp-prod" {
		t.Fatalf("namespaces %v", m.namespaces)
	}
	want := map[string]string{"api": ServiceAPI, "dispatch-engine": ServiceDispatchEngine, "order-svc": ServiceOrders,
		"integration-svc": ServiceIntegration, "outbox-relay": ServiceOutboxRelay}
	names := map[string]bool{}
	for _, d := range m.deployments {
		names[d.Name] = true
		if d.Namespace != "smp-prod" || d.Labels["app"] != d.Name {
			t.Errorf("deployment %s: namespace %q, label app=%q", d.Name, d.Namespace, d.Labels["app"])
		}
		sel, err := metav1LabelSelector(d)
		if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || d.Spec.Template.Labels["app"] != d.Name {
			t.Errorf("deployment %s: selector %v does not select its pods %v (%v)", d.Name, d.Spec.Selector, d.Spec.Template.Labels, err)
		}
		cs := d.Spec.Template.Spec.Containers
		if len(cs) != 1 {
			t.Fatalf("deployment %s: %d containers", d.Name, len(cs))
		}
		c := cs[0]
		// The arguments are what smp serve accepts, with the shared settings.
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("deployment %s: args %v", d.Name, c.Args)
		}
		var cfg Config
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		cfg.register(fs)
		if err := fs.Parse(c.Args[1:]); err != nil {
			t.Fatalf("deployment %s: smp serve rejects %v: %v", d.Name, c.Args, err)
		}
		cfg.MySQLDSN, cfg.RedisAddr = "from-secret", "from-configmap"
		if err := cfg.Validate(); err != nil {
			t.Errorf("deployment %s: %v", d.Name, err)
		}
		if cfg.Services != want[d.Name] {
			t.Errorf("deployment %s runs --services %q, want %q", d.Name, cfg.Services, want[d.Name])
		}
		port := c.Ports[0]
		if !strings.HasSuffix(cfg.Addr, ":"+itoa(int(port.ContainerPort))) {
			t.Errorf("deployment %s listens on %s but exposes %d", d.Name, cfg.Addr, port.ContainerPort)
		}
		// Liveness on /livez (a database outage must not restart every
		// pod), readiness on /readyz.
		for kind, p := range map[string]*corev1.Probe{"/livez": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != kind || p.HTTPGet.Port.String() != port.Name {
				t.Errorf("deployment %s: probe %+v, want GET %s on port %s", d.Name, p, kind, port.Name)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("deployment %s: resources %+v", d.Name, c.Resources)
		}
		var refs []string
		for _, e := range c.EnvFrom {
			if e.ConfigMapRef != nil {
				refs = append(refs, "configmap/"+e.ConfigMapRef.Name)
			}
			if e.SecretRef != nil {
				refs = append(refs, "secret/"+e.SecretRef.Name)
			}
		}
		if !slices.Equal(refs, []string{"configmap/smp-config", "secret/smp-secrets"}) || len(c.Env) != 0 {
			t.Errorf("deployment %s: env from %v (and %d literals)", d.Name, refs, len(c.Env))
		}
	}
	for n := range want {
		if !names[n] {
			t.Errorf("no deployment %s", n)
		}
	}
	// Every ConfigMap key is a setting smp serve reads.
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.register(fs)
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			name := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "SMP_"), "_", "-"))
			if !strings.HasPrefix(k, "SMP_") || fs.Lookup(name) == nil {
				t.Errorf("configmap %s: %s is not a setting of smp serve", cm.Name, k)
			}
			if strings.Contains(strings.ToLower(k), "secret") || strings.Contains(strings.ToLower(k), "token") || strings.Contains(strings.ToLower(k), "dsn") {
				t.Errorf("configmap %s: %s belongs in smp-secrets", cm.Name, k)
			}
		}
	}
	for _, s := range m.services {
		if !names[s.Spec.Selector["app"]] || s.Namespace != "smp-prod" {
			t.Errorf("service %s selects app=%s", s.Name, s.Spec.Selector["app"])
		}
	}
	for _, h := range m.hpas {
		if !names[h.Spec.ScaleTargetRef.Name] || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("hpa %s scales %v", h.Name, h.Spec.ScaleTargetRef)
		}
		if h.Spec.ScaleTargetRef.Name == "dispatch-engine" && h.Spec.MaxReplicas > 12 {
			t.Errorf("hpa %s: %d replicas, but orders.events has 12 partitions", h.Name, h.Spec.MaxReplicas)
		}
	}
	if len(m.hpas) == 0 {
		t.Error("no HPA")
	}
}

func metav1LabelSelector(d appsv1.Deployment) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(d.Spec.Selector)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestReconciliationCronJob: wallet-reconciliation-cron runs at 02:00 UTC,
// never twice at once, recon-report (a runbook tool name) with flags it
// accepts, against the api Service, with a token from a secret; and
// smp-config turns smp serve's own schedule off.
func TestReconciliationCronJob(t *testing.T) {
	m := readManifests(t)
	if len(m.cronJobs) != 1 {
		t.Fatalf("%d CronJobs", len(m.cronJobs))
	}
	cj := m.cronJobs[0]
	if cj.Name != "wallet-reconciliation-cron" || cj.Namespace != "smp-prod" || cj.Spec.Schedule != "0 2 * * *" ||
		cj.Spec.TimeZone == nil || *cj.Spec.TimeZone != "Etc/UTC" || cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
		t.Fatalf("cronjob %+v", cj.Spec)
	}
	c := cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0]
	if len(c.Command) != 1 || c.Command[0] != "/app/bin/recon-report" || !toolNames["recon-report"] {
		t.Fatalf("command %v", c.Command)
	}
	if !slices.Contains(c.Args, "--run") || !slices.Contains(c.Args, "--date=yesterday") || !slices.Contains(c.Args, "--server=http://api.smp-prod.svc:8080") {
		t.Fatalf("args %v", c.Args)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "SMP_ADMIN_TOKEN" || c.Env[0].ValueFrom == nil || c.Env[0].ValueFrom.SecretKeyRef == nil {
		t.Fatalf("env %+v", c.Env)
	}
	// The flags parse as recon-report's (exit 2 would be a usage error).
	_, errOut, code := smpExec(t, "recon-report", append(c.Args, "--server=http://127.0.0.1:1")...)
	if code == 2 && !strings.Contains(errOut, "SMP_ADMIN_TOKEN") {
		t.Fatalf("recon-report %v: %s", c.Args, errOut)
	}
	var off bool
	for _, cm := range m.configMaps {
		off = off || cm.Data["SMP_RECON_AT"] == "off"
	}
	if !off {
		t.Error("smp-config does not set SMP_RECON_AT=off beside the CronJob")
	}
}
