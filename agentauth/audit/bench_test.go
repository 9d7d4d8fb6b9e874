package audit

import (
	"context"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkAppendConcurrent measures durable appends from 64 goroutines,
// each record committed with an fsync shared by its batch.
func BenchmarkAppendConcurrent(b *testing.B) {
	b.Run("fsync", func(b *testing.B) { benchmarkAppendConcurrent(b, openTest(b)) })
	b.Run("no-fsync", func(b *testing.B) { benchmarkAppendConcurrent(b, openTest(b, WithFsync(false))) })
}

func benchmarkAppendConcurrent(b *testing.B, l *Log) {
	rec := decisionRecord(1)
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	start := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
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

// processCPU returns the user and system CPU time of the process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
