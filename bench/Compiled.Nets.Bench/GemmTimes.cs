using System.Diagnostics;
using Compiled.Nets.Kernels;

namespace Compiled.Nets.Bench;

/// <summary>
/// Quick GEMM timings without the peak measurement or libtorch: `gemm [ours|blas|both] [passes]` times every summary
/// shape; `gemm one M N K ta tb secs` times one shape (ours, then OpenBLAS) for about secs seconds each.
/// </summary>
public static class GemmTimes
{
    public static int Run(string[] args)
    {
        if (args.Length > 0 && args[0] == "one") return One(args[1..]);
        string who = args.Length > 0 ? args[0] : "both";
        int passes = args.Length > 1 ? int.Parse(args[1]) : 1;
        Warm();
        var shapes = Summary.Shapes().ToArray();
        Console.WriteLine($"{"GEMM (M×N×K, op)",-34} {"ours",8} {"OpenBLAS",9} {"ratio",6}");
        for (int pass = 0; pass < passes; pass++)
            foreach (var (m, n, k, ta, tb, name) in shapes)
            {
                var a = Summary.Random(m * k); var b = Summary.Random(k * n); var c = new float[m * n];
                double flops = 2.0 * m * n * k, ours = double.NaN, blas = double.NaN;
                if (who != "blas") ours = flops / Summary.Median(() => Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n)) / 1e9;
                if (who != "ours" && OpenBlas.Available) blas = flops / Summary.Median(() => OpenBlas.Sgemm(ta, tb, m, n, k, a, b, c)) / 1e9;
                Console.WriteLine($"{name,-34} {ours,8:F1} {blas,9:F1} {ours / blas,5:F2}×");
            }
        return 0;
    }

    private static int One(string[] args)
    {
        int m = int.Parse(args[0]), n = int.Parse(args[1]), k = int.Parse(args[2]);
        bool ta = args[3] is "1" or "t" or "true", tb = args[4] is "1" or "t" or "true";
        double secs = args.Length > 5 ? double.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture) : 1;
        Warm();
        var a = Summary.Random(m * k); var b = Summary.Random(k * n); var c = new float[m * n];
        double flops = 2.0 * m * n * k;
        // Alternating rounds (this VM is shared and its speed drifts): the best and the median round of each library.
        var ours = new List<double>(); var blas = new List<double>();
        for (int round = 0; round < 5; round++)
        {
            ours.Add(flops / Timed(() => Gemm.Sgemm(ta, tb, m, n, k, 1f, a, ta ? m : k, b, tb ? k : n, 0f, c, n), secs / 5) / 1e9);
            if (!OpenBlas.Available) continue;
            blas.Add(flops / Timed(() => OpenBlas.Sgemm(ta, tb, m, n, k, a, b, c), secs / 5) / 1e9);
            Thread.Sleep(50); // let OpenBLAS's spinning threads go to sleep before ours runs
        }
        ours.Sort(); blas.Sort();
        double ob = blas.Count > 0 ? blas[^1] : double.NaN, om = blas.Count > 0 ? blas[blas.Count / 2] : double.NaN;
        Console.WriteLine($"{m}×{n}×{k} ta={ta} tb={tb}: ours best {ours[^1]:F1} median {ours[ours.Count / 2]:F1} GFLOPS, " +
            $"OpenBLAS best {ob:F1} median {om:F1}, ratio of bests {ours[^1] / ob:F2}×");
        return 0;
    }

    // Median of as many runs as fit in secs (after a short warm-up).
    private static double Timed(Action run, double secs)
    {
        for (int i = 0; i < 3; i++) run();
        var times = new List<double>();
        long start = Stopwatch.GetTimestamp();
        while (times.Count < 5 || Stopwatch.GetElapsedTime(start).TotalSeconds < secs)
        {
            long t0 = Stopwatch.GetTimestamp();
            run();
            times.Add(Stopwatch.GetElapsedTime(t0).TotalSeconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    private static void Warm()
    {
        var wa = Summary.Random(1024 * 1024); var wb = Summary.Random(1024 * 1024); var wc = new float[1024 * 1024];
        var w0 = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(w0).TotalSeconds < 1) Gemm.Sgemm(false, false, 1024, 1024, 1024, 1f, wa, 1024, wb, 1024, 0f, wc, 1024);
    }
}
