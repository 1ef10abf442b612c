package deploy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/pgpseudo/pgpseudo/config"
	"github.com/pgpseudo/pgpseudo/policy"
)

// The manifests that carry the proxy's files, relative to this package.
const (
	configMapFile  = "kubernetes/configmap.yaml"
	deploymentFile = "kubernetes/deployment.yaml"
)

// manifest is the part of a ConfigMap or Deployment this test reads;
// the validate module decodes them strictly and in full.
type manifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name         string   `yaml:"name"`
					Args         []string `yaml:"args"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					ConfigMap *struct {
						Name string `yaml:"name"`
					} `yaml:"configMap"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readManifest(t *testing.T, file, kind string) manifest {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if m.Kind != kind {
		t.Fatalf("%s: want kind %s, got %q", file, kind, m.Kind)
	}
	return m
}

// shipped is the ConfigMap's files as the pod sees them: the path of the
// configuration (the proxy's --config) and every file by its path in the
// container.
type shipped struct {
	configPath string
	files      map[string]string
}

// loadShipped reads where the Deployment mounts the ConfigMap and which
// file its proxy container is started with.
func loadShipped(t *testing.T) shipped {
	t.Helper()
	cm := readManifest(t, configMapFile, "ConfigMap")
	dep := readManifest(t, deploymentFile, "Deployment")
	pod := dep.Spec.Template.Spec
	var volume string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name {
			volume = v.Name
		}
	}
	if volume == "" {
		t.Fatalf("%s mounts no ConfigMap %s", deploymentFile, cm.Metadata.Name)
	}
	for _, c := range pod.Containers {
		if c.Name != "pgpseudo" {
			continue
		}
		s := shipped{files: map[string]string{}}
		for i, a := range c.Args {
			if a == "--config" && i+1 < len(c.Args) {
				s.configPath = c.Args[i+1]
			}
		}
		for _, m := range c.VolumeMounts {
			if m.Name == volume {
				for key, data := range cm.Data {
					s.files[filepath.Join(m.MountPath, key)] = data
				}
			}
		}
		if _, ok := s.files[s.configPath]; !ok {
			t.Fatalf("the proxy's --config %q is not a file of ConfigMap %s as mounted", s.configPath, cm.Metadata.Name)
		}
		return s
	}
	t.Fatalf("%s has no container pgpseudo", deploymentFile)
	return shipped{}
}

// validate loads the shipped configuration and its policy with the proxy's
// loaders, in a directory standing for the container's filesystem: the
// configuration's absolute paths are moved below root, the ConfigMap's
// files are written there, and every other file it names (Secrets,
// the Vault token) is created empty, as config.Load checks only that they
// exist. It returns the first error.
func validate(root string, s shipped) error {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(s.files[s.configPath]), &doc); err != nil {
		return err
	}
	var err error
	rebase(&doc, func(p string) {
		if err != nil {
			return
		}
		file := filepath.Join(root, p)
		if err = os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return
		}
		data, ok := s.files[p]
		if !ok {
			// Only created when absent: the audit paths name files the
			// proxy creates, in a directory that must exist.
			if _, statErr := os.Stat(file); statErr == nil {
				return
			}
		}
		err = os.WriteFile(file, []byte(data), 0o600)
	}, root)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	cfg, err := config.Parse(s.configPath, data)
	if err != nil {
		return err
	}
	if cfg.Policy == "" {
		return errors.New("the configuration names no policy")
	}
	if _, ok := s.files[strings.TrimPrefix(cfg.Policy, root)]; !ok {
		return fmt.Errorf("policy %s is not a file of the ConfigMap", strings.TrimPrefix(cfg.Policy, root))
	}
	_, err = policy.Load(cfg.Policy)
	return err
}

// rebase prefixes every absolute path among the scalars of n with root,
// calling seen with the path before.
func rebase(n *yaml.Node, seen func(string), root string) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && strings.HasPrefix(n.Value, "/") {
		seen(n.Value)
		n.Value = filepath.Join(root, n.Value)
	}
	for _, c := range n.Content {
		rebase(c, seen, root)
	}
}

// TestShippedConfig: the configuration and policy of the ConfigMap load
// with the proxy's own loaders, and the same check catches them broken.
func TestShippedConfig(t *testing.T) {
	edit := func(name, old, new string) func(*testing.T, shipped) {
		return func(t *testing.T, s shipped) {
			t.Helper()
			for p, data := range s.files {
				if filepath.Base(p) == name {
					if !strings.Contains(data, old) {
						t.Fatalf("%s has no %q", name, old)
					}
					s.files[p] = strings.Replace(data, old, new, 1)
					return
				}
			}
			t.Fatalf("no file %s in the ConfigMap", name)
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*testing.T, shipped)
		want string // "" for the shipped files
	}{
		{"shipped", func(*testing.T, shipped) {}, ""},
		{"misspelt key", edit("config.yaml", "shutdown_timeout:", "shutdown_timout:"), "limits.shutdown_timout: unknown key"},
		{"kubernetes auth without a role", edit("config.yaml", "kubernetes_role: pgpseudo", "kubernetes_role: \"\""), "kubernetes_role is required"},
		{"admin listener without a token", edit("config.yaml", "token_file: /run/pgpseudo/admin/token", "token_file: \"\""), "admin.token_file"},
		{"audit without a signer", edit("config.yaml", "signing_transit_key: pgpseudo-audit", "signing_transit_key: \"\""), "audit.signing_key_file"},
		{"policy not in the ConfigMap", edit("config.yaml", "policy: /etc/pgpseudo/config/policy.yaml", "policy: /etc/pgpseudo/tls/policy.yaml"), "is not a file of the ConfigMap"},
		{"policy with an unknown transform", edit("policy.yaml", "transform: token", "transform: tokenise"), "tokenise"},
		{"policy special category let out", edit("policy.yaml", "special: block", "special: allow"), "special"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := loadShipped(t)
			tc.edit(t, s)
			err := validate(t.TempDir(), s)
			if err != nil {
				t.Log(err)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("the shipped configuration does not load: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}
