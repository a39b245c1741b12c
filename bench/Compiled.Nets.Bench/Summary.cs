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
        Console.WriteLine($"Measured FP32 FMA peak: {peak1:F0} GFLOPS (1 core), {peak2:F0} GFLOPS (2 threads)");
        // On this VM two FMA threads measured anywhere from 1.0× to 1.9× one (the vCPUs' scheduling varies), while the
        // GEMM itself reaches 1.7× one core's peak; "% peak" is therefore against twice the single-core figure, the
        // hardware's limit, so it can only understate.
        double limit = Math.Max(peak2, 2 * peak1);
        Console.WriteLine($"% peak below is of {limit:F0} GFLOPS (two cores at the single-core rate)");
        Console.WriteLine(Peak.Datapath());
        Console.WriteLine($"OpenBLAS: {(OpenBlas.Available ? OpenBlas.CoreName + " kernel" : "not installed (apt-get install libopenblas-dev)")}");
        Console.WriteLine($"{"GEMM (M×N×K, op)",-34} {"ours",8} {"% peak",7} {"libtorch",9} {"ratio",6} {"OpenBLAS",9} {"ratio",6}");
        // One pass per library: OpenBLAS's threads spin for a while after each call and libtorch keeps its own pool,
        // so interleaving them would slow whichever runs next.
        // Settle clocks, page mappings and the worker thread before the first timed shape (the first second after
        // start-up measured 20–40 % slow even with tiered compilation off).
        {
            var wa = Random(1024 * 1024); var wb = Random(1024 * 1024); var wc = new float[1024 * 1024];
            var w0 = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(w0).TotalSeconds < 2) Gemm.Sgemm(false, false, 1024, 1024, 1024, 1f, wa, 1024, wb, 1024, 0f, wc, 1024);
        }
        var shapes = Shapes().ToArray();
        var ours = new double[shapes.Length]; var torchGf = new double[shapes.Length]; var blas = new double[shapes.Length];
        for (int pass = 0; pass < 3; pass++)
            for (int i = 0; i < shapes.Length; i++)
            {
                var (m, n, k, ta, tb, _) = shapes[i];
                double flops = 2.0 * m * n * k;
                if (pass == 1) { torchGf[i] = flops / LibTorch.Mm(m, n, k, ta, tb) / 1e9; continue; }
                var a = Random(m * k); var b = Random(k * n); var c = new float[m * n];
                if (pass == 0) ours[i] = flops / Median(() => Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n)) / 1e9;
                else if (OpenBlas.Available) blas[i] = flops / Median(() => OpenBlas.Sgemm(ta, tb, m, n, k, a, b, c)) / 1e9;
            }
        for (int i = 0; i < shapes.Length; i++)
        {
            string ob = OpenBlas.Available ? $"{blas[i],9:F1} {ours[i] / blas[i],5:F2}×" : "      n/a       ";
            Console.WriteLine($"{shapes[i].Item6,-34} {ours[i],8:F1} {100 * ours[i] / limit,6:F1}% {torchGf[i],9:F1} {ours[i] / torchGf[i],5:F2}× {ob}");
        }
        return 0;
    }

    internal static IEnumerable<(int, int, int, bool, bool, string)> Shapes()
    {
        foreach (int s in new[] { 256, 512, 1024, 2048 }) yield return (s, s, s, false, false, $"{s}³");
        yield return (128, 16384, 576, false, false, "conv2 im2col 128×16384×576");
        yield return (64, 65536, 27, false, false, "conv1 im2col 64×65536×27");
        yield return (64, 512, 6272, false, true, "fc1 b64 64×512×6272 (ABᵀ)");
        yield return (2048, 2304, 768, false, true, "BERT qkv 2048×2304×768");
        yield return (2048, 3072, 768, false, true, "BERT ffn1 2048×3072×768");
        yield return (2048, 768, 3072, false, true, "BERT ffn2 2048×768×3072");
        // The ConvNet's backward GEMMs: weight gradients dW = dY·colᵀ, input gradient dcol = Wᵀ·dY.
        yield return (128, 576, 16384, false, true, "conv2 dW 128×576×16384 (ABᵀ)");
        yield return (576, 16384, 128, true, false, "conv2 dX 576×16384×128 (AᵀB)");
        yield return (64, 27, 65536, false, true, "conv1 dW 64×27×65536 (ABᵀ)");
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
        // Warm up for at least 3 runs and 0.2 s so JIT tiers and caches settle before timing.
        long w0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < 3 || Stopwatch.GetElapsedTime(w0).TotalSeconds < 0.2; i++) run();
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
    /// <summary>
    /// The CPU model and its 512-bit FMA rate over its 256-bit one on one core. Zen 5 (family 26) executes 512-bit FMAs
    /// at full width (ratio ≈ 2): there AVX2 code such as libtorch's MKL kernels reaches only half the peak. Zen 4
    /// (family 25) splits them into two 256-bit halves (ratio ≈ 1): there AVX2 code reaches the same peak, which bounds
    /// how far any AVX-512 GEMM can lead an AVX2 one (see the README).
    /// </summary>
    public static int Report()
    {
        double one = Measure(threads: 1), two = Measure(threads: 2);
        Console.WriteLine($"Measured FP32 FMA peak: {one:F0} GFLOPS (1 core), {two:F0} GFLOPS (2 threads)");
        Console.WriteLine(Datapath());
        return 0;
    }

    public static string Datapath()
    {
        double wide = 0, narrow = 0;
        for (int rep = 0; rep < 3; rep++)
        {
            long t0 = Stopwatch.GetTimestamp(); Chains(20_000_000);
            wide = Math.Max(wide, 20e6 * 12 * 32 / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9);
            t0 = Stopwatch.GetTimestamp(); Chains256(20_000_000);
            narrow = Math.Max(narrow, 20e6 * 12 * 16 / Stopwatch.GetElapsedTime(t0).TotalSeconds / 1e9);
        }
        if (!Vector512.IsHardwareAccelerated)
            return $"CPU: {CpuModel()}; one core: {narrow:F0} GFLOPS with 256-bit FMAs (512-bit vectors are off for the JIT: DOTNET_EnableAVX512=0 or no AVX-512)";
        return $"CPU: {CpuModel()}; one core: {wide:F0} GFLOPS with 512-bit FMAs, {narrow:F0} with 256-bit " +
               $"({wide / narrow:F2}×: {(wide / narrow > 1.5 ? "full-width 512-bit FMA units" : "512-bit FMAs run as two 256-bit halves, so AVX2 code can reach the same peak")})";
    }

    private static string CpuModel()
    {
        try
        {
            string? name = null, family = null, model = null;
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
            {
                var (key, value) = (line.Split(':', 2)[0].Trim(), line.Contains(':') ? line.Split(':', 2)[1].Trim() : "");
                if (key == "model name") name ??= value;
                else if (key == "cpu family") family ??= value;
                else if (key == "model") model ??= value;
                if (name != null && family != null && model != null) break;
            }
            return $"{name} (family {family}, model {model})";
        }
        catch (IOException) { return System.Runtime.InteropServices.RuntimeInformation.OSDescription; }
    }

    private static float Chains256(long iters)
    {
        var x = Vector256.Create(1.0001f); var y = Vector256.Create(0.9999f);
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default, c8 = default, c9 = default, c10 = default, c11 = default;
        for (long i = 0; i < iters; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(x, y, c0); c1 = Vector256.FusedMultiplyAdd(x, y, c1);
            c2 = Vector256.FusedMultiplyAdd(x, y, c2); c3 = Vector256.FusedMultiplyAdd(x, y, c3);
            c4 = Vector256.FusedMultiplyAdd(x, y, c4); c5 = Vector256.FusedMultiplyAdd(x, y, c5);
            c6 = Vector256.FusedMultiplyAdd(x, y, c6); c7 = Vector256.FusedMultiplyAdd(x, y, c7);
            c8 = Vector256.FusedMultiplyAdd(x, y, c8); c9 = Vector256.FusedMultiplyAdd(x, y, c9);
            c10 = Vector256.FusedMultiplyAdd(x, y, c10); c11 = Vector256.FusedMultiplyAdd(x, y, c11);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).GetElement(0);
    }

    public static double Measure(int threads)
    {
        // Best of 5 (this VM's vCPUs are sometimes descheduled); threads start together at a barrier so thread
        // creation is not timed, and the wall time covers both.
        const long iters = 40_000_000;
        double best = 0;
        for (int rep = 0; rep < 5; rep++)
        {
            using var barrier = new Barrier(threads + 1);
            // The widest vectors the JIT uses (with DOTNET_EnableAVX512=0 a 512-bit loop would be emulated in halves).
            bool wide = Vector512.IsHardwareAccelerated;
            var ts = Enumerable.Range(0, threads).Select(_ => new Thread(() => { barrier.SignalAndWait(); if (wide) Chains(iters); else Chains256(iters); })).ToArray();
            foreach (var t in ts) t.Start();
            barrier.SignalAndWait();
            long t0 = Stopwatch.GetTimestamp();
            foreach (var t in ts) t.Join();
            double sec = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Max(best, threads * iters * 12.0 * (wide ? 16 : 8) * 2 / sec / 1e9);
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
