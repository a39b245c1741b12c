using Compiled.Nets.Kernels;
using Compiled.Nets.Training;

namespace Compiled.Nets.Bench;

/// <summary>Times the ConvNet's training step, inference, and each heavy kernel at its real shapes.</summary>
public static class Step
{
    public static int Run(string[] args)
    {
        if (args.Length == 4 && args[1] == "memory") return PeakMemory.Child(args[2], int.Parse(args[3]));
        Variant(new ConvNetCompiled(1), 1, 28);
        Variant(new CifarConvNetCompiled(1), 3, 32);
        Kernels();
        return 0;
    }

    /// <summary>Training step, inference at batch 64 and 1, allocations and peak memory for one input shape.</summary>
    private static void Variant<TNet>(TNet net, int channels, int size) where TNet : IClassifier, IDisposable
    {
        const int B = 64;
        int sample = channels * size * size;
        var x = Summary.Random(B * sample); var labels = Enumerable.Range(0, B).Select(i => i % 10).ToArray();
        var logits = new float[B * 10];
        var opt = new AdamW(net.Parameters);
        // Every thread's allocations (the worker's too), over 20 steps after warm-up.
        for (int i = 0; i < 5; i++) { net.TrainStep(x, labels, B, logits); opt.Step(); net.Forward(x, B, logits); }
        long a0 = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < 20; i++) { net.TrainStep(x, labels, B, logits); opt.Step(); net.Forward(x, B, logits); }
        double allocPerStep = (GC.GetTotalAllocatedBytes(precise: true) - a0) / 20.0;
        using var torchNet = new LibTorch.ConvNetRun(net, channels, size, x, labels);
        // Steady state, as in training: the first seconds after start-up run measurably slower (clock ramp-up, page
        // faults of fresh workspaces), so both sides settle for 2 s. Then rounds alternate ours and libtorch, so a drift
        // of this VM's speed (it moves by ±30 % within minutes) hits both alike; the speed-up is the median of the rounds'.
        var w0 = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(w0).TotalSeconds < 2) { net.TrainStep(x, labels, B, logits); opt.Step(); torchNet.Step(); }
        var step = new Rounds(); var inf64 = new Rounds(); var inf1 = new Rounds(); var inf1Bf16 = new Rounds();
        double trainOnly = 0, optOnly = 0;
        for (int r = 0; r < RoundCount; r++)
        {
            step.Add(Summary.Median(() => { net.TrainStep(x, labels, B, logits); opt.Step(); }), Summary.Median(torchNet.Step));
            inf64.Add(Summary.Median(() => net.Forward(x, B, logits)), Summary.Median(torchNet.Inference64));
            // Batch 1 takes well under a millisecond, so its rounds are short and the VM's drift shows in single
            // rounds: three sub-rounds per round.
            for (int sub = 0; sub < 3; sub++)
            {
                double torch1 = Summary.Median(torchNet.Inference1, 51);
                inf1.Add(Summary.Median(() => net.Forward(x.AsSpan(0, sample), 1, logits.AsSpan(0, 10)), 51), torch1);
                // Serving with a read-only store whose Linear weights are read as bfloat16 (libtorch's figure: float32).
                net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
                inf1Bf16.Add(Summary.Median(() => net.Forward(x.AsSpan(0, sample), 1, logits.AsSpan(0, 10)), 51), torch1);
                net.Parameters.MakeWritable();
            }
            if (r == 0) { trainOnly = Summary.Median(() => net.TrainStep(x, labels, B, logits)); optOnly = Summary.Median(() => opt.Step()); }
        }
        var (ourPeak, torchPeak) = (PeakMemory.Measure("ours", size), PeakMemory.Measure("torch", size));
        Console.WriteLine($"ConvNet {channels}×{size}×{size} (median ms of {RoundCount} alternating rounds, batch 1: {3 * RoundCount})   {"ours",8} {"libtorch",9} {"speed-up",9}  (rounds' range)");
        Console.WriteLine($"  train step, batch 64, AdamW {step}   (TrainStep {trainOnly * 1e3:F1} + AdamW {optOnly * 1e3:F1})");
        Console.WriteLine($"  inference, batch 64         {inf64}");
        Console.WriteLine($"  inference, batch 1          {inf1.ToString("F2")}");
        Console.WriteLine($"  batch 1, bf16 Linear weights {inf1Bf16.ToString("F2")}   (read-only store; libtorch float32)");
        Console.WriteLine($"  peak memory of training, MiB {ourPeak,7:F0} {torchPeak,9:F0} {torchPeak / ourPeak,8:F2}×   (resident-set high-water mark above the process's start)");
        Console.WriteLine($"  managed allocations per step: {allocPerStep:F0} bytes (train step + AdamW + inference)");
        net.Dispose();
    }

    private const int RoundCount = 5;

    /// <summary>
    /// `-- serve`: batch-1 latency when requests arrive after idle time (none, 1 ms, 10 ms): after an idle spell the
    /// caches are cold and threads asleep, which back-to-back timing never shows. Each side runs blocks of requests on
    /// its own, 300 ms apart (libtorch's OpenMP threads spin on after a call and would take the cores from ours), in
    /// three alternating rounds; ours also with read-only bfloat16 Linear weights.
    /// </summary>
    public static int Serve()
    {
        using var net = new ConvNetCompiled(1);
        var x = Summary.Random(64 * 784); var labels = Enumerable.Range(0, 64).Select(i => i % 10).ToArray();
        var y = new float[10];
        using var torchNet = new LibTorch.ConvNetRun(net, 1, 28, x, labels);
        for (int i = 0; i < 500; i++) { net.Forward(x.AsSpan(0, 784), 1, y); torchNet.Inference1(); }
        Console.WriteLine("Batch-1 requests after idle time: median (90th percentile) µs over three rounds of blocks");
        Console.WriteLine($"  {"idle",8} {"ours f32",16} {"ours bf16",16} {"libtorch f32",16} {"f32 ratio",10} {"bf16 ratio",10}");
        foreach (int gapMs in new[] { 0, 1, 10 })
        {
            var f32 = new List<double>(); var bf16 = new List<double>(); var theirs = new List<double>();
            int n = gapMs == 0 ? 400 : gapMs == 1 ? 150 : 40;
            for (int round = 0; round < 3; round++)
            {
                Block(f32, () => net.Forward(x.AsSpan(0, 784), 1, y));
                net.Parameters.MakeReadOnly(WeightPrecision.BFloat16);
                Block(bf16, () => net.Forward(x.AsSpan(0, 784), 1, y));
                net.Parameters.MakeWritable();
                Block(theirs, torchNet.Inference1);
            }
            string Cell(List<double> v) { v.Sort(); return $"{P(v, 0.5),6:F0} ({P(v, 0.9),6:F0})"; }
            Console.WriteLine($"  {gapMs + " ms",8} {Cell(f32),16} {Cell(bf16),16} {Cell(theirs),16} {P(theirs, 0.5) / P(f32, 0.5),9:F2}× {P(theirs, 0.5) / P(bf16, 0.5),9:F2}×");

            void Block(List<double> times, Action request)
            {
                Thread.Sleep(300);
                request(); // the block's first request also pays for the 300 ms pause: not counted
                for (int i = 0; i < n; i++)
                {
                    if (gapMs > 0) Thread.Sleep(gapMs);
                    long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
                    request();
                    times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMicroseconds);
                }
            }
        }
        return 0;

        static double P(List<double> v, double q) => v[(int)(q * (v.Count - 1))];
    }

    private static void Kernels()
    {
        const int B = 64;
        var g1 = new Conv2dGeometry(B, 1, 28, 28, 64, 3, 3, 1, 1, 1, 1, 1, 1);
        var g2 = new Conv2dGeometry(B, 64, 14, 14, 128, 3, 3, 1, 1, 1, 1, 1, 1);
        foreach (var (name, g) in new[] { ("conv1", g1), ("conv2", g2) })
        {
            var xin = Summary.Random(B * g.InSize); var w = Summary.Random(g.WeightSize); var y = new float[B * g.OutSize];
            var scratch = new float[Conv2dKernels.ScratchSize(g)];
            var dx = new float[xin.Length]; var dw = new float[w.Length];
            double f = Summary.Median(() => Conv2dKernels.Forward(y, xin, w, g, scratch));
            double bw = Summary.Median(() => Conv2dKernels.Backward(default, dw, y, xin, w, g, scratch));
            double bx = Summary.Median(() => Conv2dKernels.Backward(dx, default, y, xin, w, g, scratch));
            double flops = 2.0 * B * g.OutSize * g.InChannels * 9;
            Console.WriteLine($"{name}: forward {f * 1e3:F2} ms ({flops / f / 1e9:F0} GFLOPS), dW {bw * 1e3:F2} ms ({flops / bw / 1e9:F0}), dX {bx * 1e3:F2} ms ({flops / bx / 1e9:F0})");
        }
        foreach (var (c, h) in new[] { (64, 28), (128, 14) })
        {
            var pg = new Pool2dGeometry(B, c, h, h, 2, 2, 2, 2);
            var xin = Summary.Random(B * pg.InSize); var y = new float[B * pg.OutSize]; var arg = new int[y.Length]; var dx = new float[xin.Length];
            // As the generated training step runs them: fused with the following ReLU, the gradient overwriting dx.
            double f = Summary.Median(() => PoolingKernels.MaxPool2dForward(y, arg, xin, pg, relu: true));
            var dy = Summary.Random(y.Length);
            double b = Summary.Median(() => PoolingKernels.MaxPool2dBackward(dx, dy, arg, pg, accumulate: false, reluOutput: y));
            Console.WriteLine($"maxpool {c}×{h}×{h}: forward {f * 1e3:F2} ms, backward {b * 1e3:F2} ms");
        }
        {
            var xin = Summary.Random(B * 6272); var w = Summary.Random(512 * 6272); var y = new float[B * 512];
            var dx = new float[xin.Length]; var dw = new float[w.Length];
            double f = Summary.Median(() => LinearKernels.Forward(y, xin, w, B, 6272, 512));
            double b = Summary.Median(() => LinearKernels.Backward(dx, dw, y, xin, w, B, 6272, 512));
            Console.WriteLine($"fc1: forward {f * 1e3:F2} ms, backward {b * 1e3:F2} ms");
        }
    }
}

