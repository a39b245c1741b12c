using System.Diagnostics;
using System.Runtime.Intrinsics;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Bench;

/// <summary>A quick, self-timed summary (median of several runs after warm-up).</summary>
public static class Summary
{
    public static int Run(string[] args)
    {
        Console.WriteLine($"Vector512 accelerated: {Vector512.IsHardwareAccelerated}, cores: {Environment.ProcessorCount}");
        double peak1 = Peak.Measure(threads: 1), peak2 = Peak.Measure(threads: 2);
        Console.WriteLine($"Measured FP32 FMA peak: {peak1:F0} GFLOPS (1 core), {peak2:F0} GFLOPS (2 cores)");
        Console.WriteLine($"{"GEMM (M×N×K, op)",-34} {"ours",8} {"% peak",7} {"libtorch",9} {"ratio",6}");
        foreach (var (m, n, k, ta, tb, label) in Shapes())
        {
            var a = Random(m * k); var b = Random(k * n); var c = new float[m * n];
            int lda = ta ? m : k, ldb = tb ? k : n;
            double sec = Median(() => Gemm.Sgemm(ta, tb, m, n, k, 1f, a, lda, b, ldb, 0f, c, n));
            double gf = 2.0 * m * n * k / sec / 1e9;
            double tgf = 2.0 * m * n * k / LibTorch.Mm(m, n, k, tb) / 1e9;
            Console.WriteLine($"{label,-34} {gf,8:F1} {100 * gf / peak2,6:F1}% {tgf,9:F1} {gf / tgf,5:F2}×");
        }
        return 0;
    }

    private static IEnumerable<(int, int, int, bool, bool, string)> Shapes()
    {
        foreach (int s in new[] { 256, 512, 1024, 2048 }) yield return (s, s, s, false, false, $"{s}³");
        yield return (128, 16384, 576, false, false, "conv2 im2col 128×16384×576");
        yield return (64, 65536, 27, false, false, "conv1 im2col 64×65536×27");
        yield return (64, 512, 6272, false, true, "fc1 b64 64×512×6272 (ABᵀ)");
        yield return (2048, 2304, 768, false, true, "BERT qkv 2048×2304×768");
        yield return (2048, 3072, 768, false, true, "BERT ffn1 2048×3072×768");
        yield return (2048, 768, 3072, false, true, "BERT ffn2 2048×768×3072");
    }

    internal static float[] Random(int n)
    {
        var r = new Rng(1);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = r.NextFloat() - 0.5f;
        return x;
    }

    internal static double Median(Action run, int reps = 7)
    {
        run();
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(t0).TotalSeconds;
        }
        Array.Sort(times);
        return times[reps / 2];
    }
}

/// <summary>Peak FP32 rate: independent FMA chains on Vector512 registers, one per thread.</summary>
public static class Peak
{
    public static double Measure(int threads)
    {
        const long iters = 20_000_000;
        double best = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var ts = Enumerable.Range(0, threads).Select(_ => new Thread(() => Chains(iters))).ToArray();
            foreach (var t in ts) t.Start();
            foreach (var t in ts) t.Join();
            double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Max(best, threads * iters * 12.0 * 16 * 2 / sec / 1e9);
        }
        return best;
    }

    private static float Chains(long iters)
    {
        var x = Vector512.Create(1.0001f); var y = Vector512.Create(0.9999f);
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(x, y, c0); c1 = Vector512.FusedMultiplyAdd(x, y, c1);
            c2 = Vector512.FusedMultiplyAdd(x, y, c2); c3 = Vector512.FusedMultiplyAdd(x, y, c3);
            c4 = Vector512.FusedMultiplyAdd(x, y, c4); c5 = Vector512.FusedMultiplyAdd(x, y, c5);
            c6 = Vector512.FusedMultiplyAdd(x, y, c6); c7 = Vector512.FusedMultiplyAdd(x, y, c7);
            c8 = Vector512.FusedMultiplyAdd(x, y, c8); c9 = Vector512.FusedMultiplyAdd(x, y, c9);
            c10 = Vector512.FusedMultiplyAdd(x, y, c10); c11 = Vector512.FusedMultiplyAdd(x, y, c11);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).GetElement(0);
    }
}
