using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Compiled.Nets.Kernels;
using Compiled.Nets.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using TTensor = TorchSharp.torch.Tensor;

namespace Compiled.Nets.Bench;

/// <summary>GEMM, ours against libtorch's torch.mm, in one BenchmarkDotNet run (ratios in the Ratio column).</summary>
[MemoryDiagnoser]
public class GemmBenchmarks
{
    [Params(256, 1024, 2048)] public int Size;
    private float[] _a = [], _b = [], _c = [];
    private TTensor? _ta, _tb;

    [GlobalSetup]
    public void Setup()
    {
        _a = Summary.Random(Size * Size); _b = Summary.Random(Size * Size); _c = new float[Size * Size];
        LibTorch.Init();
        _ta = torch.rand(Size, Size); _tb = torch.rand(Size, Size);
    }

    [Benchmark(Baseline = true)]
    public void LibTorchMm() { using var s = torch.NewDisposeScope(); torch.mm(_ta!, _tb!); }

    [Benchmark]
    public void CompiledNetsSgemm() => Gemm.Sgemm(false, false, Size, Size, Size, 1f, _a, Size, _b, Size, 0f, _c, Size);
}

/// <summary>The seed ConvNet's training step (batch 64, AdamW), ours against the same model in TorchSharp.</summary>
[MemoryDiagnoser]
public class ConvNetStepBenchmarks
{
    private ConvNetCompiled? _net;
    private AdamW? _opt;
    private float[] _x = [], _logits = [];
    private int[] _labels = [];
    private TorchConvNet? _module;
    private torch.optim.Optimizer? _topt;
    private TTensor? _tx, _ty;

    [GlobalSetup]
    public void Setup()
    {
        _net = new ConvNetCompiled(1);
        _opt = new AdamW(_net.Parameters);
        _x = Summary.Random(64 * 784); _labels = Enumerable.Range(0, 64).Select(i => i % 10).ToArray(); _logits = new float[640];
        LibTorch.Init();
        _module = new TorchConvNet();
        _topt = torch.optim.AdamW(_module.parameters(), 1e-3);
        _tx = torch.tensor(_x, [64, 1, 28, 28]);
        _ty = torch.tensor(_labels.Select(l => (long)l).ToArray());
    }

    [Benchmark(Baseline = true)]
    public void LibTorchStep()
    {
        using var s = torch.NewDisposeScope();
        _topt!.zero_grad();
        F.cross_entropy(_module!.forward(_tx!), _ty!).backward();
        _topt.step();
    }

    [Benchmark]
    public void CompiledNetsStep()
    {
        _net!.TrainStep(_x, _labels, 64, _logits);
        _opt!.Step();
    }
}

public static class Bdn
{
    public static int Run(string[] args)
    {
        BenchmarkSwitcher.FromTypes([typeof(GemmBenchmarks), typeof(ConvNetStepBenchmarks)]).Run(args);
        return 0;
    }
}
