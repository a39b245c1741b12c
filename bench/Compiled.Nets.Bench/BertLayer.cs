using System.Diagnostics;
using Compiled.Nets;
using Compiled.Nets.Interop;
using Compiled.Nets.Training;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using TTensor = TorchSharp.torch.Tensor;

namespace Compiled.Nets.Bench;

/// <summary>One bert-base encoder layer (HF BertLayer, dropout off so both sides compute the same thing) over [T, 768]
/// with an MSE loss, so a training step is forward + backward + AdamW of exactly the layer.</summary>
[Network(MaxBatch = 16), Input(Dim.Sequence, 768, MaxSequence = 128), MSELoss]
public partial class BertLayerCompiled
{
    [SelfAttention(768, heads: 12), StateName("attention.self")] public partial SelfAttention Attention { get; }
    [Linear(768, 768), StateName("attention.output.dense")] public partial Linear AttentionOut { get; }
    [LayerNorm(768, eps: 1e-12), StateName("attention.output.LayerNorm")] public partial LayerNorm AttentionNorm { get; }
    [Linear(768, 3072), StateName("intermediate.dense")] public partial Linear Intermediate { get; }
    [Linear(3072, 768), StateName("output.dense")] public partial Linear Output { get; }
    [LayerNorm(768, eps: 1e-12), StateName("output.LayerNorm")] public partial LayerNorm OutputNorm { get; }

    Tensor Forward(Tensor x)
    {
        var a = (x.Apply(Attention).Apply(AttentionOut) + x).Apply(AttentionNorm);
        return (a.Apply(Intermediate).Gelu().Apply(Output) + a).Apply(OutputNorm);
    }
}

/// <summary>The same layer in TorchSharp, with the same state-dict names.</summary>
public sealed class TorchBertLayer : nn.Module<TTensor, TTensor, TTensor>
{
    private readonly TorchSharp.Modules.Linear query = nn.Linear(768, 768), key = nn.Linear(768, 768), value = nn.Linear(768, 768);
    private readonly TorchSharp.Modules.Linear attn_out = nn.Linear(768, 768), up = nn.Linear(768, 3072), down = nn.Linear(3072, 768);
    private readonly TorchSharp.Modules.LayerNorm norm1 = nn.LayerNorm(768, 1e-12), norm2 = nn.LayerNorm(768, 1e-12);

    public TorchBertLayer() : base(nameof(TorchBertLayer)) => RegisterComponents();

    public override TTensor forward(TTensor x, TTensor extendedMask)
    {
        long b = x.shape[0], t = x.shape[1];
        TTensor Heads(TorchSharp.Modules.Linear l) => l.forward(x).view(b, t, 12, 64).transpose(1, 2);
        var scores = torch.matmul(Heads(query), Heads(key).transpose(-1, -2)) / 8.0 + extendedMask;
        var ctx = torch.matmul(F.softmax(scores, -1), Heads(value)).transpose(1, 2).reshape(b, t, 768);
        var a = norm1.forward(attn_out.forward(ctx) + x);
        return norm2.forward(down.forward(F.gelu(up.forward(a))) + a);
    }

    /// <summary>Our parameter names for this module's tensors.</summary>
    public static readonly Dictionary<string, string> Names = new()
    {
        ["query"] = "attention.self.query", ["key"] = "attention.self.key", ["value"] = "attention.self.value",
        ["attn_out"] = "attention.output.dense", ["norm1"] = "attention.output.LayerNorm",
        ["up"] = "intermediate.dense", ["down"] = "output.dense", ["norm2"] = "output.LayerNorm",
    };
}

/// <summary>`-- bert`: one bert-base layer's training step (batch 16 × 128 tokens, padded batch) ours vs libtorch.</summary>
public static class BertLayerBench
{
    public static int Run()
    {
        const int B = 16, T = 128, E = 768;
        using var net = new BertLayerCompiled(1);
        var x = Summary.Random(B * T * E); var target = Summary.Random(B * T * E);
        var mask = new int[B * T];
        for (int b = 0; b < B; b++) for (int t = 0; t < T - 4 * b; t++) mask[b * T + t] = 1; // right padding, as a tokenizer makes it
        var opt = new AdamW(net.Parameters, 2e-5f);
        var output = new float[B * T * E];

        LibTorch.Init();
        using var module = new TorchBertLayer();
        using (torch.no_grad())
            foreach (var (name, p) in module.named_parameters())
            {
                var dot = name.IndexOf('.');
                string ours2 = TorchBertLayer.Names[name[..dot]] + name[dot..];
                p.copy_(torch.tensor(net.Parameters.Value(net.Parameters[ours2]).ToArray(), p.shape));
            }
        var topt = torch.optim.AdamW(module.parameters(), 2e-5);
        using var tx = torch.tensor(x, [B, T, E]); using var ty = torch.tensor(target, [B, T, E]);
        using var ext = (1 - torch.tensor(mask.Select(v => (float)v).ToArray(), [B, 1, 1, T])) * float.MinValue;
        void OurStep() { net.TrainStep(x, target, mask, B, T); opt.Step(); }
        void OurInference() => net.Forward(x, mask, B, T, output);
        void TorchStep() { using var s = torch.NewDisposeScope(); topt.zero_grad(); F.mse_loss(module.forward(tx, ext), ty).backward(); topt.step(); }
        void TorchInference() { using var g = torch.no_grad(); using var s = torch.NewDisposeScope(); module.forward(tx, ext); }
        // Both warm up, then three rounds alternate ours and libtorch (the VM's speed drifts within minutes).
        var w0 = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(w0).TotalSeconds < 3) { OurStep(); TorchStep(); }
        var steps = new Rounds(); var infs = new Rounds();
        for (int r = 0; r < 3; r++)
        {
            steps.Add(Summary.Median(OurStep, 5), Summary.Median(TorchStep, 5));
            infs.Add(Summary.Median(OurInference, 5), Summary.Median(TorchInference, 5));
        }
        double flops = 3 * (2.0 * B * T * E * (4 * E + 2 * 3072) + 4.0 * B * T * T * E); // forward ×3 for a training step
        Console.WriteLine($"bert-base layer, batch {B}×{T} (median ms of 3 alternating rounds)   {"ours",8} {"libtorch",9} {"speed-up",9}  (rounds' range)");
        Console.WriteLine($"  training step (fwd, MSE, bwd, AdamW)  {steps}   ({flops / steps.Ours / 1e9:F0} vs {flops / steps.Torch / 1e9:F0} GFLOPS)");
        Console.WriteLine($"  inference                             {infs}");
        return 0;
    }
}
