package validate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Set is every object of the manifests, by kind.
type Set struct {
	Deployments     []*appsv1.Deployment
	Services        []*corev1.Service
	ConfigMaps      []*corev1.ConfigMap
	Secrets         []*corev1.Secret
	PDBs            []*policyv1.PodDisruptionBudget
	ServiceAccounts []*corev1.ServiceAccount
}

// Kustomization is the part of kustomize's file the manifests use. Decoded
// strictly like the rest, so a misspelt key is an error here rather than
// silently ignored by kustomize.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
		Digest  string `json:"digest,omitempty"`
	} `json:"images,omitempty"`
}

// Load reads dir/kustomization.yaml and every resource it lists, and
// checks that the directory holds no manifest the kustomization leaves out
// (a file forgotten there would never be applied).
func Load(dir string) (*Set, error) {
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k Kustomization
	if err := decodeStrict(data, &k); err != nil {
		return nil, fmt.Errorf("kustomization.yaml: %w", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return nil, fmt.Errorf("kustomization.yaml: want kustomize.config.k8s.io/v1beta1 Kustomization, got %s %s", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" && !slices.Contains(k.Resources, b) {
			return nil, fmt.Errorf("%s is not among kustomization.yaml's resources", b)
		}
	}
	set := &Set{}
	for _, r := range k.Resources {
		data, err := os.ReadFile(filepath.Join(dir, r))
		if err != nil {
			return nil, err
		}
		if err := set.add(r, data); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// docSep splits a file into its YAML documents.
var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// add decodes every document of one file into its typed object. Unknown
// fields and unknown kinds are errors: kubectl would reject the first
// (strict field validation) and this check could not vouch for the second.
func (s *Set) add(name string, data []byte) error {
	for i, doc := range docSep.Split(string(data), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
			return fmt.Errorf("%s: document %d: %w", name, i+1, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			s.Deployments, obj = append(s.Deployments, d), d
		case "v1 Service":
			o := &corev1.Service{}
			s.Services, obj = append(s.Services, o), o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			s.ConfigMaps, obj = append(s.ConfigMaps, o), o
		case "v1 Secret":
			o := &corev1.Secret{}
			s.Secrets, obj = append(s.Secrets, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			s.PDBs, obj = append(s.PDBs, o), o
		case "v1 ServiceAccount":
			o := &corev1.ServiceAccount{}
			s.ServiceAccounts, obj = append(s.ServiceAccounts, o), o
		default:
			return fmt.Errorf("%s: document %d: unknown kind %q (apiVersion %q)", name, i+1, tm.Kind, tm.APIVersion)
		}
		if err := decodeStrict([]byte(doc), obj); err != nil {
			return fmt.Errorf("%s: document %d (%s): %w", name, i+1, tm.Kind, err)
		}
	}
	return nil
}

// decodeStrict decodes one YAML document as the API server's strict field
// validation does: duplicate keys, unknown fields and fields whose case
// differs are errors. (yaml.UnmarshalStrict alone goes through
// encoding/json, which matches field names case-insensitively: it would
// take readOnlyRootFileSystem for readOnlyRootFilesystem, which the API
// server rejects.)
func decodeStrict(doc []byte, obj any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// Documented is what docs/deployment.md says the operator creates: for
// each Secret its keys (tls.crt and tls.key for "kubectl create secret
// tls", the --from-file and --from-literal keys for generic ones).
type Documented map[string][]string

// createSecret matches one "kubectl create secret" command, continuation
// lines joined.
var createSecret = regexp.MustCompile(`kubectl(?: -n \S+)? create secret (generic|tls) ([a-z0-9.-]+)(.*)`)

// fromFlag matches a --from-file or --from-literal flag's key.
var fromFlag = regexp.MustCompile(`--from-(?:file|literal)=(?:([^=\s]+)=)?(\S+)`)

// ParseDocumented finds the Secrets a document tells the operator to
// create with kubectl.
func ParseDocumented(text string) Documented {
	joined := strings.ReplaceAll(text, "\\\n", " ")
	out := Documented{}
	for _, m := range createSecret.FindAllStringSubmatch(joined, -1) {
		name := m[2]
		if m[1] == "tls" {
			out[name] = append(out[name], corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
			continue
		}
		for _, f := range fromFlag.FindAllStringSubmatch(m[3], -1) {
			key := f[1]
			if key == "" {
				key = path.Base(f[2])
			}
			out[name] = append(out[name], key)
		}
	}
	return out
}

// CloseSignTimeout bounds the final audit checkpoint's signature after the
// drain (audit.closeSignTimeout in the proxy): the grace period must leave
// room for it.
const CloseSignTimeout = 30 * time.Second

// defaultShutdownTimeout is limits.shutdown_timeout's default
// (config.Defaults in the proxy).
const defaultShutdownTimeout = 30 * time.Second

// Check reports every broken invariant of the manifests.
func Check(s *Set, docs Documented) []error {
	c := &checker{s: s, docs: docs}
	c.run()
	return c.errs
}

type checker struct {
	s    *Set
	docs Documented
	errs []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

func (c *checker) run() {
	if len(c.s.Deployments) != 1 {
		c.errorf("want one Deployment, got %d", len(c.s.Deployments))
		return
	}
	d := c.s.Deployments[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		c.errorf("deployment %s: want 3 replicas, got %v", d.Name, ptrString(d.Spec.Replicas))
	}
	pod := &d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	c.selects("deployment "+d.Name+" selector", d.Spec.Selector, podLabels)
	c.podSecurity(pod)
	c.serviceAccount(pod)
	c.volumes(pod)

	i := slices.IndexFunc(pod.Containers, func(ct corev1.Container) bool { return ct.Name == "pgpseudo" })
	if i < 0 {
		c.errorf("deployment %s: no container named pgpseudo", d.Name)
		return
	}
	proxy := &pod.Containers[i]
	cfg := c.proxyConfig(pod, proxy)
	if cfg == nil {
		return
	}
	c.probes(proxy, cfg)
	c.grace(pod, proxy, cfg)
	c.vault(pod, proxy, cfg)
	c.files(pod, proxy, cfg)
	c.auditVolumes(pod, proxy, cfg)
	c.goMemLimit(proxy)

	if len(c.s.PDBs) != 1 {
		c.errorf("want one PodDisruptionBudget, got %d", len(c.s.PDBs))
	}
	for _, p := range c.s.PDBs {
		c.selects("poddisruptionbudget "+p.Name+" selector", p.Spec.Selector, podLabels)
		if p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil {
			c.errorf("poddisruptionbudget %s: sets neither minAvailable nor maxUnavailable", p.Name)
		}
	}
	if len(c.s.Services) != 1 {
		c.errorf("want one Service, got %d", len(c.s.Services))
	}
	listenPort := portOf(str(cfg, "listen"))
	for _, svc := range c.s.Services {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			c.errorf("service %s: selector %v does not select the pods (labels %v)", svc.Name, svc.Spec.Selector, podLabels)
		}
		if len(svc.Spec.Ports) == 0 {
			c.errorf("service %s: no ports", svc.Name)
		}
		for _, p := range svc.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			if got := containerPort(proxy, target); got != listenPort {
				c.errorf("service %s: port %s goes to container port %d, but the proxy listens on %d (listen)", svc.Name, p.Name, got, listenPort)
			}
		}
	}
}

func ptrString(p *int32) string {
	if p == nil {
		return "none (1)"
	}
	return strconv.Itoa(int(*p))
}

func (c *checker) selects(what string, sel *metav1.LabelSelector, podLabels labels.Set) {
	if sel == nil || (len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) == 0) {
		c.errorf("%s: empty, it would select every pod", what)
		return
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		c.errorf("%s: %v", what, err)
		return
	}
	if !s.Matches(podLabels) {
		c.errorf("%s %s does not match the pod template's labels %v", what, s, podLabels)
	}
}

// podSecurity: non-root, no privilege escalation, no capabilities, a
// read-only root filesystem and the runtime's seccomp profile, for every
// container the pod runs (the init container too).
func (c *checker) podSecurity(pod *corev1.PodSpec) {
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		c.errorf("pod: securityContext.runAsNonRoot must be true")
	}
	if psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		c.errorf("pod: securityContext.runAsUser must be a non-zero UID")
	}
	podSeccomp := psc.SeccompProfile != nil && psc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
	all := append(slices.Clone(pod.InitContainers), pod.Containers...)
	for _, ct := range all {
		sc := ct.SecurityContext
		if sc == nil {
			c.errorf("container %s: no securityContext", ct.Name)
			continue
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			c.errorf("container %s: readOnlyRootFilesystem must be true", ct.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			c.errorf("container %s: allowPrivilegeEscalation must be false", ct.Name)
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot || sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			c.errorf("container %s: overrides the pod's non-root user", ct.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			c.errorf("container %s: privileged", ct.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			c.errorf("container %s: capabilities must drop ALL and add none", ct.Name)
		}
		if sc.SeccompProfile != nil && sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault ||
			sc.SeccompProfile == nil && !podSeccomp {
			c.errorf("container %s: seccompProfile must be RuntimeDefault", ct.Name)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := ct.Resources.Requests[r]; !ok {
				c.errorf("container %s: no %s request", ct.Name, r)
			}
			if _, ok := ct.Resources.Limits[r]; !ok {
				c.errorf("container %s: no %s limit", ct.Name, r)
			}
		}
	}
}

func (c *checker) serviceAccount(pod *corev1.PodSpec) {
	if pod.ServiceAccountName == "" || pod.ServiceAccountName == "default" {
		c.errorf("pod: serviceAccountName must name pgpseudo's own ServiceAccount (Vault binds its role to it)")
		return
	}
	if !slices.ContainsFunc(c.s.ServiceAccounts, func(sa *corev1.ServiceAccount) bool { return sa.Name == pod.ServiceAccountName }) {
		c.errorf("pod: ServiceAccount %s is not among the manifests", pod.ServiceAccountName)
	}
}

// volumes: every ConfigMap and Secret a volume names exists among the
// manifests or is one docs/deployment.md tells the operator to create.
func (c *checker) volumes(pod *corev1.PodSpec) {
	for _, v := range pod.Volumes {
		switch {
		case v.ConfigMap != nil:
			if c.configMap(v.ConfigMap.Name) == nil {
				c.errorf("volume %s: ConfigMap %s is not among the manifests", v.Name, v.ConfigMap.Name)
			}
		case v.Secret != nil:
			if c.secretKeys(v.Secret.SecretName) == nil {
				c.errorf("volume %s: Secret %s is neither among the manifests nor created in docs/deployment.md", v.Name, v.Secret.SecretName)
			}
			// Key files and credentials readable by every user of the
			// node's pods are what pgpseudo refuses for its own files.
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
				c.errorf("volume %s: Secret %s needs a defaultMode without access for others (e.g. 0440)", v.Name, v.Secret.SecretName)
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ConfigMap != nil || src.Secret != nil {
					c.errorf("volume %s: projected ConfigMaps and Secrets are not checked; mount them as their own volumes", v.Name)
				}
			}
		}
	}
}

func (c *checker) configMap(name string) *corev1.ConfigMap {
	for _, cm := range c.s.ConfigMaps {
		if cm.Name == name {
			return cm
		}
	}
	return nil
}

// secretKeys returns the keys of a Secret among the manifests or
// documented, nil for neither.
func (c *checker) secretKeys(name string) []string {
	for _, s := range c.s.Secrets {
		if s.Name == name {
			keys := []string{}
			for k := range s.Data {
				keys = append(keys, k)
			}
			for k := range s.StringData {
				keys = append(keys, k)
			}
			return keys
		}
	}
	return c.docs[name]
}

// proxyConfig finds the file --config names in the container's mounts and
// returns it parsed (loosely: deploy/deploy_test.go in the proxy's module
// validates it with the proxy's own loader).
func (c *checker) proxyConfig(pod *corev1.PodSpec, ct *corev1.Container) map[string]any {
	args := append(slices.Clone(ct.Command), ct.Args...)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		c.errorf("container %s: no --config FILE in its arguments", ct.Name)
		return nil
	}
	p := args[i+1]
	data, ok := c.fileContent(pod, ct, p)
	if !ok {
		c.errorf("container %s: --config %s is not a key of a mounted ConfigMap", ct.Name, p)
		return nil
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		c.errorf("config %s: %v", p, err)
		return nil
	}
	return cfg
}

// mountFor returns the mount that holds file p, and p's path below it.
func mountFor(ct *corev1.Container, p string) (*corev1.VolumeMount, string) {
	var best *corev1.VolumeMount
	for i := range ct.VolumeMounts {
		m := &ct.VolumeMounts[i]
		if strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/") && (best == nil || len(m.MountPath) > len(best.MountPath)) {
			best = m
		}
	}
	if best == nil {
		return nil, ""
	}
	return best, strings.TrimPrefix(p, strings.TrimSuffix(best.MountPath, "/")+"/")
}

func volume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// fileContent returns a file's content when a mounted ConfigMap of the
// manifests provides it.
func (c *checker) fileContent(pod *corev1.PodSpec, ct *corev1.Container, p string) (string, bool) {
	m, rel := mountFor(ct, p)
	if m == nil || m.SubPath != "" || m.SubPathExpr != "" {
		return "", false
	}
	v := volume(pod, m.Name)
	if v == nil || v.ConfigMap == nil {
		return "", false
	}
	cm := c.configMap(v.ConfigMap.Name)
	if cm == nil {
		return "", false
	}
	data, ok := cm.Data[rel]
	return data, ok
}

// probes: readiness on /readyz and liveness on /healthz, over HTTPS, at
// the admin listener's port (they answer without the token there).
func (c *checker) probes(ct *corev1.Container, cfg map[string]any) {
	adminPort := portOf(str(cfg, "admin", "listen"))
	if adminPort == 0 {
		c.errorf("config: admin.listen is not set: the probes need the admin listener")
		return
	}
	for _, p := range []struct {
		what  string
		probe *corev1.Probe
		path  string
	}{
		{"readinessProbe", ct.ReadinessProbe, "/readyz"},
		{"livenessProbe", ct.LivenessProbe, "/healthz"},
	} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			c.errorf("container %s: no %s with httpGet", ct.Name, p.what)
			continue
		}
		g := p.probe.HTTPGet
		if g.Path != p.path {
			c.errorf("container %s: %s path is %q, want %s", ct.Name, p.what, g.Path, p.path)
		}
		if g.Scheme != corev1.URISchemeHTTPS && str(cfg, "admin", "cert_file") != "" {
			c.errorf("container %s: %s scheme is %q, want HTTPS (the admin listener has a certificate)", ct.Name, p.what, g.Scheme)
		}
		if got := containerPort(ct, g.Port); got != adminPort {
			c.errorf("container %s: %s goes to port %d, but admin.listen is port %d", ct.Name, p.what, got, adminPort)
		}
	}
}

