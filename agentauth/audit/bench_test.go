package audit

import (
	"context"
	"runtime"
	"testing"
)

// BenchmarkAppendConcurrent measures durable appends from 64 goroutines,
// each record committed with an fsync shared by its batch.
func BenchmarkAppendConcurrent(b *testing.B) {
	l := openTest(b)
	rec := decisionRecord(1)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkAppendSerial measures one caller appending alone: every
// record waits for its own fsync.
func BenchmarkAppendSerial(b *testing.B) {
	l := openTest(b)
	rec := decisionRecord(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
