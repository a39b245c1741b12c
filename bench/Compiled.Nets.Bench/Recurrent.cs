using Compiled.Nets;
using Compiled.Nets.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Compiled.Nets.Bench;

/// <summary>A bidirectional LSTM over [T, 64] (64 per direction) with an MSE loss on its output: a training step is
/// forward, backward through time and AdamW of exactly the layer.</summary>
[Network(MaxBatch = 16), Input(Dim.Sequence, 64, MaxSequence = 128), MSELoss]
public partial class LstmLayerCompiled
{
    [LSTM(64, 64, bidirectional: true)] public partial LSTM Rnn { get; }
    Tensor Forward(Tensor x) => x.Apply(Rnn);
}

/// <summary>The same with a GRU.</summary>
[Network(MaxBatch = 16), Input(Dim.Sequence, 64, MaxSequence = 128), MSELoss]
public partial class GruLayerCompiled
{
    [GRU(64, 64, bidirectional: true)] public partial GRU Rnn { get; }
    Tensor Forward(Tensor x) => x.Apply(Rnn);
}

/// <summary>`-- recurrent`: a bidirectional LSTM and GRU layer's training step and inference (batch 16 × 128 positions,
/// no padding) ours vs libtorch's nn.LSTM / nn.GRU (batch_first), the same weights, alternating rounds.</summary>
public static class RecurrentBench
{
    public static int Run()
    {
        const int B = 16, T = 128, I = 64, H = 64;
        var x = Summary.Random(B * T * I); var target = Summary.Random(B * T * 2 * H);
        LibTorch.Init();
        Console.WriteLine($"bidirectional recurrent layer {I}→2×{H}, batch {B}×{T} (median ms of 3 alternating rounds)   {"ours",8} {"libtorch",9} {"speed-up",9}  (rounds' range)");
        foreach (bool lstm in new[] { true, false })
        {
            var lstmNet = lstm ? new LstmLayerCompiled(1) : null;
            var gruNet = lstm ? null : new GruLayerCompiled(1);
            INetwork net = (INetwork?)lstmNet ?? gruNet!;
            var opt = new AdamW(net.Parameters, 1e-3f);
            var output = new float[B * T * 2 * H];
            nn.Module module = lstm ? nn.LSTM(I, H, batchFirst: true, bidirectional: true) : nn.GRU(I, H, batchFirst: true, bidirectional: true);
            using (torch.no_grad())
                foreach (var (name, p) in module.named_parameters())
                    p.copy_(torch.tensor(net.Parameters.Value(net.Parameters["rnn." + name]).ToArray(), p.shape));
            var topt = torch.optim.AdamW(module.parameters(), 1e-3);
            using var tx = torch.tensor(x, [B, T, I]); using var ty = torch.tensor(target, [B, T, 2 * H]);
            torch.Tensor Run(torch.Tensor input) => module is TorchSharp.Modules.LSTM l ? l.call(input, null).Item1 : ((TorchSharp.Modules.GRU)module).call(input, null).Item1;
            void OurStep()
            {
                if (lstmNet is not null) lstmNet.TrainStep(x, target, default, B, T); else gruNet!.TrainStep(x, target, default, B, T);
                opt.Step();
            }
            void OurInference() { if (lstmNet is not null) lstmNet.Forward(x, default, B, T, output); else gruNet!.Forward(x, default, B, T, output); }
            void TorchStep() { using var s = torch.NewDisposeScope(); topt.zero_grad(); F.mse_loss(Run(tx), ty).backward(); topt.step(); }
            void TorchInference() { using var g = torch.no_grad(); using var s = torch.NewDisposeScope(); Run(tx); }
            var w0 = System.Diagnostics.Stopwatch.GetTimestamp();
            while (System.Diagnostics.Stopwatch.GetElapsedTime(w0).TotalSeconds < 3) { OurStep(); TorchStep(); }
            var steps = new Rounds(); var infs = new Rounds();
            for (int r = 0; r < 3; r++)
            {
                steps.Add(Summary.Median(OurStep, 5), Summary.Median(TorchStep, 5));
                infs.Add(Summary.Median(OurInference, 5), Summary.Median(TorchInference, 5));
            }
            string kind = lstm ? "LSTM" : "GRU ";
            Console.WriteLine($"  {kind} training step (fwd, MSE, BPTT, AdamW)  {steps}");
            Console.WriteLine($"  {kind} inference                          {infs}");
            ((IDisposable)net).Dispose();
            module.Dispose();
        }
        return 0;
    }
}