// grace: SIGKILL must not come before the drain and the final checkpoint.
func (c *checker) grace(pod *corev1.PodSpec, ct *corev1.Container, cfg map[string]any) {
	shutdown := defaultShutdownTimeout
	if s := str(cfg, "limits", "shutdown_timeout"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			c.errorf("config: limits.shutdown_timeout: %v", err)
			return
		}
		shutdown = d
	}
	var preStop time.Duration
	if ct.Lifecycle != nil && ct.Lifecycle.PreStop != nil {
		switch h := ct.Lifecycle.PreStop; {
		case h.Sleep != nil:
			preStop = time.Duration(h.Sleep.Seconds) * time.Second
		default:
			c.errorf("container %s: a preStop hook other than sleep has no bound this check knows", ct.Name)
		}
	}
	need := preStop + shutdown + CloseSignTimeout
	if pod.TerminationGracePeriodSeconds == nil {
		c.errorf("pod: terminationGracePeriodSeconds not set (default 30s); want more than %s", need)
		return
	}
	if got := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second; got <= need {
		c.errorf("pod: terminationGracePeriodSeconds %s must exceed preStop %s + limits.shutdown_timeout %s + final checkpoint %s", got, preStop, shutdown, CloseSignTimeout)
	}
}

// vault: Kubernetes auth with a projected service account token.
func (c *checker) vault(pod *corev1.PodSpec, ct *corev1.Container, cfg map[string]any) {
	if str(cfg, "keys", "provider") != "vault" {
		c.errorf("config: keys.provider must be vault")
		return
	}
	if m := str(cfg, "keys", "vault", "auth", "method"); m != "kubernetes" {
		c.errorf("config: keys.vault.auth.method is %q, want kubernetes", m)
		return
	}
	if str(cfg, "keys", "vault", "auth", "kubernetes_role") == "" {
		c.errorf("config: keys.vault.auth.kubernetes_role is not set")
	}
	jwt := str(cfg, "keys", "vault", "auth", "jwt_path")
	if jwt == "" {
		jwt = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	}
	m, rel := mountFor(ct, jwt)
	if m == nil {
		c.errorf("config: keys.vault.auth.jwt_path %s is not mounted", jwt)
		return
	}
	v := volume(pod, m.Name)
	if v == nil || v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool {
		return s.ServiceAccountToken != nil && s.ServiceAccountToken.Path == rel && s.ServiceAccountToken.Audience != ""
	}) {
		c.errorf("config: keys.vault.auth.jwt_path %s is not a projected service account token with an audience (volume %s)", jwt, m.Name)
	}
}

