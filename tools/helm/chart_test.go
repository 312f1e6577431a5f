// Package helm checks the Sift chart the way `helm lint --strict` and
// `helm template` see it, with Helm's own packages, and decodes every
// rendered manifest strictly into the Kubernetes API types: an unknown or
// misspelt field, or a value of the wrong type, fails the test. It runs
// without a cluster and without the network.
package helm

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

var (
	chartDir = filepath.Join("..", "..", "deploy", "helm", "sift")
	haValues = filepath.Join("..", "..", "deploy", "helm", "ha-values.yaml")
)

// values reads a values file; "" is the chart's own values.
func values(t *testing.T, path string) map[string]any {
	t.Helper()
	if path == "" {
		return map[string]any{}
	}
	v, err := chartutil.ReadValuesFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return v.AsMap()
}

// render is `helm template sift <chart> -f <values>`: the manifests, in order.
func render(vals map[string]any) (string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "sift", "sift"
	rel, err := install.Run(ch, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// objects are the rendered manifests decoded into their API types.
type objects struct {
	deployment     *appsv1.Deployment
	service        *corev1.Service
	configMap      *corev1.ConfigMap
	serviceAccount *corev1.ServiceAccount
	pvc            *corev1.PersistentVolumeClaim
	pdb            *policyv1.PodDisruptionBudget
	networkPolicy  *networkingv1.NetworkPolicy
	serviceMonitor *monitoringv1.ServiceMonitor
}

// decode splits the manifest and decodes each document strictly into the
// type its apiVersion and kind name.
func decode(t *testing.T, manifest string) objects {
	t.Helper()
	var o objects
	seen := map[string]bool{}
	for name, doc := range releaseutil.SplitManifests(manifest) {
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		gvk := head.APIVersion + " " + head.Kind
		if seen[gvk] {
			t.Errorf("two %s objects", gvk)
		}
		seen[gvk] = true
		var target any
		switch gvk {
		case "apps/v1 Deployment":
			o.deployment = new(appsv1.Deployment)
			target = o.deployment
		case "v1 Service":
			o.service = new(corev1.Service)
			target = o.service
		case "v1 ConfigMap":
			o.configMap = new(corev1.ConfigMap)
			target = o.configMap
		case "v1 ServiceAccount":
			o.serviceAccount = new(corev1.ServiceAccount)
			target = o.serviceAccount
		case "v1 PersistentVolumeClaim":
			o.pvc = new(corev1.PersistentVolumeClaim)
			target = o.pvc
		case "policy/v1 PodDisruptionBudget":
			o.pdb = new(policyv1.PodDisruptionBudget)
			target = o.pdb
		case "networking.k8s.io/v1 NetworkPolicy":
			o.networkPolicy = new(networkingv1.NetworkPolicy)
			target = o.networkPolicy
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o.serviceMonitor = new(monitoringv1.ServiceMonitor)
			target = o.serviceMonitor
		default:
			t.Errorf("%s: unexpected object %s: add its API type to this test", name, gvk)
			continue
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			t.Errorf("%s (%s): not a valid %s: %v\n%s", name, gvk, head.Kind, err, doc)
		}
	}
	return o
}

func TestChartLintsStrictly(t *testing.T) {
	for _, file := range []string{"", haValues} {
		t.Run(label(file), func(t *testing.T) {
			lint := action.NewLint()
			lint.Strict = true
			lint.Namespace = "sift"
			res := lint.Run([]string{chartDir}, values(t, file))
			for _, m := range res.Messages {
				t.Logf("lint: %s", m)
			}
			if len(res.Errors) > 0 {
				t.Errorf("helm lint --strict: %v", errors.Join(res.Errors...))
			}
		})
	}
}

func label(file string) string {
	if file == "" {
		return "values.yaml"
	}
	return filepath.Base(file)
}

func TestChartRendersValidManifests(t *testing.T) {
	tests := []struct {
		file     string
		replicas int32
		postgres bool
	}{
		{"", 1, false},
		{haValues, 2, true},
	}
	for _, tc := range tests {
		t.Run(label(tc.file), func(t *testing.T) {
			manifest, err := render(values(t, tc.file))
			if err != nil {
				t.Fatalf("helm template: %v", err)
			}
			if dir := os.Getenv("SIFT_CHART_OUT"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, label(tc.file)+".rendered.yaml"), []byte(manifest), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			o := decode(t, manifest)
			for what, missing := range map[string]bool{
				"Deployment": o.deployment == nil, "Service": o.service == nil, "ConfigMap": o.configMap == nil,
				"PodDisruptionBudget": o.pdb == nil, "NetworkPolicy": o.networkPolicy == nil,
			} {
				if missing {
					t.Fatalf("no %s rendered", what)
				}
			}
			checkDeployment(t, o, tc.replicas, tc.postgres)
			checkService(t, o)
			checkNetworkPolicy(t, o, tc.postgres)
			if got := o.pdb.Spec.Selector.MatchLabels; !isSubset(got, o.deployment.Spec.Template.Labels) {
				t.Errorf("the PodDisruptionBudget selects %v, the pods carry %v", got, o.deployment.Spec.Template.Labels)
			}
			if tc.postgres {
				if o.pvc != nil {
					t.Error("a PersistentVolumeClaim is rendered for the PostgreSQL store")
				}
				if o.serviceMonitor == nil {
					t.Fatal("no ServiceMonitor rendered with serviceMonitor.enabled")
				}
				if eps := o.serviceMonitor.Spec.Endpoints; len(eps) != 1 || eps[0].Port != "metrics" || eps[0].Path != "/metrics" {
					t.Errorf("ServiceMonitor endpoints %+v: want port metrics, path /metrics", eps)
				}
			} else {
				if o.pvc == nil {
					t.Error("no PersistentVolumeClaim for the SQLite store")
				}
				if o.serviceMonitor != nil {
					t.Error("a ServiceMonitor is rendered though serviceMonitor.enabled is false")
				}
			}
		})
	}
}

func checkDeployment(t *testing.T, o objects, replicas int32, postgres bool) {
	t.Helper()
	d := o.deployment
	if d.Spec.Replicas == nil || *d.Spec.Replicas != replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, replicas)
	}
	if !isSubset(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("the selector %v does not select the pod template's labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	wantStrategy := appsv1.RecreateDeploymentStrategyType
	if postgres {
		wantStrategy = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type != wantStrategy {
		t.Errorf("strategy %s, want %s", d.Spec.Strategy.Type, wantStrategy)
	}
	pod := d.Spec.Template.Spec
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Errorf("the pod's securityContext %+v: run as non-root", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Error("the container has no securityContext")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("the root filesystem is writable: set readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v: drop ALL, add none", sc.Capabilities)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v: set cpu and memory requests and a memory limit", c.Resources)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for probe, want := range map[*corev1.Probe]string{c.LivenessProbe: "/healthz", c.ReadinessProbe: "/readyz"} {
		if probe == nil || probe.HTTPGet == nil {
			t.Errorf("no HTTP probe for %s", want)
			continue
		}
		if probe.HTTPGet.Path != want || probe.HTTPGet.Port != intstr.FromString("metrics") {
			t.Errorf("probe %s on port %s, want %s on port metrics", probe.HTTPGet.Path, probe.HTTPGet.Port.String(), want)
		}
	}
	if ports["metrics"] == 0 || ports["hooks"] == 0 {
		t.Errorf("container ports %v: want metrics and hooks", ports)
	}

	// sift.yml comes from the ConfigMap, secrets from a Secret; the only
	// writable places are the store and /tmp.
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	if m, v := mounts["config"], vols["config"]; m.MountPath != "/etc/sift" || v.ConfigMap == nil || v.ConfigMap.Name != o.configMap.Name {
		t.Errorf("config volume %+v mounted %+v: want the ConfigMap at /etc/sift", v, m)
	}
	if _, ok := o.configMap.Data["sift.yml"]; !ok {
		t.Errorf("the ConfigMap has no sift.yml, has %v", slices.Collect(maps.Keys(o.configMap.Data)))
	}
	if !slices.Equal(c.Args, []string{"serve", "--config", "/etc/sift/sift.yml"}) {
		t.Errorf("args %q", c.Args)
	}
	if m, v := mounts["secrets"], vols["secrets"]; m.MountPath != "/run/secrets/sift" || !m.ReadOnly || v.Secret == nil || v.Secret.SecretName == "" {
		t.Errorf("secrets volume %+v mounted %+v: want a Secret, read-only at /run/secrets/sift", v, m)
	}
	store := vols["store"]
	if mounts["store"].MountPath != "/var/lib/sift" {
		t.Errorf("the store's volume is mounted at %q, want /var/lib/sift", mounts["store"].MountPath)
	}
	if postgres && store.EmptyDir == nil {
		t.Errorf("store volume %+v: PostgreSQL needs no claim", store)
	}
	if !postgres && (store.PersistentVolumeClaim == nil || o.pvc == nil || store.PersistentVolumeClaim.ClaimName != o.pvc.Name) {
		t.Errorf("store volume %+v: want the chart's claim for SQLite", store)
	}
	if _, ok := d.Spec.Template.Annotations["checksum/config"]; !ok {
		t.Error("no checksum/config annotation: a changed sift.yml would not roll the pods")
	}
}

func checkService(t *testing.T, o objects) {
	t.Helper()
	s := o.service
	if !isSubset(s.Spec.Selector, o.deployment.Spec.Template.Labels) || len(s.Spec.Selector) == 0 {
		t.Errorf("the Service selects %v, the pods carry %v", s.Spec.Selector, o.deployment.Spec.Template.Labels)
	}
	names := map[string]bool{}
	for _, p := range s.Spec.Ports {
		names[p.Name] = p.TargetPort == intstr.FromString(p.Name)
	}
	if !names["metrics"] || !names["hooks"] {
		t.Errorf("Service ports %+v: want metrics and hooks, each to the container port of that name", s.Spec.Ports)
	}
}

func checkNetworkPolicy(t *testing.T, o objects, postgres bool) {
	t.Helper()
	np := o.networkPolicy.Spec
	if !isSubset(np.PodSelector.MatchLabels, o.deployment.Spec.Template.Labels) || len(np.PodSelector.MatchLabels) == 0 {
		t.Errorf("the NetworkPolicy selects %v, the pods carry %v", np.PodSelector.MatchLabels, o.deployment.Spec.Template.Labels)
	}
	if !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policyTypes %v: want Ingress and Egress", np.PolicyTypes)
	}
	// Ingress: each rule names its peers and opens one named port.
	ingress := map[string]bool{}
	for _, r := range np.Ingress {
		if len(r.From) == 0 {
			t.Errorf("an ingress rule without peers opens %v to everyone", r.Ports)
		}
		for _, p := range r.Ports {
			if p.Port == nil {
				t.Errorf("an ingress rule opens every port")
				continue
			}
			ingress[p.Port.String()] = true
		}
	}
	if !ingress["hooks"] || !ingress["metrics"] || len(ingress) != 2 {
		t.Errorf("ingress opens %v: want hooks (Alertmanager, pipeline) and metrics (Prometheus) only", ingress)
	}
	egress := map[int]bool{}
	for _, r := range np.Egress {
		if len(r.To) == 0 {
			t.Errorf("an egress rule without peers opens %v to everywhere", r.Ports)
		}
		for _, p := range r.Ports {
			if p.Port == nil {
				t.Errorf("an egress rule opens every port")
				continue
			}
			egress[p.Port.IntValue()] = true
		}
	}
	want := []int{53, 443, 8000, 9090}
	if postgres {
		want = append(want, 5432)
	}
	for _, port := range want {
		if !egress[port] {
			t.Errorf("egress has no rule for port %d (DNS 53, Slack 443, salt-api 8000, Prometheus 9090, PostgreSQL 5432)", port)
		}
	}
}

func isSubset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return true
}

// TestChartRefusesBadValues: values that would fail only in the pod fail
// at helm template, with the fix.
func TestChartRefusesBadValues(t *testing.T) {
	tests := []struct {
		name string
		set  string
		want string
	}{
		{"replicas on SQLite", "replicaCount: 2", "replicaCount > 1 needs config.halts.store to be a postgres:// URL"},
		{"metrics elsewhere", "config:\n  metrics:\n    listen: 0.0.0.0:9999", "config.metrics.listen is \"0.0.0.0:9999\": set it to 0.0.0.0:9184"},
		{"hooks on loopback", "config:\n  halts:\n    listen: 127.0.0.1:9185", "config.halts.listen is \"127.0.0.1:9185\": set it to 0.0.0.0:9185"},
		{"metrics on every address", "config:\n  metrics:\n    listen: :9184", ""},
		{"hooks on another port", "config:\n  halts:\n    listen: 0.0.0.0:8080", "config.halts.listen is \"0.0.0.0:8080\": set it to 0.0.0.0:9185"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.set), &vals); err != nil {
				t.Fatal(err)
			}
			_, err := render(vals)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("helm template: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("helm template: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestChartValuesHoldNoSecret: the values files reference secrets, they
// never carry one.
func TestChartValuesHoldNoSecret(t *testing.T) {
	for _, file := range []string{filepath.Join(chartDir, "values.yaml"), haValues} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.Split(data, []byte("\n")) {
			key, _, _ := strings.Cut(strings.TrimSpace(string(line)), ":")
			key = strings.TrimPrefix(key, "- ")
			if slices.Contains([]string{"password", "app_token", "bot_token", "secret", "token", "store_password"}, key) {
				t.Errorf("%s:%d sets %s inline: reference a file under /run/secrets/sift or an env variable", file, i+1, key)
			}
		}
	}
}
