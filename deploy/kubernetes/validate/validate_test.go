package validate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The shipped manifests and the deployment guide, relative to this module.
const (
	manifestDir = ".."
	docsPath    = "../../../docs/deployment.md"
)

// TestManifests is the check make test runs: the shipped manifests decode
// strictly and keep every invariant.
func TestManifests(t *testing.T) {
	for _, err := range Validate(manifestDir, docsPath) {
		t.Error(err)
	}
}

// load returns fresh copies of the shipped manifests and documented
// Secrets, for a case to break.
func load(t *testing.T) (*Set, Documented) {
	t.Helper()
	set, err := Load(manifestDir)
	if err != nil {
		t.Fatal(err)
	}
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		t.Fatal(err)
	}
	return set, ParseDocumented(string(docs))
}

func proxyContainer(s *Set) *corev1.Container {
	pod := &s.Deployments[0].Spec.Template.Spec
	for i := range pod.Containers {
		if pod.Containers[i].Name == "pgpseudo" {
			return &pod.Containers[i]
		}
	}
	return nil
}

func configMapData(s *Set) map[string]string { return s.ConfigMaps[0].Data }

// TestCheckFails breaks one invariant at a time and expects Check to say
// so, so that TestManifests passing means something.
func TestCheckFails(t *testing.T) {
	int32p := func(n int32) *int32 { return &n }
	int64p := func(n int64) *int64 { return &n }
	boolp := func(b bool) *bool { return &b }
	for _, tc := range []struct {
		name   string
		mutate func(*Set, Documented)
		want   string
	}{
		{"two replicas", func(s *Set, _ Documented) { s.Deployments[0].Spec.Replicas = int32p(2) }, "want 3 replicas"},
		{"readiness path", func(s *Set, _ Documented) { proxyContainer(s).ReadinessProbe.HTTPGet.Path = "/healthz" }, "want /readyz"},
		{"liveness path", func(s *Set, _ Documented) { proxyContainer(s).LivenessProbe.HTTPGet.Path = "/metrics" }, "want /healthz"},
		{"probe on the proxy port", func(s *Set, _ Documented) {
			proxyContainer(s).LivenessProbe.HTTPGet.Port = intstr.FromString("postgres")
		}, "but admin.listen is port"},
		{"probe over http", func(s *Set, _ Documented) { proxyContainer(s).ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTP }, "want HTTPS"},
		{"admin port moved in the config", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "listen: 0.0.0.0:9187", "listen: 0.0.0.0:9188", 1)
		}, "but admin.listen is port 9188"},
		{"writable root", func(s *Set, _ Documented) { proxyContainer(s).SecurityContext.ReadOnlyRootFilesystem = boolp(false) }, "readOnlyRootFilesystem must be true"},
		{"root allowed", func(s *Set, _ Documented) {
			s.Deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot must be true"},
		{"init container escalates", func(s *Set, _ Documented) {
			s.Deployments[0].Spec.Template.Spec.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = boolp(true)
		}, "allowPrivilegeEscalation must be false"},
		{"capability kept", func(s *Set, _ Documented) {
			proxyContainer(s).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"}
		}, "must drop ALL"},
		{"no seccomp", func(s *Set, _ Documented) { s.Deployments[0].Spec.Template.Spec.SecurityContext.SeccompProfile = nil }, "seccompProfile must be RuntimeDefault"},
		{"no memory limit", func(s *Set, _ Documented) { delete(proxyContainer(s).Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
		{"grace too short", func(s *Set, _ Documented) {
			s.Deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = int64p(60)
		}, "terminationGracePeriodSeconds 1m0s must exceed"},
		{"drain longer than the grace period", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "shutdown_timeout: 30s", "shutdown_timeout: 2m", 1)
		}, "limits.shutdown_timeout 2m0s"},
		{"pdb selects other pods", func(s *Set, _ Documented) {
			s.PDBs[0].Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "other"
		}, "does not match the pod template's labels"},
		{"service selects nothing", func(s *Set, _ Documented) { s.Services[0].Spec.Selector["app.kubernetes.io/name"] = "pgbouncer" }, "does not select the pods"},
		{"service to the admin port", func(s *Set, _ Documented) { s.Services[0].Spec.Ports[0].TargetPort = intstr.FromString("admin") }, "but the proxy listens on 6432"},
		{"undocumented secret", func(_ *Set, d Documented) { delete(d, "pgpseudo-auth") }, "Secret pgpseudo-auth is neither"},
		{"secret key the docs do not create", func(_ *Set, d Documented) { d["pgpseudo-auth"] = []string{"pass"} }, `has no key "password"`},
		{"missing ConfigMap", func(s *Set, _ Documented) { s.ConfigMaps[0].Name = "other" }, "ConfigMap pgpseudo-config is not among the manifests"},
		{"world-readable secret", func(s *Set, _ Documented) {
			vols := s.Deployments[0].Spec.Template.Spec.Volumes
			for i := range vols {
				if vols[i].Secret != nil {
					vols[i].Secret.DefaultMode = func(n int32) *int32 { return &n }(0o444)
					return
				}
			}
		}, "defaultMode without access for others"},
		{"config file not mounted", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "/etc/pgpseudo/auth/password", "/etc/pgpseudo/password", 1)
		}, "auth.auth_password_file /etc/pgpseudo/password is on no volume"},
		{"policy not in the ConfigMap", func(s *Set, _ Documented) { delete(configMapData(s), "policy.yaml") }, `ConfigMap pgpseudo-config has no key "policy.yaml"`},
		{"vault token auth", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "method: kubernetes", "method: token", 1)
		}, "want kubernetes"},
		{"jwt not projected", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "/var/run/secrets/vault/token", "/var/run/secrets/vault/jwt", 1)
		}, "is not a projected service account token"},
		{"audit chains shared", func(s *Set, _ Documented) {
			for i := range proxyContainer(s).VolumeMounts {
				proxyContainer(s).VolumeMounts[i].SubPathExpr = ""
			}
		}, "needs subPathExpr with the pod's name"},
		{"checkpoints beside the log", func(s *Set, _ Documented) {
			d := configMapData(s)
			d["config.yaml"] = strings.Replace(d["config.yaml"], "/var/lib/pgpseudo/audit.jsonl.checkpoints", "/var/log/pgpseudo/audit.jsonl.checkpoints", 1)
		}, "share volume audit"},
		{"GOMEMLIMIT above the limit", func(s *Set, _ Documented) {
			for i, e := range proxyContainer(s).Env {
				if e.Name == "GOMEMLIMIT" {
					proxyContainer(s).Env[i].Value = "1GiB"
				}
			}
		}, "GOMEMLIMIT 1GiB is not below the memory limit 512Mi"},
		{"default service account", func(s *Set, _ Documented) { s.Deployments[0].Spec.Template.Spec.ServiceAccountName = "" }, "serviceAccountName must name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set, docs := load(t)
			tc.mutate(set, docs)
			errs := Check(set, docs)
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.want) {
					return
				}
			}
			t.Errorf("want an error containing %q, got %v", tc.want, errs)
		})
	}
}

