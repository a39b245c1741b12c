using Compiled.Nets.Interop;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using TTensor = TorchSharp.torch.Tensor;

namespace Compiled.Nets.Bench;

/// <summary>The seed ConvNet in TorchSharp (libtorch, float32, 2 threads), for side-by-side timings.</summary>
public sealed class TorchConvNet : nn.Module<TTensor, TTensor>
{
    private readonly TorchSharp.Modules.Conv2d conv1;
    private readonly TorchSharp.Modules.Conv2d conv2 = nn.Conv2d(64, 128, 3, padding: 1);
    private readonly TorchSharp.Modules.Linear fc1;
    private readonly TorchSharp.Modules.Linear fc2 = nn.Linear(512, 10);

    /// <param name="channels">Input channels (1 for Fashion-MNIST, 3 for CIFAR-10).</param>
    /// <param name="size">Input height and width (28 or 32).</param>
    public TorchConvNet(int channels = 1, int size = 28) : base(nameof(TorchConvNet))
    {
        conv1 = nn.Conv2d(channels, 64, 3, padding: 1);
        fc1 = nn.Linear(128 * (size / 4) * (size / 4), 512);
        RegisterComponents();
    }

    public override TTensor forward(TTensor x)
    {
        var h = F.relu(F.max_pool2d(conv1.forward(x), 2));
        h = F.relu(F.max_pool2d(conv2.forward(h), 2));
        return fc2.forward(F.relu(fc1.forward(h.flatten(1))));
    }
}

public static class LibTorch
{
    public static void Init() => torch.set_num_threads(2);

    /// <summary>
    /// The ConvNet in libtorch with our initial weights, as three timed actions (training step with AdamW, inference at
    /// batch 64 and 1), so the caller can alternate them with ours. Dispose to free the module and tensors.
    /// </summary>
    public sealed class ConvNetRun : IDisposable
    {
        private readonly TorchConvNet _module;
        private readonly torch.optim.Optimizer _opt;
        private readonly TTensor _x, _y, _x1;

        public ConvNetRun(INetwork ours, int channels, int size, float[] x, int[] labels)
        {
            Init();
            _module = new TorchConvNet(channels, size);
            TorchStateDict.CopyTo(ours.Parameters, _module);
            _opt = torch.optim.AdamW(_module.parameters(), 1e-3);
            _x = torch.tensor(x, [64, channels, size, size]);
            _y = torch.tensor(labels.Select(l => (long)l).ToArray());
            _x1 = _x.slice(0, 0, 1, 1);
        }

        public void Step()
        {
            using var scope = torch.NewDisposeScope();
            _opt.zero_grad();
            F.cross_entropy(_module.forward(_x), _y).backward();
            _opt.step();
        }

        public void Inference64() { using var g = torch.no_grad(); using var s = torch.NewDisposeScope(); _module.forward(_x); }
        public void Inference1() { using var g = torch.no_grad(); using var s = torch.NewDisposeScope(); _module.forward(_x1); }

        public void Dispose() { _x1.Dispose(); _x.Dispose(); _y.Dispose(); _module.Dispose(); }
    }

    /// <summary>Runs <paramref name="steps"/> training steps and one batch of inference (for the memory figure).</summary>
    public static void Steps(int channels, int size, float[] x, int[] labels, int steps)
    {
        using var module = new TorchConvNet(channels, size);
        var opt = torch.optim.AdamW(module.parameters(), 1e-3);
        using var tx = torch.tensor(x, [x.Length / (channels * size * size), channels, size, size]);
        using var ty = torch.tensor(labels.Select(l => (long)l).ToArray());
        for (int i = 0; i < steps; i++)
        {
            using var scope = torch.NewDisposeScope();
            opt.zero_grad();
            F.cross_entropy(module.forward(tx), ty).backward();
            opt.step();
        }
        using (torch.no_grad())
        using (torch.NewDisposeScope()) module.forward(tx);
    }

    /// <summary>Median seconds of torch.mm for an M×K by K×N (or N×K transposed) product.</summary>
    public static double Mm(int m, int n, int k, bool transB) => Mm(m, n, k, false, transB);

    /// <summary>Median seconds of torch.mm with either operand a transposed view (as the backward pass uses them).</summary>
    public static double Mm(int m, int n, int k, bool transA, bool transB)
    {
        Init();
        using var a0 = transA ? torch.rand(k, m) : torch.rand(m, k);
        using var a = transA ? a0.t() : a0;
        using var b = transB ? torch.rand(n, k) : torch.rand(k, n);
        using var bt = transB ? b.t() : b;
        return Summary.Median(() => { using var s = torch.NewDisposeScope(); torch.mm(a, bt); });
    }
}
