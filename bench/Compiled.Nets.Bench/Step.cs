using Compiled.Nets.Kernels;
using Compiled.Nets.Training;

namespace Compiled.Nets.Bench;

/// <summary>Times the ConvNet's training step, inference, and each heavy kernel at its real shapes.</summary>
public static class Step
{
    public static int Run()
    {
        const int B = 64;
        using var net = new ConvNetCompiled(1);
        var x = Summary.Random(B * 784); var labels = Enumerable.Range(0, B).Select(i => i % 10).ToArray();
        var logits = new float[B * 10];
        var opt = new AdamW(net.Parameters);
        // Steady state, as in training: the first seconds after start-up run measurably slower (clock ramp-up, page
        // faults of fresh workspaces), so settle for 2 s before timing.
        var w0 = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(w0).TotalSeconds < 2) { net.TrainStep(x, labels, B, logits); opt.Step(); net.Forward(x, B, logits); }
        double step = Summary.Median(() => { net.TrainStep(x, labels, B, logits); opt.Step(); });
        double trainOnly = Summary.Median(() => net.TrainStep(x, labels, B, logits));
        double optOnly = Summary.Median(() => opt.Step());
        double zero = Summary.Median(() => net.Parameters.ZeroGradients());
        Console.WriteLine($"  of which TrainStep {trainOnly * 1e3:F1} ms, AdamW.Step {optOnly * 1e3:F1} ms, zeroing gradients {zero * 1e3:F1} ms");
        double inf64 = Summary.Median(() => net.Forward(x, B, logits));
        double inf1 = Summary.Median(() => net.Forward(x.AsSpan(0, 784), 1, logits.AsSpan(0, 10)), 51);
        var (tStep, tInf64, tInf1) = LibTorch.ConvNet(net, x, labels);
        Console.WriteLine($"ConvNet 1×28×28 (median ms)   {"ours",8} {"libtorch",9} {"speed-up",9}");
        Console.WriteLine($"  train step, batch 64, AdamW {step * 1e3,8:F1} {tStep * 1e3,9:F1} {tStep / step,8:F2}×");
        Console.WriteLine($"  inference, batch 64         {inf64 * 1e3,8:F1} {tInf64 * 1e3,9:F1} {tInf64 / inf64,8:F2}×");
        Console.WriteLine($"  inference, batch 1          {inf1 * 1e3,8:F2} {tInf1 * 1e3,9:F2} {tInf1 / inf1,8:F2}×");

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
            double f = Summary.Median(() => PoolingKernels.MaxPool2dForward(y, arg, xin, pg));
            double b = Summary.Median(() => PoolingKernels.MaxPool2dBackward(dx, y, arg, pg));
            Console.WriteLine($"maxpool {c}×{h}×{h}: forward {f * 1e3:F2} ms, backward {b * 1e3:F2} ms");
        }
        {
            var xin = Summary.Random(B * 6272); var w = Summary.Random(512 * 6272); var y = new float[B * 512];
            var dx = new float[xin.Length]; var dw = new float[w.Length];
            double f = Summary.Median(() => LinearKernels.Forward(y, xin, w, B, 6272, 512));
            double b = Summary.Median(() => LinearKernels.Backward(dx, dw, y, xin, w, B, 6272, 512));
            Console.WriteLine($"fc1: forward {f * 1e3:F2} ms, backward {b * 1e3:F2} ms");
        }
        return 0;
    }
}