// files: every absolute path the configuration names is mounted, and a
// file from a Secret is one of its keys.
func (c *checker) files(pod *corev1.PodSpec, ct *corev1.Container, cfg map[string]any) {
	for _, kp := range pathValues(cfg, "") {
		key, p := kp[0], kp[1]
		m, rel := mountFor(ct, p)
		if m == nil {
			c.errorf("config: %s %s is on no volume of container %s (the root filesystem has no such file)", key, p, ct.Name)
			continue
		}
		v := volume(pod, m.Name)
		if v == nil {
			c.errorf("container %s: mount %s names no volume", ct.Name, m.Name)
			continue
		}
		switch {
		case v.Secret != nil:
			if keys := c.secretKeys(v.Secret.SecretName); keys != nil && !slices.Contains(keys, rel) {
				c.errorf("config: %s %s: Secret %s has no key %q (keys %v)", key, p, v.Secret.SecretName, rel, keys)
			}
		case v.ConfigMap != nil:
			if _, ok := c.fileContent(pod, ct, p); !ok {
				c.errorf("config: %s %s: ConfigMap %s has no key %q", key, p, v.ConfigMap.Name, rel)
			}
		}
	}
}

// auditVolumes: the log and its checkpoints are written, on two volumes,
// in a directory per pod.
func (c *checker) auditVolumes(pod *corev1.PodSpec, ct *corev1.Container, cfg map[string]any) {
	logPath := str(cfg, "audit", "path")
	if logPath == "" || logPath == "-" {
		return
	}
	ckpt := str(cfg, "audit", "checkpoint_path")
	if ckpt == "" {
		ckpt = logPath + ".checkpoints"
	}
	var vols []string
	for _, p := range []string{logPath, ckpt} {
		m, _ := mountFor(ct, p)
		if m == nil {
			continue // files reported it
		}
		vols = append(vols, m.Name)
		if m.ReadOnly {
			c.errorf("container %s: %s is on the read-only mount %s", ct.Name, p, m.MountPath)
		}
		if v := volume(pod, m.Name); v == nil || v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil {
			c.errorf("container %s: %s must be on an emptyDir, ephemeral or persistent volume", ct.Name, p)
		}
		if !podNameVar(ct, m.SubPathExpr) {
			c.errorf("container %s: mount %s needs subPathExpr with the pod's name, so replicas sharing a volume keep their chains apart", ct.Name, m.MountPath)
		}
	}
	if len(vols) == 2 && vols[0] == vols[1] {
		c.errorf("container %s: the audit log and its checkpoints share volume %s; one who can rewrite one could rewrite both", ct.Name, vols[0])
	}
}