// TestLoadStrict: a misspelt field, an unknown kind, and a manifest the
// kustomization leaves out are errors, not silently ignored.
func TestLoadStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(dir string) error
		want string
	}{
		{"unknown field", func(dir string) error {
			return replaceIn(filepath.Join(dir, "deployment.yaml"), "readOnlyRootFilesystem: true", "readOnlyRootFileSystem: true")
		}, `unknown field "spec.template.spec.initContainers[0].securityContext.readOnlyRootFileSystem"`},
		{"unknown kind", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "service.yaml"), []byte("apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n"), 0o644)
		}, `unknown kind "Servce"`},
		{"old apiVersion", func(dir string) error {
			return replaceIn(filepath.Join(dir, "poddisruptionbudget.yaml"), "policy/v1", "policy/v1beta1")
		}, "unknown kind"},
		{"file left out", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "extra.yaml"), []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\n"), 0o644)
		}, "extra.yaml is not among kustomization.yaml's resources"},
		{"kustomization misspelt", func(dir string) error {
			return replaceIn(filepath.Join(dir, "kustomization.yaml"), "resources:", "resource:")
		}, "kustomization.yaml"},
		{"wrong field type", func(dir string) error {
			return replaceIn(filepath.Join(dir, "deployment.yaml"), "replicas: 3", "replicas: three")
		}, "deployment.yaml: document 1 (Deployment)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyManifests(t)
			if err := tc.edit(dir); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestParseDocumented reads kubectl create secret commands as the guide
// writes them, continuation lines included.
func TestParseDocumented(t *testing.T) {
	got := ParseDocumented("```sh\nkubectl -n pgpseudo create secret generic pgpseudo-auth \\\n  --from-file=password=./auth.password\n" +
		"kubectl create secret tls pgpseudo-tls --cert=proxy.crt --key=proxy.key\n" +
		"kubectl create secret generic pgpseudo-ca --from-file=db-ca.crt --from-literal=x=y\n```\n")
	want := map[string]string{"pgpseudo-auth": "password", "pgpseudo-tls": "tls.crt tls.key", "pgpseudo-ca": "db-ca.crt x"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for name, keys := range want {
		if strings.Join(got[name], " ") != keys {
			t.Errorf("%s: got keys %v, want %s", name, got[name], keys)
		}
	}
}

func copyManifests(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func replaceIn(file, old, new string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	s := string(data)
	if !strings.Contains(s, old) {
		return os.ErrNotExist
	}
	return os.WriteFile(file, []byte(strings.Replace(s, old, new, 1)), 0o644)
}

func TestParseGoBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"460MiB", 460 << 20, true},
		{"1GiB", 1 << 30, true},
		{"2048", 2048, true},
		{"512B", 512, true},
		{"460Mi", 0, false}, // a Kubernetes quantity, not a Go byte count
		{"-1", 0, false},
	} {
		got, ok := parseGoBytes(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseGoBytes(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
