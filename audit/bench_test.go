package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func BenchmarkWrite(b *testing.B) {
	for _, fsync := range []string{FsyncNever, FsyncInterval, FsyncAlways} {
		b.Run("fsync="+fsync, func(b *testing.B) {
			cfg := testConfig(b.TempDir())
			cfg.Fsync, cfg.FsyncInterval = fsync, 10*time.Millisecond
			w := newTestWriter(b, cfg, seams{now: time.Now})
			ev := stmt(1)
			b.ReportAllocs()
			b.SetParallelism(4) // concurrent sessions share fsyncs
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := w.Write(context.Background(), &ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			b.StopTimer()
			w.Close()
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	const n = 50000
	cfg := testConfig(b.TempDir())
	w := newTestWriter(b, cfg, seams{now: time.Now})
	for i := range n {
		s := stmt(i)
		if err := w.Write(context.Background(), &s); err != nil {
			b.Fatal(err)
		}
	}
	w.Close()
	files, _ := filepath.Glob(filepath.Join(filepath.Dir(cfg.Path), "*.jsonl"))
	b.ReportAllocs()
	b.ResetTimer()
	var records uint64
	for b.Loop() {
		res, err := Verify(context.Background(), testKeys, files, VerifyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		records += res.Records
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}
