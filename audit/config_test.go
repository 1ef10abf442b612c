package audit

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestConfigDefaultsAndYAML(t *testing.T) {
	var c Config
	src := "path: /var/log/pgpseudo/audit.jsonl\nfsync: always\nrotate_size: 64MiB\nrotate_interval: 1h\ncheckpoint_interval: 30s\n"
	if err := yaml.Unmarshal([]byte(src), &c); err != nil {
		t.Fatal(err)
	}
	c = c.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	want := Config{Path: "/var/log/pgpseudo/audit.jsonl", OnFailure: OnFailureRefuse, Fsync: FsyncAlways,
		FsyncInterval: DefaultFsyncInterval, RotateSize: 64 << 20, RotateInterval: time.Hour, CheckpointInterval: 30 * time.Second,
		CheckpointPath: "/var/log/pgpseudo/audit.jsonl.checkpoints"}
	if c != want {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if err := yaml.Unmarshal([]byte("rotate_size: lots\n"), &c); err == nil || !strings.Contains(err.Error(), "invalid size") {
		t.Fatalf("bad size: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		keys []string
	}{
		{"no path", Config{}, []string{"audit.path"}},
		{"bad on_failure", Config{Path: "a", OnFailure: "ignore"}, []string{"audit.on_failure"}},
		{"bad fsync", Config{Path: "a", Fsync: "sometimes"}, []string{"audit.fsync"}},
		{"interval without period", Config{Path: "a", Fsync: FsyncInterval, FsyncInterval: -1}, []string{"audit.fsync_interval"}},
		{"tiny rotate", Config{Path: "a", RotateSize: 10, RotateInterval: time.Millisecond}, []string{"audit.rotate_size", "audit.rotate_interval"}},
		{"checkpoint path", Config{Path: "a", CheckpointPath: "./a", CheckpointInterval: time.Nanosecond}, []string{"audit.checkpoint_interval", "audit.checkpoint_path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.WithDefaults().Validate()
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("got %v", err)
			}
			var keys []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var ce *ConfigError
				if !errors.As(e, &ce) {
					t.Fatalf("%v is not a ConfigError", e)
				}
				if !strings.HasPrefix(ce.Error(), ce.Key+": ") {
					t.Fatalf("message %q does not name %s", ce.Error(), ce.Key)
				}
				keys = append(keys, ce.Key)
			}
			if strings.Join(keys, ",") != strings.Join(tt.keys, ",") {
				t.Fatalf("keys %v, want %v", keys, tt.keys)
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{"4096": 4096, "64MiB": 64 << 20, "1GiB": 1 << 30, "500MB": 500e6, "8 KiB": 8192, "10B": 10} {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("%q: %d, %v", in, got, err)
		}
	}
	if ByteSize(64<<20).String() != "64MiB" {
		t.Error(ByteSize(64 << 20).String())
	}
}