/// <summary>
/// Peak resident memory of 30 training steps (batch 64) plus inference, for ours and for libtorch, each in a child
/// process of its own so neither's allocator caches count against the other: Linux's VmHWM after the steps minus
/// VmHWM before the network was built (the runtimes themselves, and libtorch's libraries, are not counted).
/// </summary>
public static class PeakMemory
{
    public static double Measure(string which, int size)
    {
        string self = Environment.ProcessPath!;
        var psi = new System.Diagnostics.ProcessStartInfo(self) { RedirectStandardOutput = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet") psi.ArgumentList.Add(typeof(PeakMemory).Assembly.Location);
        foreach (var a in new[] { "step", "memory", which, size.ToString() }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return double.TryParse(output.Trim(), System.Globalization.CultureInfo.InvariantCulture, out var mib) ? mib : double.NaN;
    }

    public static int Child(string which, int size)
    {
        const int B = 64;
        int channels = size == 28 ? 1 : 3, sample = channels * size * size;
        var x = Summary.Random(B * sample); var labels = Enumerable.Range(0, B).Select(i => i % 10).ToArray();
        var logits = new float[B * 10];
        if (which == "torch")
        {
            LibTorch.Init();
            using (var warm = TorchSharp.torch.ones(4)) { }
            long before = HighWaterKiB();
            LibTorch.Steps(channels, size, x, labels, 30);
            Console.WriteLine(((HighWaterKiB() - before) / 1024.0).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        else
        {
            long before = HighWaterKiB();
            IClassifier net = size == 28 ? new ConvNetCompiled(1) : new CifarConvNetCompiled(1);
            var opt = new AdamW(net.Parameters);
            for (int i = 0; i < 30; i++) { net.TrainStep(x, labels, B, logits); opt.Step(); }
            net.Forward(x, B, logits);
            Console.WriteLine(((HighWaterKiB() - before) / 1024.0).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return 0;
    }

    private static long HighWaterKiB()
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim());
        return 0;
    }
}

/// <summary>Per-round medians of ours and libtorch (rounds alternate the two, so the VM's drift hits both alike);
/// reported as medians and the median of the rounds' ratios with their range.</summary>
internal sealed class Rounds
{
    private readonly List<(double Ours, double Torch)> _r = [];
    public void Add(double ours, double torch) => _r.Add((ours, torch));
    public double Ours => Median(_r.Select(t => t.Ours));
    public double Torch => Median(_r.Select(t => t.Torch));
    public double SpeedUp => Median(_r.Select(t => t.Torch / t.Ours));
    private static double Median(IEnumerable<double> v) { var a = v.OrderBy(t => t).ToArray(); return a[a.Length / 2]; }
    public override string ToString() => ToString("F1");
    public string ToString(string f)
    {
        var ratios = _r.Select(t => t.Torch / t.Ours).ToArray();
        return $"{(Ours * 1e3).ToString(f),8} {(Torch * 1e3).ToString(f),9} {SpeedUp,8:F2}×  ({ratios.Min():F2}–{ratios.Max():F2}×)";
    }
}
