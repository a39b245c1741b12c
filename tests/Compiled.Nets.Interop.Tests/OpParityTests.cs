using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;
using CTensor = Compiled.Nets.Tensor;
using TTensor = TorchSharp.torch.Tensor;

namespace Compiled.Nets.Interop.Tests;

/// <summary>
/// Every op the generator supports against libtorch autograd: the same inputs and weights, loss = MSE(y, target) on
/// both sides, then outputs, input gradients and parameter gradients compared. Our side runs the eager path, which
/// calls the same kernels as the generated code (the generated code is checked against the eager path elsewhere).
/// </summary>
public class OpParityTests
{
    internal static float[] Random(int n, ulong seed, float scale = 1f)
    {
        var r = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextFloat() * 2 - 1) * scale).ToArray();
    }

    // The oracle runs in float64: libtorch's float32 convolution backward on this machine (Zen 5, where it reports
    // "NNPACK unsupported hardware") returned run-to-run different input gradients, occasionally NaN, while its float64
    // path is deterministic. Converting also copies the managed array, so libtorch never aliases GC memory.
    internal static TTensor T(float[] data, int[] shape, bool grad = true) =>
        torch.tensor(data, shape.Select(d => (long)d).ToArray()).to(ScalarType.Float64).requires_grad_(grad);

    internal static float[] Data(TTensor t) => t.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    internal static void Close(float[] expected, float[] actual, string what, float tol = 2e-4f)
    {
        Assert.Equal(expected.Length, actual.Length);
        float scale = expected.Select(MathF.Abs).DefaultIfEmpty(0).Max() + 1e-3f;
        for (int i = 0; i < expected.Length; i++)
            Assert.True(MathF.Abs(expected[i] - actual[i]) <= tol * scale, $"{what}[{i}]: torch {expected[i]} vs ours {actual[i]}");
    }

    /// <summary>Runs both sides and compares y, dx and each parameter's gradient.</summary>
    private static void Compare(int[] xShape, Func<CTensor, CTensor> ours, Func<TTensor, TTensor> theirs, ParameterStore? store = null,
        Dictionary<string, TTensor>? torchParams = null, ulong seed = 1, float tol = 2e-4f, float inputScale = 1f)
    {
        var x = Random(xShape.Aggregate(1, (a, b) => a * b), seed, inputScale);
        var cx = new CTensor((float[])x.Clone(), xShape);
        CTensor y;
        using (Eager.Training()) y = ours(cx);
        var target = Random(y.Length, seed + 100);
        store?.ZeroGradients();
        using (Eager.Training()) y.Mse(new CTensor(target, y.Shape)).Backward();

        var tx = T(x, xShape);
        var ty = theirs(tx);
        F.mse_loss(ty, T(target, ty.shape.Select(d => (int)d).ToArray(), false)).backward();

        Close(Data(ty), y.Data, "y", tol);
        Close(Data(tx.grad!), cx.Grad ?? new float[x.Length], "dx", tol);
        if (store is not null && torchParams is not null)
            foreach (var (name, tp) in torchParams)
                Close(Data(tp.grad!), store.Gradient(store[name]).ToArray(), name, tol);
    }

    private static (ParameterStore Store, Dictionary<string, TTensor> Torch) Params(params (string Name, int[] Shape, ParameterRole Role)[] ps)
    {
        var b = new ParameterStoreBuilder();
        foreach (var (n, s, r) in ps) b.Add(n, s, r, ParameterInit.Uniform(0.5f));
        var store = b.Build();
        store.Initialize(3);
        var dict = ps.ToDictionary(p => p.Name, p => T(store.Value(store[p.Name]).ToArray(), p.Shape));
        return (store, dict);
    }

    [Theory]
    [InlineData(2, 3, 7, 6, 4, 3, 1, 1, 1, true)]
    [InlineData(1, 2, 9, 8, 3, 3, 2, 2, 2, false)]
    [InlineData(3, 1, 5, 5, 2, 1, 1, 0, 1, true)]
    // Winograd F(2×2, 3×3) shapes (≥ 16 channels each side, ≥ 256 output tiles): padding 1 and 0, odd sizes.
    [InlineData(11, 16, 9, 13, 17, 3, 1, 1, 1, true)]
    [InlineData(11, 16, 12, 12, 16, 3, 1, 0, 1, false)]
    public void Conv2d(int b, int c, int h, int w, int o, int k, int s, int p, int d, bool bias)
    {
        var ps = new List<(string, int[], ParameterRole)> { ("conv.weight", [o, c, k, k], ParameterRole.Weight) };
        if (bias) ps.Add(("conv.bias", [o], ParameterRole.Bias));
        var (store, tp) = Params(ps.ToArray());
        var layer = new Compiled.Nets.Conv2d(store, "conv", c, o, k, s, p, d, bias);
        Compare([b, c, h, w], x => layer.Forward(x),
            x => F.conv2d(x, tp["conv.weight"], bias ? tp["conv.bias"] : null, strides: [s, s], padding: [p, p], dilation: [d, d]), store, tp);
    }

    [Theory]
    [InlineData(1, 7, 5)]
    [InlineData(4, 17, 9)]
    public void Linear(int n, int i, int o)
    {
        var (store, tp) = Params(("fc.weight", [o, i], ParameterRole.Weight), ("fc.bias", [o], ParameterRole.Bias));
        var layer = new Compiled.Nets.Linear(store, "fc", i, o, true);
        Compare([n, i], x => layer.Forward(x), x => F.linear(x, tp["fc.weight"], tp["fc.bias"]), store, tp);
    }

    [Theory]
    [InlineData(2, 2, 0)]
    [InlineData(3, 2, 1)]
    [InlineData(3, 1, 1)]
    public void Pooling(int k, int s, int p)
    {
        Compare([2, 3, 7, 6], x => x.MaxPool2d(k, s, p), x => F.max_pool2d(x, [k, k], [s, s], [p, p]));
        Compare([2, 3, 7, 6], x => x.AvgPool2d(k, s, p), x => F.avg_pool2d(x, [k, k], [s, s], [p, p]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(8)]
    public void AdaptiveAvgPool2d(int n) =>
        Compare([2, 3, 7, 6], x => x.AdaptiveAvgPool2d(n), x => F.adaptive_avg_pool2d(x, [n, n]));

    [Fact]
    public void Activations_Softmax_Add()
    {
        Compare([3, 11], x => x.Relu(), x => F.relu(x));
        Compare([3, 11], x => x.Gelu(), x => F.gelu(x));
        Compare([3, 11], x => x.Tanh(), x => torch.tanh(x));
        Compare([3, 11], x => x.Sigmoid(), x => torch.sigmoid(x));
        Compare([3, 11], x => x.Softmax(), x => F.softmax(x, -1));
        Compare([3, 4, 21], x => x.LogSoftmax(), x => F.log_softmax(x, -1), inputScale: 4f);
        Compare([3, 11], x => x.Relu() + x, x => F.relu(x) + x);
        Compare([2, 3, 4], x => x.Flatten(), x => x.flatten(1));
        Compare([5, 7], x => x.Dropout(0.0), x => F.dropout(x, 0.0, true));
    }

    [Fact]
    public void LeakyReluSiluEluHardswish_MatchLibTorch()
    {
        // Inputs in [-5, 5]: both branches of each, and every piece of Hardswish.
        Compare([4, 13], x => x.LeakyRelu(), x => F.leaky_relu(x, 0.01), inputScale: 5f);
        Compare([4, 13], x => x.LeakyRelu(0.3), x => F.leaky_relu(x, 0.3), inputScale: 5f);
        Compare([4, 13], x => x.Silu(), x => F.silu(x), inputScale: 5f);
        Compare([4, 13], x => x.Elu(), x => F.elu(x, 1.0), inputScale: 5f);
        Compare([4, 13], x => x.Elu(0.5), x => F.elu(x, 0.5), inputScale: 5f);
        Compare([4, 13], x => x.Hardswish(), x => F.hardswish(x), inputScale: 5f);
    }

    [Fact]
    public void BroadcastingSubtractAndMultiply_MatchLibTorch()
    {
        // Channel gating and centring: [B, C, H, W] against [B, C, 1, 1], gradients flowing into both sides.
        Compare([2, 3, 5, 4], x => x * x.AdaptiveAvgPool2d(1).Sigmoid(), x => x * torch.sigmoid(F.adaptive_avg_pool2d(x, [1, 1])));
        Compare([2, 3, 5, 4], x => x - x.AdaptiveAvgPool2d(1), x => x - F.adaptive_avg_pool2d(x, [1, 1]));
        Compare([2, 3, 5, 4], x => x.AdaptiveAvgPool2d(1) - x.Tanh(), x => F.adaptive_avg_pool2d(x, [1, 1]) - torch.tanh(x));
        Compare([3, 7], x => x * x.Tanh() - x, x => x * torch.tanh(x) - x);
    }

    [Fact]
    public void L1SmoothL1AndBceWithLogits_MatchLibTorch_LossAndGradient()
    {
        var x = Random(6 * 7, 31, 3f);
        var regression = Random(6 * 7, 32, 3f);
        var probabilities = Random(6 * 7, 33).Select(v => (v + 1) / 2).ToArray();
        var cases = new (Func<CTensor, CTensor> Ours, Func<TTensor, TTensor> Theirs)[]
        {
            (p => p.L1(new CTensor(regression, 6, 7)), p => F.l1_loss(p, T(regression, [6, 7], false))),
            (p => p.SmoothL1(new CTensor(regression, 6, 7)), p => F.smooth_l1_loss(p, T(regression, [6, 7], false))),
            (p => p.SmoothL1(new CTensor(regression, 6, 7), 0.4), p => F.smooth_l1_loss(p, T(regression, [6, 7], false), beta: 0.4)),
            (p => p.BceWithLogits(new CTensor(probabilities, 6, 7)), p => F.binary_cross_entropy_with_logits(p, T(probabilities, [6, 7], false))),
            (p => p.LogSoftmax().Nll([3, 0, 6, 2, 2, 5]), p => F.nll_loss(F.log_softmax(p, -1), torch.tensor(new long[] { 3, 0, 6, 2, 2, 5 }))),
        };
        foreach (var (ours, theirs) in cases)
        {
            var cx = new CTensor((float[])x.Clone(), 6, 7);
            CTensor loss;
            using (Eager.Training()) loss = ours(cx);
            loss.Backward();
            var tx = T(x, [6, 7]);
            var tl = theirs(tx);
            tl.backward();
            Close(Data(tl), loss.Data, "loss", 1e-5f);
            Close(Data(tx.grad!), cx.Grad!, "dx", 1e-5f);
        }
    }

    [Fact]
    public void Concat_MatchesTorchCat()
    {
        Compare([2, 3, 4, 5], x => CTensor.Concat(1, x.Relu(), x.Tanh(), x), x => torch.cat([F.relu(x), torch.tanh(x), x], 1));
        Compare([2, 3, 4, 5], x => CTensor.Concat(-1, x, x.Sigmoid()), x => torch.cat([x, torch.sigmoid(x)], -1));
        Compare([2, 3, 4, 5], x => CTensor.Concat(2, x.Tanh(), x), x => torch.cat([torch.tanh(x), x], 2));
    }

    [Theory]
    [InlineData(new[] { 6, 5 })]
    [InlineData(new[] { 4, 5, 7 })]
    public void BatchNorm1d_TrainingMatchesLibTorch(int[] shape)
    {
        var b = new ParameterStoreBuilder();
        b.Add("bn.weight", [5], ParameterRole.NormWeight, ParameterInit.Uniform(1));
        b.Add("bn.bias", [5], ParameterRole.NormBias, ParameterInit.Uniform(1));
        b.AddBuffer("bn.running_mean", [5], ParameterRole.RunningMean, ParameterInit.Zeros);
        b.AddBuffer("bn.running_var", [5], ParameterRole.RunningVar, ParameterInit.Ones);
        b.AddBuffer("bn.num_batches_tracked", [], ParameterRole.BatchesTracked, ParameterInit.Zeros);
        using var store = b.Build();
        store.Initialize(4);
        var layer = new Compiled.Nets.BatchNorm1d(store, "bn", 5, 1e-5f, 0.1f);
        var w = T(store.Value(store["bn.weight"]).ToArray(), [5]);
        var bias = T(store.Value(store["bn.bias"]).ToArray(), [5]);
        var mean = torch.zeros(5, ScalarType.Float64); var variance = torch.ones(5, ScalarType.Float64);
        Compare(shape, x => layer.Forward(x), x => F.batch_norm(x, mean, variance, w, bias, training: true, momentum: 0.1, eps: 1e-5), store,
            new Dictionary<string, TTensor> { ["bn.weight"] = w, ["bn.bias"] = bias });
        Close(Data(mean), store.Value(store["bn.running_mean"]).ToArray(), "running_mean");
        Close(Data(variance), store.Value(store["bn.running_var"]).ToArray(), "running_var");
    }

    [Fact]
    public void BatchNorm2d_TrainingAndRunningStats()
    {
        var b = new ParameterStoreBuilder();
        b.Add("bn.weight", [3], ParameterRole.NormWeight, ParameterInit.Uniform(1));
        b.Add("bn.bias", [3], ParameterRole.NormBias, ParameterInit.Uniform(1));
        b.AddBuffer("bn.running_mean", [3], ParameterRole.RunningMean, ParameterInit.Zeros);
        b.AddBuffer("bn.running_var", [3], ParameterRole.RunningVar, ParameterInit.Ones);
        b.AddBuffer("bn.num_batches_tracked", [], ParameterRole.BatchesTracked, ParameterInit.Zeros);
        using var store = b.Build();
        store.Initialize(5);
        var tp = new Dictionary<string, TTensor> { ["bn.weight"] = T(store.Value(store["bn.weight"]).ToArray(), [3]), ["bn.bias"] = T(store.Value(store["bn.bias"]).ToArray(), [3]) };
        var rm = torch.zeros(3, ScalarType.Float64); var rv = torch.ones(3, ScalarType.Float64);
        var layer = new Compiled.Nets.BatchNorm2d(store, "bn", 3, 1e-5f, 0.1f);
        // Both sides run one training-mode forward on the same batch, so the running statistics must match after it.
        Compare([4, 3, 5, 2], x => layer.Forward(x), x => F.batch_norm(x, rm, rv, tp["bn.weight"], tp["bn.bias"], true, 0.1, 1e-5), store, tp);
        Close(Data(rm), store.Value(store["bn.running_mean"]).ToArray(), "running_mean");
        Close(Data(rv), store.Value(store["bn.running_var"]).ToArray(), "running_var");
    }

    [Fact]
    public void LayerNorm_And_Embedding()
    {
        var (store, tp) = Params(("ln.weight", [9], ParameterRole.NormWeight), ("ln.bias", [9], ParameterRole.NormBias));
        var ln = new Compiled.Nets.LayerNorm(store, "ln", 9, 1e-5f);
        Compare([2, 3, 9], x => ln.Forward(x), x => F.layer_norm(x, [9], tp["ln.weight"], tp["ln.bias"], 1e-5), store, tp);

        var (es, et) = Params(("emb.weight", [11, 4], ParameterRole.Embedding));
        var emb = new Compiled.Nets.Embedding(es, "emb", 11, 4);
        int[] ids = [3, 0, 10, 3, 7, 1];
        var y = emb.Forward(CTensor.FromIds(ids, 2, 3));
        var target = Random(24, 9);
        y.Mse(new CTensor(target, 2, 3, 4)).Backward();
        var ty = et["emb.weight"].index_select(0, torch.tensor(ids.Select(i => (long)i).ToArray())).reshape(2, 3, 4);
        F.mse_loss(ty, T(target, [2, 3, 4], false)).backward();
        Close(Data(ty), y.Data, "embedding y");
        Close(Data(et["emb.weight"].grad!), es.Gradient(es["emb.weight"]).ToArray(), "embedding grad");
    }

    [Fact]
    public void SequenceReductions_SelectToken_And_MaskedMean()
    {
        // [B=3, T=5, 2×3] with right padding: sample b has 5 - 2b real positions (the last one has 1).
        int[] shape = [3, 5, 2, 3];
        var mask = new int[15];
        for (int b = 0; b < 3; b++) for (int t = 0; t < 5 - 2 * b; t++) mask[b * 5 + t] = 1;
        Compare(shape, x => x.SelectToken(2), x => x.select(1, 2));
        Compare(shape, x => x.WithMask(mask).MeanOverSequence(), x =>
        {
            var m = torch.tensor(mask.Select(v => (double)v).ToArray(), [3, 5, 1, 1]);
            return (x * m).sum(1) / m.sum(1);
        });
    }

    [Fact]
    public void PositionAndTokenTypeEmbeddings_AsHuggingFaceBert()
    {
        var (store, tp) = Params(("pos.weight", [9, 4], ParameterRole.Embedding), ("type.weight", [2, 4], ParameterRole.Embedding));
        var pos = new Compiled.Nets.PositionEmbedding(store, "pos", 9, 4);
        var type = new Compiled.Nets.TokenTypeEmbedding(store, "type", 2, 4);
        Compare([3, 6, 4], x => x.Apply(pos).Apply(type).Tanh(), x =>
        {
            var positions = tp["pos.weight"].index_select(0, torch.arange(6L));   // position_ids = arange(T)
            var types = tp["type.weight"].index_select(0, torch.zeros(6, ScalarType.Int64)); // token_type_ids = 0
            return (x + positions + types).tanh();
        }, store, tp, seed: 4);
    }

    [Theory]
    [InlineData(2, 5, 8, 2)]
    [InlineData(3, 7, 12, 3)]
    public void SelfAttention_WithPaddingMask_AsHuggingFaceBert(int batch, int seq, int embed, int heads)
    {
        // HF BertSelfAttention in plain torch ops: q/k/v Linear, [B, H, T, D] heads, scores/√D + (1 − mask)·min,
        // softmax, probs·V, heads merged. Sample b has seq − 2b real positions (at least 1).
        var names = new[] { "query", "key", "value" };
        var ps = names.SelectMany(n => new (string, int[], ParameterRole)[] { ($"att.{n}.weight", [embed, embed], ParameterRole.Weight), ($"att.{n}.bias", [embed], ParameterRole.Bias) }).ToArray();
        var (store, tp) = Params(ps);
        var mask = new int[batch * seq];
        for (int b = 0; b < batch; b++) for (int t = 0; t < Math.Max(1, seq - 2 * b); t++) mask[b * seq + t] = 1;
        var layer = new Compiled.Nets.SelfAttention(store, "att", embed, heads, 0f);
        int d = embed / heads;
        Compare([batch, seq, embed], x => x.WithMask(mask).Apply(layer), x =>
        {
            TTensor Heads(string n) => F.linear(x, tp[$"att.{n}.weight"], tp[$"att.{n}.bias"]).view(batch, seq, heads, d).transpose(1, 2);
            var scores = torch.matmul(Heads("query"), Heads("key").transpose(-1, -2)) / Math.Sqrt(d);
            var m = torch.tensor(mask.Select(v => (double)v).ToArray(), [batch, 1, 1, seq]);
            scores = scores + (1 - m) * (double)float.MinValue;
            var ctx = torch.matmul(F.softmax(scores, -1), Heads("value"));
            return ctx.transpose(1, 2).reshape(batch, seq, embed);
        }, store, tp, seed: 9, tol: 5e-4f);
    }

    [Theory]
    [InlineData(true, 1, false, false)]
    [InlineData(true, 2, true, true)]
    [InlineData(false, 1, true, false)]
    [InlineData(false, 2, false, true)]
    public void RecurrentLayers_AsTorchLstmAndGru(bool lstm, int layers, bool bidirectional, bool masked)
    {
        // nn.LSTM / nn.GRU (batch_first) with our weights copied in under their own names. Padding's oracle is each
        // sample run alone on its real positions and padded with zeros afterwards (what packed sequences give).
        const int batch = 3, seq = 6, input = 4, hidden = 5;
        int directions = bidirectional ? 2 : 1, gates = lstm ? 4 : 3;
        var ps = new List<(string, int[], ParameterRole)>();
        for (int l = 0; l < layers; l++)
            for (int d = 0; d < directions; d++)
            {
                string suffix = $"_l{l}{(d == 1 ? "_reverse" : "")}";
                ps.Add(($"rnn.weight_ih{suffix}", [gates * hidden, l == 0 ? input : directions * hidden], ParameterRole.Weight));
                ps.Add(($"rnn.weight_hh{suffix}", [gates * hidden, hidden], ParameterRole.Weight));
                ps.Add(($"rnn.bias_ih{suffix}", [gates * hidden], ParameterRole.Bias));
                ps.Add(($"rnn.bias_hh{suffix}", [gates * hidden], ParameterRole.Bias));
            }
        var (store, _) = Params(ps.ToArray());
        RecurrentLayer ours = lstm ? new LSTM(store, "rnn", input, hidden, layers, bidirectional, bias: true) : new GRU(store, "rnn", input, hidden, layers, bidirectional, bias: true);
        var module = lstm
            ? (nn.Module)nn.LSTM(input, hidden, layers, batchFirst: true, bidirectional: bidirectional)
            : nn.GRU(input, hidden, layers, batchFirst: true, bidirectional: bidirectional);
        module.to(ScalarType.Float64);
        var torchParams = new Dictionary<string, TTensor>();
        using (torch.no_grad())
            foreach (var (name, p) in module.named_parameters())
            {
                p.copy_(T(store.Value(store["rnn." + name]).ToArray(), p.shape.Select(v => (int)v).ToArray(), false));
                torchParams["rnn." + name] = p;
            }
        Assert.Equal(ps.Count, torchParams.Count);
        TTensor Run(TTensor x) => module is TorchSharp.Modules.LSTM l ? l.call(x, null).Item1 : ((TorchSharp.Modules.GRU)module).call(x, null).Item1;
        int[] lengths = masked ? [seq, seq - 2, 1] : [seq, seq, seq];
        var mask = Enumerable.Range(0, batch * seq).Select(i => i % seq < lengths[i / seq] ? 1 : 0).ToArray();
        Compare([batch, seq, input], x => (masked ? x.WithMask(mask) : x).Apply(ours), x => torch.cat(Enumerable.Range(0, batch).Select(b =>
        {
            var y = Run(x[b].narrow(0, 0, lengths[b]).unsqueeze(0));
            return lengths[b] == seq ? y : torch.cat([y, torch.zeros([1, seq - lengths[b], directions * hidden], ScalarType.Float64)], 1);
        }).ToArray(), 0), store, torchParams, seed: 11);
    }

    [Theory]
    [InlineData(4, 3, 3, 2, 1, 1, 1, true)]    // stride 2 with output padding: 7×9 → 14×18
    [InlineData(3, 5, 4, 2, 1, 0, 1, false)]   // DCGAN's 4×4, stride 2, padding 1
    [InlineData(2, 4, 3, 1, 0, 0, 2, true)]    // dilation 2, stride 1
    [InlineData(5, 2, 2, 2, 0, 0, 1, true)]    // 2×2, stride 2 (U-Net's up-convolution)
    public void ConvTranspose2d_AsTorchConvTranspose2d(int c, int o, int k, int s, int p, int op, int d, bool bias)
    {
        var ps = new List<(string, int[], ParameterRole)> { ("up.weight", [c, o, k, k], ParameterRole.Weight) };
        if (bias) ps.Add(("up.bias", [o], ParameterRole.Bias));
        var (store, tp) = Params(ps.ToArray());
        var layer = new Compiled.Nets.ConvTranspose2d(store, "up", c, o, k, s, p, op, d, bias);
        Compare([2, c, 7, 9], x => x.Apply(layer), x => F.conv_transpose2d(x, tp["up.weight"], bias ? tp["up.bias"] : null, [s, s], [p, p], [op, op], dilation: [d, d]), store, tp, seed: 14);
    }

    [Theory]
    [InlineData(6, 6, 3, 1, 1, 1, true)]    // MobileNet's 3×3, padding 1, one output per channel; rows of 37: whole vectors and a tail
    [InlineData(4, 8, 3, 2, 1, 1, false)]   // stride 2 (the scalar path), two outputs per channel
    [InlineData(5, 5, 3, 1, 2, 2, true)]    // dilation 2
    [InlineData(3, 3, 5, 1, 0, 1, false)]   // 5×5 without padding
    public void Conv2d_Depthwise_AsTorchConv2d(int c, int o, int k, int s, int p, int d, bool bias)
    {
        var ps = new List<(string, int[], ParameterRole)> { ("conv.weight", [o, 1, k, k], ParameterRole.Weight) };
        if (bias) ps.Add(("conv.bias", [o], ParameterRole.Bias));
        var (store, tp) = Params(ps.ToArray());
        var layer = new Compiled.Nets.Conv2d(store, "conv", c, o, (k, k), (s, s), (p, p), d, c, bias);
        Compare([2, c, 6, 37], x => x.Apply(layer), x => F.conv2d(x, tp["conv.weight"], bias ? tp["conv.bias"] : null, [s, s], [p, p], [d, d], groups: c), store, tp, seed: 13);
    }

    [Theory]
    [InlineData(4, 8, 3, 3, 1, 1, 1, 1, 4, true)]   // depthwise
    [InlineData(6, 4, 1, 3, 1, 2, 0, 1, 2, false)]  // 1×3 kernel, stride (1, 2), two groups
    [InlineData(3, 6, 5, 2, 2, 1, 2, 0, 3, true)]   // 5×2 kernel, padding (2, 0), three groups
    public void Conv2d_NonSquareAndGrouped_AsTorchConv2d(int c, int o, int kh, int kw, int sh, int sw, int ph, int pw, int groups, bool bias)
    {
        var ps = new List<(string, int[], ParameterRole)> { ("conv.weight", [o, c / groups, kh, kw], ParameterRole.Weight) };
        if (bias) ps.Add(("conv.bias", [o], ParameterRole.Bias));
        var (store, tp) = Params(ps.ToArray());
        var layer = new Compiled.Nets.Conv2d(store, "conv", c, o, (kh, kw), (sh, sw), (ph, pw), 1, groups, bias);
        Compare([2, c, 7, 9], x => x.Apply(layer), x => F.conv2d(x, tp["conv.weight"], bias ? tp["conv.bias"] : null, [sh, sw], [ph, pw], groups: groups), store, tp, seed: 12);
    }

    [Fact]
    public void Conv1d_AsTorchConv1d()
    {
        var (store, tp) = Params(("c.weight", [6, 2, 3], ParameterRole.Weight), ("c.bias", [6], ParameterRole.Bias));
        var layer = new Compiled.Nets.Conv1d(store, "c", 4, 6, 3, 2, 1, 2, 2, true);
        Compare([3, 4, 15], x => x.Apply(layer), x => F.conv1d(x, tp["c.weight"], tp["c.bias"], 2, 1, 2, 2), store, tp, seed: 13);
    }

    [Fact]
    public void EmbeddingWithPaddingIdx_AsTorchEmbedding()
    {
        var (store, tp) = Params(("emb.weight", [7, 3], ParameterRole.Embedding));
        var layer = new Compiled.Nets.Embedding(store, "emb", 7, 3, paddingIdx: -2); // row 5
        int[] ids = [5, 1, 5, 6, 0, 5];
        store.ZeroGradients();
        var y = Compiled.Nets.Tensor.FromIds(ids, 2, 3).Apply(layer).Tanh();
        var target = Random(y.Length, 3);
        y.Mse(new CTensor(target, y.Shape)).Backward();
        // nn.Embedding(padding_idx=5) with the same table: its weight's gradient leaves row 5 out.
        var embedding = nn.Embedding(7, 3, padding_idx: 5, dtype: ScalarType.Float64);
        using (torch.no_grad()) embedding.weight!.copy_(tp["emb.weight"]);
        var ty = embedding.call(torch.tensor(ids.Select(i => (long)i).ToArray(), [2, 3])).tanh();
        F.mse_loss(ty, T(target, [2, 3, 3], false)).backward();
        Close(Data(ty), y.Data, "y");
        Close(Data(embedding.weight!.grad!), store.Gradient(store["emb.weight"]).ToArray(), "emb.weight grad");
        Assert.All(store.Gradient(store["emb.weight"]).Slice(15, 3).ToArray(), v => Assert.Equal(0f, v));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KlDivergence_AsTorchKlDiv(bool batchMean)
    {
        var logits = Random(4 * 5, 6, 2);
        var target = new CTensor(Random(4 * 5, 7, 2), 4, 5).Softmax().Data;
        target[7] = 0f;
        var cx = new CTensor((float[])logits.Clone(), 4, 5);
        var loss = cx.LogSoftmax().KlDiv(new CTensor(target, 4, 5), batchMean);
        loss.Backward();
        var tx = T(logits, [4, 5]);
        // TorchSharp's Reduction has no BatchMean: it is the sum over the batch of 4.
        var kl = F.kl_div(F.log_softmax(tx, 1), T(target, [4, 5], false), reduction: batchMean ? nn.Reduction.Sum : nn.Reduction.Mean, log_target: false);
        var tl = batchMean ? kl / 4 : kl;
        tl.backward();
        Assert.Equal(Data(tl)[0], loss.Data[0], 1e-5f);
        Close(Data(tx.grad!), cx.Grad!, "dlogits", 1e-4f);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.3f)]
    [InlineData(-0.5f)]
    public void CosineEmbedding_AsTorchCosineEmbeddingLoss(float margin)
    {
        // Alike and unlike pairs, one label of neither kind (adds nothing), one unlike pair below the margin.
        var a = Random(6 * 5, 8, 1);
        var b = Random(6 * 5, 9, 1);
        for (int i = 0; i < 5; i++) b[25 + i] = -a[25 + i];
        float[] y = [1, -1, 1, -1, 0, -1];
        var ca = new CTensor((float[])a.Clone(), 6, 5);
        var cb = new CTensor((float[])b.Clone(), 6, 5);
        var loss = ca.CosineEmbedding(cb, y, margin);
        loss.Backward();
        var ta = T(a, [6, 5]);
        var tb = T(b, [6, 5]);
        var tl = new TorchSharp.Modules.CosineEmbeddingLoss(margin, nn.Reduction.Mean).call(ta, tb, T(y, [6], false));
        tl.backward();
        Assert.Equal(Data(tl)[0], loss.Data[0], 1e-5f);
        Close(Data(ta.grad!), ca.Grad!, "da", 1e-4f);
        Close(Data(tb.grad!), cb.Grad!, "db", 1e-4f);
    }

    [Fact]
    public void SoftmaxAlongADimension_AsTorchSoftmaxAndLogSoftmax()
    {
        Compare([2, 4, 3, 5], x => x.Softmax(1), x => F.softmax(x, 1));
        Compare([2, 4, 3, 5], x => x.LogSoftmax(2), x => F.log_softmax(x, 2));
    }

    [Theory]
    [InlineData(6, 4)]   // torch.chunk gives 3 pieces of 2, not 4
    [InlineData(7, 3)]   // 3, 3, 1
    [InlineData(5, 5)]
    [InlineData(8, 3)]   // 3, 3, 2
    public void Chunk_CutsAsTorchChunk(int size, int chunks)
    {
        // The pieces' sizes, and a loss that weighs each piece differently so every piece's gradient shows.
        var expected = torch.zeros(2, size).chunk(chunks, 1).Select(t => (int)t.shape[1]).ToArray();
        var ours = new CTensor(new float[2 * size], 2, size).Chunk(chunks, 1).Select(t => t.Shape[1]).ToArray();
        Assert.Equal(expected, ours);
        Compare([2, size, 3], x => CTensor.Concat(1, x.Chunk(chunks, 1).Select((p, i) => p * (i + 1f)).ToArray()),
            x => torch.cat(x.chunk(chunks, 1).Select((p, i) => p * (i + 1f)).ToArray(), 1));
    }

    [Fact]
    public void Split_BySizeAndBySections_AsTorchSplit()
    {
        Assert.Equal([3, 3, 1], new CTensor(new float[7], 1, 7).Split(3, -1).Select(t => t.Shape[1]).ToArray());
        Compare([2, 3, 7], x => { var (a, b, c) = x.Split(3, -1); return CTensor.Concat(-1, c.Tanh(), a * 2f, b.Sigmoid()); },
            x => { var p = x.split(3, 2); return torch.cat([p[2].tanh(), p[0] * 2f, p[1].sigmoid()], 2); });
        Compare([2, 9, 2], x => { var (a, b) = x.Split([2, 7], 1); return CTensor.Concat(1, b, a.Tanh()); },
            x => { var p = x.split([2L, 7L], 1); return torch.cat([p[1], p[0].tanh()], 1); });
    }

    [Fact]
    public void AbsExpAndLog_AsTorch()
    {
        Compare([3, 7], x => x.Abs().Exp(), x => x.abs().exp());
        Compare([3, 7], x => (x.Abs() + 0.5f).Log(), x => (x.abs() + 0.5f).log());
    }

    [Fact]
    public void SumAndMeanAlongADimension_AsTorchSumAndMean()
    {
        Compare([2, 6, 3, 5], x => x.Sum(1).Tanh(), x => x.sum(1).tanh());
        Compare([2, 6, 3, 5], x => x.Sum(-1, keepDim: true).Sigmoid(), x => x.sum(3, keepdim: true).sigmoid());
        Compare([2, 6, 3, 5], x => x.Mean(2), x => x.mean([2L]));
        Compare([3, 7], x => x.Mean(-1, keepDim: true) * x, x => x.mean([1L], keepdim: true) * x);
    }

    [Fact]
    public void SoftmaxSumAndMeanOverAMaskedSequence_AsTorchWithMaskedFill()
    {
        // [B, T, D] with right padding; torch: scores.masked_fill(~mask, -inf).softmax(1), sums of x·mask.
        int[] shape = [3, 5, 2];
        int[] mask = [1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0];
        var x = Random(30, 21);
        var dy = Random(30, 22);
        var cx = new CTensor((float[])x.Clone(), shape).WithMask(mask);
        CTensor p, s, m;
        using (Eager.Training())
        {
            p = cx.Softmax(1); s = cx.Sum(1); m = cx.Mean(1);
            (p * new CTensor(dy, shape)).Sum(2).Sum(1).Mean().Backward(); // d/dx of Σ p·dy (over the batch's mean)
        }
        var tx = T(x, shape);
        var keep = torch.tensor(mask.Select(v => v != 0).ToArray(), [3, 5]).unsqueeze(2);
        var tp = tx.masked_fill(keep.logical_not(), double.NegativeInfinity).softmax(1);
        (tp * T(dy, shape, false)).sum([2L, 1L]).mean().backward();
        var kept = tx * keep.to(ScalarType.Float64);
        Close(Data(tp), p.Data, "softmax over T");
        Close(Data(tx.grad!), cx.Grad!, "its dx");
        Close(Data(kept.sum(1)), s.Data, "sum over T");
        Close(Data(kept.sum(1) / keep.to(ScalarType.Float64).sum(1)), m.Data, "mean over T");
        Assert.Throws<ArgumentException>(() => cx.LogSoftmax(1)); // −∞ at padding
    }

    [Fact]
    public void OneHot_AsTorchOneHot()
    {
        long[] ids = [3, 0, 4, 4, 1, 2];
        var ours = new CTensor(ids.Select(i => (float)i).ToArray(), 2, 3).OneHot(5);
        var theirs = F.one_hot(torch.tensor(ids).reshape(2, 3), 5).to(torch.float32);
        Assert.Equal(theirs.shape, ours.Shape.Select(d => (long)d).ToArray());
        Assert.Equal(Data(theirs), ours.Data);
        Assert.Contains("value 5 at position 2", Assert.Throws<ArgumentException>(() => new CTensor([0f, 1f, 5f], 3).OneHot(5)).Message);
        Assert.Contains("value 0.5 at position 0", Assert.Throws<ArgumentException>(() => new CTensor([0.5f], 1).OneHot(5)).Message);
    }

    [Fact]
    public void Narrow_AsTorchNarrow()
    {
        Compare([2, 6, 3, 5], x => x.Narrow(1, 2, 3).Tanh(), x => x.narrow(1, 2, 3).tanh());
        Compare([2, 6, 3, 5], x => x.Narrow(-1, 1, 4).Sigmoid(), x => x.narrow(3, 1, 4).sigmoid());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(6)]
    public void GroupNorm_AsTorchGroupNorm(int groups)
    {
        var (store, tp) = Params(("gn.weight", [6], ParameterRole.NormWeight), ("gn.bias", [6], ParameterRole.NormBias));
        var layer = new Compiled.Nets.GroupNorm(store, "gn", groups, 6, 1e-5f);
        Compare([3, 6, 4, 5], x => x.Apply(layer), x => F.group_norm(x, groups, tp["gn.weight"], tp["gn.bias"], 1e-5), store, tp, seed: 14);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Upsample_NearestAndBilinear_AsTorchInterpolate(int scale)
    {
        Compare([2, 3, 4, 5], x => x.Upsample(scale).Tanh(), x => F.interpolate(x, scale_factor: [scale, scale], mode: InterpolationMode.Nearest).tanh());
        Compare([2, 3, 4, 5], x => x.Upsample(scale, UpsampleMode.Bilinear).Tanh(), x => F.interpolate(x, scale_factor: [scale, scale], mode: InterpolationMode.Bilinear, align_corners: false).tanh());
    }

    [Fact]
    public void ShapeMethods_AndMatMul_AsTorchPermuteUnflattenFlattenAndMatmul()
    {
        // Views and copies: the gradients flow back through each.
        Compare([2, 3, 4, 5], x => x.Permute(0, 3, 1, 2).Tanh(), x => x.permute(0, 3, 1, 2).tanh());
        Compare([2, 3, 4, 5], x => x.Transpose(1, -1).Sigmoid(), x => x.transpose(1, -1).sigmoid());
        Compare([3, 4, 12], x => x.Unflatten(-1, 3, -1).Permute(0, 2, 1, 3).Flatten(2).Tanh(),
            x => x.unflatten(2, [3, 4]).permute(0, 2, 1, 3).flatten(2).tanh()); // TorchSharp takes no negative dim here
        // Products: per sample, then with leading dimensions (heads); both operands get gradients.
        var other = Random(3 * 2 * 5 * 6, 9);
        Compare([3, 2, 4, 5], x => x.MatMul(new CTensor((float[])other.Clone(), 3, 2, 5, 6)).Tanh(), x => torch.matmul(x, T(other, [3, 2, 5, 6], false)).tanh());
        var b = Random(4 * 7 * 3, 10);
        var cb = new CTensor((float[])b.Clone(), 4, 7, 3);
        var tb = T(b, [4, 7, 3]);
        Compare([4, 5, 7], x => CTensor.MatMul(x, cb), x => torch.matmul(x, tb));
        Close(Data(tb.grad!), cb.Grad!, "d(b)");
    }

    [Theory]
    [InlineData(0f, true, -100)]
    [InlineData(0.2f, true, 3)]
    [InlineData(0.1f, false, -100)]
    public void CrossEntropy_WithClassWeightsAndIgnoreIndex_AsTorch(float smoothing, bool weighted, int ignore)
    {
        var logits = Random(6 * 5, 4, 3);
        int[] labels = [0, ignore, 4, 3, ignore == 3 ? 1 : -100, 2];
        float[] weights = weighted ? [0.5f, 2f, 1f, 3f, 0.25f] : [];
        var cx = new CTensor((float[])logits.Clone(), 6, 5);
        var loss = cx.CrossEntropy(labels, smoothing, weights, ignore);
        loss.Backward();
        var tx = T(logits, [6, 5]);
        var target = torch.tensor(labels.Select(l => (long)l).ToArray(), ScalarType.Int64);
        var tl = F.cross_entropy(tx, target, weighted ? T(weights, [5], false) : null, ignore_index: ignore, label_smoothing: smoothing);
        tl.backward();
        Assert.Equal(Data(tl)[0], loss.Data[0], 1e-5f);
        Close(Data(tx.grad!), cx.Grad!, "dlogits", 1e-4f);
    }

    [Theory]
    [InlineData(true, -100)]
    [InlineData(true, 3)]
    [InlineData(false, 3)]
    public void Nll_WithClassWeightsAndIgnoreIndex_AsTorch(bool weighted, int ignore)
    {
        var logits = Random(6 * 5, 5, 3);
        int[] labels = [0, ignore, 4, 3, ignore == 3 ? 1 : -100, 2];
        float[] weights = weighted ? [0.5f, 2f, 1f, 3f, 0.25f] : [];
        var cx = new CTensor((float[])logits.Clone(), 6, 5);
        var loss = cx.LogSoftmax().Nll(labels, weights, ignore);
        loss.Backward();
        var tx = T(logits, [6, 5]);
        // TorchSharp's nll_loss has no ignore_index: PyTorch's meaning of it is the loss over the other rows alone.
        var kept = Enumerable.Range(0, 6).Where(r => labels[r] != ignore).ToArray();
        var rows = torch.tensor(kept.Select(r => (long)r).ToArray(), ScalarType.Int64);
        var target = torch.tensor(kept.Select(r => (long)labels[r]).ToArray(), ScalarType.Int64);
        var tl = F.nll_loss(F.log_softmax(tx, 1).index_select(0, rows), target, weighted ? T(weights, [5], false) : null);
        tl.backward();
        Assert.Equal(Data(tl)[0], loss.Data[0], 1e-5f);
        Close(Data(tx.grad!), cx.Grad!, "dlogits", 1e-4f);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void CrossEntropy(float smoothing)
    {
        var logits = Random(5 * 7, 2, 3);
        int[] labels = [0, 6, 3, 3, 1];
        var ours = new CTensor((float[])logits.Clone(), 5, 7);
        var loss = ours.CrossEntropy(labels, smoothing);
        loss.Backward();
        var tl = T(logits, [5, 7]);
        var tloss = F.cross_entropy(tl, torch.tensor(labels.Select(l => (long)l).ToArray()), label_smoothing: smoothing);
        tloss.backward();
        Assert.Equal(tloss.item<double>(), loss.Data[0], 1e-5);
        Close(Data(tl.grad!), ours.Grad!, "dlogits");
    }

    [Fact]
    public void BFloat16Rounding_IsLibTorchs_BitForBit()
    {
        // Random values over the whole exponent range, every tie pattern near 1, subnormals, infinities, ±0.
        var r = new Rng(31);
        var bits = new List<uint>();
        for (int i = 0; i < 20000; i++) bits.Add((uint)r.NextUInt64());
        for (uint low = 0x7FF0; low <= 0x8010; low++) { bits.Add(0x3F800000u | low); bits.Add(0x3F810000u | low); }
        bits.AddRange([0x00000001, 0x00008000, 0x007F8000, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000]);
        var values = bits.Select(BitConverter.UInt32BitsToSingle).Where(v => !float.IsNaN(v)).ToArray();
        using var t = torch.tensor(values).to(ScalarType.BFloat16);
        var theirs = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(t.bytes).ToArray();
        for (int i = 0; i < values.Length; i++)
            Assert.True(theirs[i] == Kernels.BFloat16.FromSingle(values[i]),
                $"0x{BitConverter.SingleToUInt32Bits(values[i]):X8}: libtorch 0x{theirs[i]:X4}, ours 0x{Kernels.BFloat16.FromSingle(values[i]):X4}");
    }
}
