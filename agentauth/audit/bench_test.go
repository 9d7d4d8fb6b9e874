package audit

import (
	"context"
	"math"
	"runtime"
	"slices"
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

// BenchmarkAppendLatency appends records one at a time, as the gateway
// does under a single caller, and reports percentiles of single Append
// calls. Batches then hold one record, so every Append pays a whole
// commit and any checkpoint that runs inside it. A stall that hits fewer
// than 1% of appends shows in p99.9 and max, not in p99.
func BenchmarkAppendLatency(b *testing.B) {
	b.Run("sync=normal", func(b *testing.B) { benchmarkAppendLatency(b, openTest(b, WithFsync(false))) })
	b.Run("sync=full", func(b *testing.B) { benchmarkAppendLatency(b, openTest(b)) })
}

func benchmarkAppendLatency(b *testing.B, l *Log) {
	rec := decisionRecord(1)
	ctx := context.Background()
	times := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := l.Append(ctx, rec); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	b.ReportMetric(float64(percentile(times, 0.50).Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(percentile(times, 0.99).Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(percentile(times, 0.999).Nanoseconds()), "p99.9-ns")
	b.ReportMetric(float64(times[len(times)-1].Nanoseconds()), "max-ns")
}

// percentile returns the q-quantile of sorted, by the nearest-rank method.
func percentile(sorted []time.Duration, q float64) time.Duration {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