// goMemLimit: GOMEMLIMIT, when set, lies below the memory limit, or the
// runtime would not collect harder before the container is killed.
func (c *checker) goMemLimit(ct *corev1.Container) {
	i := slices.IndexFunc(ct.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if i < 0 {
		return
	}
	n, ok := parseGoBytes(ct.Env[i].Value)
	if !ok {
		c.errorf("container %s: GOMEMLIMIT %q is not a byte count Go reads (e.g. 460MiB)", ct.Name, ct.Env[i].Value)
		return
	}
	limit, ok := ct.Resources.Limits[corev1.ResourceMemory]
	if ok && n >= limit.Value() {
		c.errorf("container %s: GOMEMLIMIT %s is not below the memory limit %s", ct.Name, ct.Env[i].Value, limit.String())
	}
}

// parseGoBytes parses a GOMEMLIMIT value: an integer with an optional
// B, KiB, MiB, GiB or TiB suffix.
func parseGoBytes(s string) (int64, bool) {
	mult := int64(1)
	for i, suf := range []string{"TiB", "GiB", "MiB", "KiB", "B"} {
		if strings.HasSuffix(s, suf) {
			s = strings.TrimSuffix(s, suf)
			mult = int64(1) << (10 * (4 - i))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return n * mult, true
}

// podNameVar reports whether expr uses an environment variable holding
// the pod's name.
func podNameVar(ct *corev1.Container, expr string) bool {
	for _, e := range ct.Env {
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name" &&
			strings.Contains(expr, "$("+e.Name+")") {
			return true
		}
	}
	return false
}

// pathValues returns every string of the configuration that is an
// absolute path, with its key.
func pathValues(v any, key string) [][2]string {
	var out [][2]string
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			sub := k
			if key != "" {
				sub = key + "." + k
			}
			out = append(out, pathValues(v[k], sub)...)
		}
	case string:
		if strings.HasPrefix(v, "/") {
			out = append(out, [2]string{key, v})
		}
	}
	return out
}

// str returns the string at a key path of the configuration, "" if none.
func str(cfg map[string]any, keys ...string) string {
	var v any = cfg
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}

// portOf returns the port of host:port, 0 if there is none.
func portOf(hostport string) int32 {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 {
		return 0
	}
	n, err := strconv.ParseInt(hostport[i+1:], 10, 32)
	if err != nil {
		return 0
	}
	return int32(n)
}

// containerPort resolves a port by number or by the container's name for
// it; 0 if the name is unknown.
func containerPort(ct *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range ct.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// errNone is Validate's answer for a directory without manifests, which
// would otherwise pass every check.
var errNone = errors.New("no manifests")

// Validate loads the manifests of dir and checks them against the Secrets
// the document at docsPath tells the operator to create.
func Validate(dir, docsPath string) []error {
	set, err := Load(dir)
	if err != nil {
		return []error{err}
	}
	if len(set.Deployments)+len(set.Services)+len(set.ConfigMaps) == 0 {
		return []error{errNone}
	}
	docs, err := os.ReadFile(docsPath)
	if err != nil {
		return []error{err}
	}
	return Check(set, ParseDocumented(string(bytes.TrimSpace(docs))))
}
