using Compiled.Nets;
using Compiled.Nets.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Compiled.Nets.Bench;

/// <summary>A MobileNet-style block: a depthwise 3×3 convolution (groups = channels) and a pointwise 1×1 one over
/// 64 channels of 28×28, MSE on the output.</summary>
[Network(MaxBatch = 32), Input(64, 28, 28), MSELoss]
public partial class DepthwiseBlockCompiled
{
    [Conv2d(64, 64, 3, padding: 1, Groups = 64)] public partial Conv2d Depthwise { get; }
    [Conv2d(64, 64, 1)] public partial Conv2d Pointwise { get; }
    Tensor Forward(Tensor x) => x.Apply(Depthwise).Relu().Apply(Pointwise);
}

/// <summary>`-- depthwise`: the block's training step and inference at batch 32 ours vs libtorch (nn.Conv2d with
/// groups), the same weights, alternating rounds; then the depthwise layer alone (our kernel against libtorch's
/// grouped conv2d), forward, and forward with backward.</summary>
public static class DepthwiseBench
{
    public static int Run()
    {
        const int B = 32, C = 64, H = 28;
        var x = Summary.Random(B * C * H * H); var target = Summary.Random(B * C * H * H);
        LibTorch.Init();
        using var net = new DepthwiseBlockCompiled(1);
        var opt = new AdamW(net.Parameters, 1e-3f);
        var output = new float[B * C * H * H];
        var dw = nn.Conv2d(C, C, 3, padding: 1, groups: C);
        var pw = nn.Conv2d(C, C, 1);
        var module = nn.Sequential(("depthwise", dw), ("relu", nn.ReLU()), ("pointwise", pw));
        using (torch.no_grad())
            foreach (var (name, p) in module.named_parameters())
                p.copy_(torch.tensor(net.Parameters.Value(net.Parameters[name]).ToArray(), p.shape));
        var topt = torch.optim.AdamW(module.parameters(), 1e-3);
        using var tx = torch.tensor(x, [B, C, H, H]); using var ty = torch.tensor(target, [B, C, H, H]);
        void OurStep() { net.TrainStep(x, target, B); opt.Step(); }
        void OurInference() => net.Forward(x, B, output);
        void TorchStep() { using var s = torch.NewDisposeScope(); topt.zero_grad(); F.mse_loss(module.call(tx), ty).backward(); topt.step(); }
        void TorchInference() { using var g = torch.no_grad(); using var s = torch.NewDisposeScope(); module.call(tx); }
        var w0 = System.Diagnostics.Stopwatch.GetTimestamp();
        while (System.Diagnostics.Stopwatch.GetElapsedTime(w0).TotalSeconds < 3) { OurStep(); TorchStep(); }
        var steps = new Rounds(); var infs = new Rounds();
        for (int r = 0; r < 3; r++)
        {
            steps.Add(Summary.Median(OurStep, 5), Summary.Median(TorchStep, 5));
            infs.Add(Summary.Median(OurInference, 5), Summary.Median(TorchInference, 5));
        }
        // The depthwise layer alone: our kernel and libtorch's grouped conv2d.
        var g = new Compiled.Nets.Kernels.Conv2dGeometry(B, 1, H, H, 1, 3, 3, 1, 1, 1, 1);
        var scratch = new float[Compiled.Nets.Kernels.Conv2dKernels.GroupedScratchSize(g, C)];
        var wd = net.Parameters.Value(net.Parameters["depthwise.weight"]).ToArray(); var bd = net.Parameters.Value(net.Parameters["depthwise.bias"]).ToArray();
        var dy = Summary.Random(B * C * H * H); var dx = new float[x.Length]; var dwg = new float[wd.Length];
        void OurLayer() => Compiled.Nets.Kernels.Conv2dKernels.ForwardGrouped(output, x, wd, bd, g, C, scratch);
        void OurLayerBoth() { OurLayer(); Compiled.Nets.Kernels.Conv2dKernels.BackwardGrouped(dx, dwg, dy, x, wd, g, C, scratch, accumulateDx: false); }
        void TorchLayer() { using var gr = torch.no_grad(); using var s = torch.NewDisposeScope(); dw.call(tx); }
        using var txg = torch.tensor(x, [B, C, H, H]).requires_grad_(true); using var tdy = torch.tensor(dy, [B, C, H, H]);
        void TorchLayerBoth() { using var s = torch.NewDisposeScope(); dw.zero_grad(); txg.grad?.zero_(); dw.call(txg).backward([tdy]); }
        var layer = new Rounds(); var layerBoth = new Rounds();
        for (int r = 0; r < 3; r++) { layer.Add(Summary.Median(OurLayer, 9), Summary.Median(TorchLayer, 9)); layerBoth.Add(Summary.Median(OurLayerBoth, 9), Summary.Median(TorchLayerBoth, 9)); }
        Console.WriteLine($"depthwise 3×3 + pointwise 1×1 block, {C}×{H}×{H}, batch {B} (median ms of 3 alternating rounds)   {"ours",8} {"libtorch",9} {"speed-up",9}  (rounds' range)");
        Console.WriteLine($"  training step (fwd, MSE, bwd, AdamW)  {steps}");
        Console.WriteLine($"  inference                             {infs}");
        Console.WriteLine($"  the depthwise layer alone, forward    {layer.ToString("F2")}");
        Console.WriteLine($"  forward and backward (dx, dw)         {layerBoth.ToString("F2")}");
        return 0;
    }
}
