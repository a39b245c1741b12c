using Compiled.Nets;

namespace Compiled.Nets.Network.Tests;

/// <summary>The seed ConvNet on Fashion-MNIST's 1×28×28 input (so 128 * 7 * 7 is right).</summary>
[Network, Input(1, 28, 28), CrossEntropyLoss]
public partial class ConvNet
{
    [Conv2d(1, 64, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(64, 128, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(128 * 7 * 7, 512)] public partial Linear Fc1 { get; }
    [Linear(512, 10)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(2).Relu()
                                 .Apply(Conv2).MaxPool2d(2).Relu()
                                 .Flatten().Apply(Fc1).Relu().Apply(Fc2);
}

/// <summary>An MLP with GELU, LayerNorm, dropout and tanh/sigmoid, label smoothing.</summary>
[Network, Input(20), CrossEntropyLoss(LabelSmoothing = 0.1f)]
public partial class Mlp
{
    [Linear(20, 33)] public partial Linear Fc1 { get; }
    [LayerNorm(33)] public partial LayerNorm Norm { get; }
    [Linear(33, 17, bias: false)] public partial Linear Fc2 { get; }
    [Dropout(0.25)] public partial Dropout Drop { get; }
    [Linear(17, 5)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Fc1).Gelu();
        h = h.Apply(Norm);
        h = h.Apply(Fc2).Tanh().Apply(Drop);
        return h.Sigmoid().Apply(Head);
    }
}

/// <summary>BatchNorm, average pooling, strided/dilated conv without bias.</summary>
[Network, Input(3, 13, 11), CrossEntropyLoss]
public partial class BnNet
{
    [Conv2d(3, 8, kernel: 3, stride: 2, padding: 2, dilation: 2, bias: false)] public partial Conv2d Conv { get; }
    [BatchNorm2d(8)] public partial BatchNorm2d Bn { get; }
    [AvgPool2d(2)] public partial AvgPool2d Pool { get; }
    [Linear(8 * 3 * 3, 4)] public partial Linear Fc { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Apply(Bn).Relu().Apply(Pool).Flatten().Apply(Fc);
}

/// <summary>A residual block used twice through composition, with MSE loss.</summary>
[Network, Input(16)]
public partial class ResidualBlock
{
    [Linear(16, 16)] public partial Linear Fc1 { get; }
    [Linear(16, 16)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Fc1).Relu().Apply(Fc2);
        return (h + x).Relu();
    }
}

[Network, Input(8), MSELoss]
public partial class ResNet
{
    [Linear(8, 16)] public partial Linear Stem { get; }
    [SubNetwork(2)] public partial ResidualBlock[] Blocks { get; }
    [Linear(16, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Stem).Sigmoid().Apply(Blocks).Apply(Head);
}

/// <summary>Token ids → embedding → LayerNorm → GELU → classifier (fixed length 12).</summary>
[Network, Input(12, Kind = InputKind.TokenIds), CrossEntropyLoss]
public partial class TokenNet
{
    [Embedding(50, 8)] public partial Embedding Embed { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }
    [Linear(12 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Apply(Norm).Gelu().Flatten().Apply(Head);
}

/// <summary>
/// Token ids of any length T ≤ 16 (symbolic sequence dimension) → embedding → LayerNorm → residual GELU mixer per
/// position → [CLS] token plus the masked mean → classifier.
/// </summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 16), CrossEntropyLoss]
public partial class SeqNet
{
    [Embedding(50, 8)] public partial Embedding Embed { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }
    [SubNetwork(2)] public partial SeqBlock[] Blocks { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Embed).Apply(Norm).Apply(Blocks);
        var pooled = h.SelectToken(0) + h.MeanOverSequence();
        return pooled.Apply(Head);
    }
}

/// <summary>A per-position residual block over [T, 8], stacked inside SeqNet (composition keeps T symbolic).</summary>
[Network, Input(Dim.Sequence, 8)]
public partial class SeqBlock
{
    [Linear(8, 8)] public partial Linear Mix { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }

    Tensor Forward(Tensor x) => (x + x.Apply(Mix).Gelu()).Apply(Norm);
}

/// <summary>A float sequence [T, 4] regressed per position to [T, 2] (MSE): the output itself has the T dimension.</summary>
[Network, Input(Dim.Sequence, 4, MaxSequence = 10), MSELoss]
public partial class SeqRegressor
{
    [Linear(4, 6)] public partial Linear Fc1 { get; }
    [Linear(6, 2)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc1).Tanh().Softmax().Apply(Fc2);
}

/// <summary>Convolutions whose bias is added inside the kernel and then continues into a fused GELU / ReLU chain.</summary>
[Network, Input(2, 9, 9), CrossEntropyLoss]
public partial class ConvChainNet
{
    [Conv2d(2, 6, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(6, 4, kernel: 3, stride: 2)] public partial Conv2d Conv2 { get; }
    [Linear(4 * 4 * 4, 3)] public partial Linear Fc { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).Gelu().Apply(Conv2).Relu().Tanh().Flatten().Apply(Fc);
}

/// <summary>
/// Max-pools whose backward also sums the bias gradient of the convolution before them: an overlapping 3×3/2 pool
/// without ReLU (the general path) and a 2×2 pool + ReLU over an odd-sized map (inputs in no window).
/// </summary>
[Network, Input(3, 11, 9), CrossEntropyLoss]
public partial class PoolBiasNet
{
    [Conv2d(3, 5, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(5, 6, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(6 * 2 * 2, 3)] public partial Linear Fc { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv1).MaxPool2d(3, stride: 2)
                                 .Apply(Conv2).MaxPool2d(2).Relu()
                                 .Flatten().Apply(Fc);
}

/// <summary>
/// A two-layer BERT in miniature (hidden 16, 4 heads, intermediate 32), named as Hugging Face names bert-base:
/// embeddings → LayerNorm → encoder layers (self-attention with the padding mask, output projection, residual +
/// LayerNorm, GELU feed-forward, residual + LayerNorm) → pooler (tanh over [CLS]) → classifier.
/// </summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 12), CrossEntropyLoss]
public partial class MiniBert
{
    [Embedding(50, 16), StateName("embeddings.word_embeddings")] public partial Embedding Words { get; }
    [PositionEmbedding(20, 16), StateName("embeddings.position_embeddings")] public partial PositionEmbedding Positions { get; }
    [TokenTypeEmbedding(2, 16), StateName("embeddings.token_type_embeddings")] public partial TokenTypeEmbedding TokenTypes { get; }
    [LayerNorm(16, eps: 1e-12), StateName("embeddings.LayerNorm")] public partial LayerNorm EmbedNorm { get; }
    [SubNetwork(2), StateName("encoder.layer")] public partial MiniBertLayer[] Layers { get; }
    [Linear(16, 16), StateName("pooler.dense")] public partial Linear Pooler { get; }
    [Linear(16, 3), StateName("classifier")] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Apply(Positions).Apply(TokenTypes).Apply(EmbedNorm).Apply(Layers);
        return h.SelectToken(0).Apply(Pooler).Tanh().Apply(Classifier);
    }
}

/// <summary>One encoder layer of <see cref="MiniBert"/> (HF's BertLayer).</summary>
[Network, Input(Dim.Sequence, 16)]
public partial class MiniBertLayer
{
    [SelfAttention(16, heads: 4), StateName("attention.self")] public partial SelfAttention Attention { get; }
    [Linear(16, 16), StateName("attention.output.dense")] public partial Linear AttentionOut { get; }
    [LayerNorm(16, eps: 1e-12), StateName("attention.output.LayerNorm")] public partial LayerNorm AttentionNorm { get; }
    [Linear(16, 32), StateName("intermediate.dense")] public partial Linear Intermediate { get; }
    [Linear(32, 16), StateName("output.dense")] public partial Linear Output { get; }
    [LayerNorm(16, eps: 1e-12), StateName("output.LayerNorm")] public partial LayerNorm OutputNorm { get; }

    Tensor Forward(Tensor x)
    {
        var a = (x.Apply(Attention).Apply(AttentionOut) + x).Apply(AttentionNorm);
        return (a.Apply(Intermediate).Gelu().Apply(Output) + a).Apply(OutputNorm);
    }
}

/// <summary>LeakyReLU, SiLU, ELU and Hardswish as layers and as calls, with and without their parameter, fused after a
/// convolution (bias added in its kernel), after a Linear's bias and after each other; each one's backward reads its input.</summary>
[Network, Input(2, 6, 6), CrossEntropyLoss]
public partial class ActNet
{
    [Conv2d(2, 4, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
    [LeakyReLU(0.2)] public partial LeakyReLU Leaky { get; }
    [Linear(4 * 6 * 6, 16)] public partial Linear Fc { get; }
    [ELU(0.7)] public partial ELU Elu { get; }
    [SiLU] public partial SiLU Swish { get; }
    [Hardswish] public partial Hardswish HardSwish { get; }
    [Linear(16, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Apply(Leaky).Silu().Flatten();
        h = h.Apply(Fc).Elu().Hardswish().Apply(Elu);
        return h.Apply(Swish).LeakyRelu(0.05).Apply(HardSwish).Apply(Head);
    }
}

/// <summary>Global average pooling as a layer after a convolution, and adaptive pooling to 3×3 as a call.</summary>
[Network, Input(3, 10, 9), CrossEntropyLoss]
public partial class GapNet
{
    [Conv2d(3, 6, kernel: 3)] public partial Conv2d Conv { get; }
    [AdaptiveAvgPool2d(1)] public partial AdaptiveAvgPool2d Gap { get; }
    [Linear(6, 3)] public partial Linear Head { get; }
    [Linear(6 * 3 * 3, 3)] public partial Linear Side { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu();
        return h.Apply(Gap).Flatten().Apply(Head) + h.AdaptiveAvgPool2d(3).Flatten().Apply(Side);
    }
}

/// <summary>Squeeze-and-excitation gating (a [C, 1, 1] gate times a [C, H, W] map), centring by subtraction, and a
/// product of an [8, 5, 8] map with an [8] vector (broadcast over the leading dimensions).</summary>
[Network, Input(3, 6, 6), CrossEntropyLoss]
public partial class GateNet
{
    [Conv2d(3, 8, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
    [Conv2d(8, 2, kernel: 1)] public partial Conv2d Squeeze { get; }
    [Conv2d(2, 8, kernel: 1)] public partial Conv2d Excite { get; }
    [Linear(5, 8)] public partial Linear Rows { get; }
    [Linear(8 * 6 * 6, 8)] public partial Linear Mix { get; }
    [Linear(8 * 5 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu();
        var gate = h.AdaptiveAvgPool2d(1).Apply(Squeeze).Relu().Apply(Excite).Sigmoid();
        h = h * gate;
        h = h - h.AdaptiveAvgPool2d(1);
        var rows = h.AdaptiveAvgPool2d(5).Apply(Rows);
        var v = h.Flatten().Apply(Mix);
        return (rows * v).Flatten().Apply(Head);
    }
}

/// <summary>A block: no [Input], so it takes the shape of whatever it is applied to.</summary>
[Network]
public partial class ConvBlock
{
    [Conv2d(4, 4, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(4, 4, kernel: 3, padding: 1)] public partial Conv2d Conv2 { get; }

    Tensor Forward(Tensor x) => (x.Apply(Conv1).Relu().Apply(Conv2) + x).Relu();
}

/// <summary>One block type at two map sizes (8×8 and 4×4), and one block applied twice (its weights shared).</summary>
[Network, Input(3, 8, 8), CrossEntropyLoss]
public partial class BlockNet
{
    [Conv2d(3, 4, kernel: 3, padding: 1)] public partial Conv2d Stem { get; }
    [SubNetwork] public partial ConvBlock Large { get; }
    [SubNetwork] public partial ConvBlock Small { get; }
    [Linear(4 * 4 * 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Stem).Relu().Apply(Large).MaxPool2d(2).Apply(Small).Apply(Small).Flatten().Apply(Head);
}

/// <summary>The float-target losses on one small regressor each.</summary>
[Network, Input(6), L1Loss]
public partial class L1Net
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }
    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head);
}

[Network, Input(6), SmoothL1Loss(Beta = 0.5)]
public partial class SmoothL1Net
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }
    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head);
}

/// <summary>Multi-label: four independent logits per sample.</summary>
[Network, Input(6), BCEWithLogitsLoss]
public partial class MultiLabelNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 4)] public partial Linear Head { get; }
    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Head);
}

/// <summary>Inception-style branches concatenated along the channels, then a concatenation of two feature vectors.</summary>
[Network, Input(3, 8, 8), CrossEntropyLoss]
public partial class BranchNet
{
    [Conv2d(3, 4, kernel: 1)] public partial Conv2d Narrow { get; }
    [Conv2d(3, 4, kernel: 3, padding: 1)] public partial Conv2d Wide { get; }
    [Linear(11 * 4 * 4 * 2, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = Tensor.Concat(1, x.Apply(Narrow), x.Apply(Wide).Relu(), x.MaxPool2d(3, 1, 1)).Relu().MaxPool2d(2).Flatten();
        return Tensor.Concat(-1, h, h.Tanh()).Apply(Head);
    }
}

/// <summary>A ResNet basic block: its width is an argument given where it is applied.</summary>
[Network]
public partial class BasicBlock
{
    private const int Width = BlockArg.A;

    [Conv2d(Width, Width, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv1 { get; }
    [BatchNorm2d(Width)] public partial BatchNorm2d Bn1 { get; }
    [Conv2d(Width, Width, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv2 { get; }
    [BatchNorm2d(Width)] public partial BatchNorm2d Bn2 { get; }

    Tensor Forward(Tensor x) => (x.Apply(Conv1).Apply(Bn1).Relu().Apply(Conv2).Apply(Bn2) + x).Relu();
}

/// <summary>A ResNet down-sampling block with a projection shortcut: widths and stride are its arguments.</summary>
[Network]
public partial class DownBlock
{
    private const int In = BlockArg.A, Out = BlockArg.B, Stride = BlockArg.C;

    [Conv2d(In, Out, kernel: 3, stride: Stride, padding: 1, bias: false)] public partial Conv2d Conv1 { get; }
    [BatchNorm2d(Out)] public partial BatchNorm2d Bn1 { get; }
    [Conv2d(Out, Out, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv2 { get; }
    [BatchNorm2d(Out)] public partial BatchNorm2d Bn2 { get; }
    [Conv2d(In, Out, kernel: 1, stride: Stride, bias: false)] public partial Conv2d Shortcut { get; }
    [BatchNorm2d(Out)] public partial BatchNorm2d ShortcutBn { get; }

    Tensor Forward(Tensor x) => (x.Apply(Conv1).Apply(Bn1).Relu().Apply(Conv2).Apply(Bn2) + x.Apply(Shortcut).Apply(ShortcutBn)).Relu();
}

/// <summary>A small ResNet from the two parameterised blocks: widths 4 → 8, a stride-2 stage, a stack of two blocks.</summary>
[Network, Input(1, 12, 12), CrossEntropyLoss]
public partial class SmallResNet
{
    [Conv2d(1, 4, kernel: 3, padding: 1)] public partial Conv2d Stem { get; }
    [SubNetwork(Args = new[] { 4 })] public partial BasicBlock Stage1 { get; }
    [SubNetwork(Args = new[] { 4, 8, 2 })] public partial DownBlock Down { get; }
    [SubNetwork(2, Args = new[] { 8 })] public partial BasicBlock[] Stage2 { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Stem).Relu().Apply(Stage1).Apply(Down).Apply(Stage2).AdaptiveAvgPool2d(1).Flatten().Apply(Head);
}

/// <summary>BatchNorm1d on features ([C]) and on a signal's channels ([C, L]).</summary>
[Network, Input(4, 10), CrossEntropyLoss]
public partial class Bn1dNet
{
    [BatchNorm1d(4)] public partial BatchNorm1d SignalNorm { get; }
    [Linear(10, 6)] public partial Linear Mix { get; }
    [Linear(4 * 6, 8)] public partial Linear Fc { get; }
    [BatchNorm1d(8, momentum: 0.2)] public partial BatchNorm1d FeatureNorm { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(SignalNorm).Apply(Mix).Relu().Flatten().Apply(Fc).Apply(FeatureNorm).Relu().Apply(Head);
}

/// <summary>log-softmax inside a network (its output read again) and as the last op of a cross-entropy head.</summary>
[Network, Input(12), CrossEntropyLoss]
public partial class LogSoftmaxNet
{
    [Linear(12, 9)] public partial Linear Fc { get; }
    [Linear(9, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Fc).LogSoftmax();
        return (h * h.Tanh()).Apply(Head).LogSoftmax();
    }
}

/// <summary>A classifier ending in LogSoftmax, trained with negative log-likelihood.</summary>
[Network, Input(12), NLLLoss]
public partial class NllNet
{
    [Linear(12, 9)] public partial Linear Fc { get; }
    [Linear(9, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head).LogSoftmax();
}

/// <summary>Token ids → embedding → two stacked bidirectional LSTM layers → masked mean → classifier.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 12), CrossEntropyLoss]
public partial class LstmNet
{
    [Embedding(50, 6)] public partial Embedding Embed { get; }
    [LSTM(6, 5, numLayers: 2, bidirectional: true)] public partial LSTM Rnn { get; }
    [Linear(10, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Apply(Rnn).MeanOverSequence().Apply(Head);
}

/// <summary>Two GRUs of different widths in a row (one bidirectional) sharing the carry region, then the masked mean.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 12), CrossEntropyLoss]
public partial class GruNet
{
    [Embedding(50, 6)] public partial Embedding Embed { get; }
    [GRU(6, 4, bidirectional: true)] public partial GRU Lower { get; }
    [GRU(8, 7, bias: false)] public partial GRU Upper { get; }
    [Linear(7, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Apply(Lower).Tanh().Apply(Upper).MeanOverSequence().Apply(Head);
}

/// <summary>A fixed-length float sequence [7, 4] (no mask) through an LSTM, flattened into a classifier.</summary>
[Network, Input(7, 4), CrossEntropyLoss]
public partial class FixedLstmNet
{
    [LSTM(4, 6)] public partial LSTM Rnn { get; }
    [Linear(42, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Rnn).Flatten().Apply(Head);
}

/// <summary>Two inputs: an image through a small convolution branch and metadata through a Linear, concatenated into the head.</summary>
[Network, Input("image", 1, 8, 8), Input("meta", 4), CrossEntropyLoss]
public partial class TwoInputNet
{
    [Conv2d(1, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4, 6)] public partial Linear Meta { get; }
    [Linear(4 * 4 * 4 + 6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor image, Tensor meta)
    {
        var a = image.Apply(Conv).Relu().MaxPool2d(2).Flatten();
        var b = meta.Apply(Meta).Tanh();
        return Tensor.Concat(-1, a, b).Apply(Head);
    }
}

/// <summary>Token ids and token types (two sequence inputs sharing T and the mask), their embeddings summed as BERT does.</summary>
[Network, Input("ids", Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10), Input("types", Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10), CrossEntropyLoss]
public partial class PairNet
{
    [Embedding(50, 8)] public partial Embedding Words { get; }
    [Embedding(2, 8)] public partial Embedding Types { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids, Tensor types) => (ids.Apply(Words) + types.Apply(Types)).Apply(Norm).MeanOverSequence().Apply(Head);
}

/// <summary>Arithmetic with constants: scaling (also by a const field and a quotient), a gate's complement, shifts.</summary>
[Network, Input(2, 6, 6), CrossEntropyLoss]
public partial class ScaleNet
{
    private const float Half = 0.5f;

    [Conv2d(2, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(144, 20)] public partial Linear Fc { get; }
    [Linear(20, 20)] public partial Linear Gate { get; }
    [Linear(20, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = (x.Apply(Conv) * (1f / 3)).Relu().Flatten().Apply(Fc) * 0.125f;
        var g = h.Apply(Gate).Sigmoid();
        var mixed = g * h + (1f - g) * (h / 4f - 1f);
        return (Half * mixed + 2).Apply(Head);
    }
}

/// <summary>Attention written out by hand over 4 fixed tokens: heads split with Unflatten, reordered with Permute and
/// Transpose, scores from MatMul scaled by a constant, softmax, the heads merged back with Flatten(2).</summary>
[Network, Input(4, 8), CrossEntropyLoss]
public partial class HandAttentionNet
{
    [Linear(8, 8)] public partial Linear Q { get; }
    [Linear(8, 8)] public partial Linear K { get; }
    [Linear(8, 8)] public partial Linear V { get; }
    [Linear(32, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var q = x.Apply(Q).Unflatten(2, 2, 4).Permute(0, 2, 1, 3);     // [2, 4, 4]: heads, tokens, features
        var k = x.Apply(K).Unflatten(2, 2, 4).Permute(0, 2, 3, 1);     // [2, 4, 4]: heads, features, tokens
        var v = x.Apply(V).Unflatten(-1, 2, -1).Transpose(1, 2);       // [2, 4, 4]
        var p = (q.MatMul(k) * 0.5f).Softmax();
        var context = Tensor.MatMul(p, v).Transpose(1, 2).Flatten(2);  // [4, 8]
        return context.Flatten().Apply(Head);
    }
}

/// <summary>Shape methods on a sequence [T, 8] (T stays first) and a product [T, 8] · [8, 1] scoring each position.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10), CrossEntropyLoss]
public partial class SeqShapeNet
{
    [Embedding(50, 8)] public partial Embedding Embed { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Embed).Unflatten(-1, 2, 4).Permute(0, 1, 3, 2).Flatten(2);  // [T, 8]
        var query = h.MeanOverSequence().Unflatten(1, 8, 1);                           // [8, 1]
        var scored = h * h.MatMul(query).Sigmoid();                                    // [T, 8] · [T, 1]
        return scored.MeanOverSequence().Apply(Head);
    }
}

/// <summary>Convolution variants: a 1×3 kernel, a depthwise 3×3 (groups = channels) before a max-pool, a pointwise 1×1,
/// and a grouped convolution with stride (2, 1) and no bias.</summary>
[Network, Input(4, 9, 10), CrossEntropyLoss]
public partial class ConvVariantsNet
{
    [Conv2d(4, 8, 1, KernelWidth = 3, PaddingWidth = 1)] public partial Conv2d Wide { get; }
    [Conv2d(8, 8, 3, padding: 1, Groups = 8)] public partial Conv2d Depthwise { get; }
    [Conv2d(8, 6, 1)] public partial Conv2d Pointwise { get; }
    [Conv2d(6, 6, 3, stride: 2, padding: 1, bias: false, StrideWidth = 1, Groups = 2)] public partial Conv2d Grouped { get; }
    [Linear(6 * 2 * 5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) =>
        x.Apply(Wide).Relu().Apply(Depthwise).MaxPool2d(2).Relu().Apply(Pointwise).Apply(Grouped).Tanh().Flatten().Apply(Head);
}

/// <summary>1-D convolutions over [C, L]: padded, then strided, dilated and grouped, with BatchNorm1d between.</summary>
[Network, Input(3, 20), CrossEntropyLoss]
public partial class Conv1dNet
{
    [Conv1d(3, 8, 5, padding: 2)] public partial Conv1d First { get; }
    [Conv1d(8, 8, 3, stride: 2, dilation: 2, Groups = 4)] public partial Conv1d Second { get; }
    [BatchNorm1d(8)] public partial BatchNorm1d Norm { get; }
    [Linear(8 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(First).Relu().Apply(Second).Apply(Norm).Relu().Flatten().Apply(Head);
}

/// <summary>Cross-entropy with class weights, an ignored label (-100, PyTorch's padding convention) and label smoothing.</summary>
[Network, Input(6), CrossEntropyLoss(LabelSmoothing = 0.1f, Weights = new[] { 1f, 2.5f, 0.5f }, IgnoreIndex = -100)]
public partial class WeightedNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Head);
}

/// <summary>Channel dropout between a convolution and the head.</summary>
[Network, Input(3, 4, 4), CrossEntropyLoss]
public partial class ChannelDropNet
{
    [Conv2d(3, 6, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Dropout2d(0.4)] public partial Dropout2d Drop { get; }
    [Linear(6 * 4 * 4, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Relu().Apply(Drop).Flatten().Apply(Head);
}

/// <summary>An embedding whose padding row (id 0) starts at zeros and never learns.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class PadEmbedNet
{
    [Embedding(20, 4, PaddingIdx = 0)] public partial Embedding Embed { get; }
    [Linear(4, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Tanh().MeanOverSequence().Apply(Head);
}

/// <summary>Block arrays walked in loops: foreach over one stack, a counting for loop over another (averaging each
/// copy with its input), and one copy applied again by index, sharing its weights.</summary>
[Network, Input(8), CrossEntropyLoss]
public partial class LoopNet
{
    [Linear(8, 16)] public partial Linear Stem { get; }
    [SubNetwork(3)] public partial ResidualBlock[] Blocks { get; }
    [SubNetwork(2)] public partial ResidualBlock[] More { get; }
    [Linear(16, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Stem).Relu();
        foreach (var block in Blocks) h = h.Apply(block);
        for (int i = 0; i < More.Length; i++)
        {
            var r = h.Apply(More[i]);
            h = (r + h) * 0.5f;
        }
        h = h.Apply(Blocks[1]);
        return h.Apply(Head);
    }
}

/// <summary>A U-Net step: down through a max-pool and GroupNorm, up again by nearest and bilinear upsampling, the skip
/// connection concatenated.</summary>
[Network, Input(2, 8, 8), CrossEntropyLoss]
public partial class UNetStep
{
    [Conv2d(2, 8, 3, padding: 1)] public partial Conv2d Down { get; }
    [GroupNorm(4, 8)] public partial GroupNorm Norm { get; }
    [Upsample(2)] public partial Upsample Up { get; }
    [Conv2d(16, 4, 1)] public partial Conv2d Merge { get; }
    [Linear(4 * 8 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var skip = x.Apply(Down).Relu();
        var low = skip.MaxPool2d(2).Apply(Norm);
        var up = low.Apply(Up) + low.Upsample(2, UpsampleMode.Bilinear);
        return Tensor.Concat(1, skip, up).Apply(Merge).Silu().Flatten().Apply(Head);
    }
}

/// <summary>Splitting with Narrow: a gated linear unit (one half gates the other) and slices of a feature map's channels and columns.</summary>
[Network, Input(2, 5, 6), CrossEntropyLoss]
public partial class NarrowNet
{
    [Conv2d(2, 6, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 5 * 4, 16)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var map = x.Apply(Conv).Relu().Narrow(1, 1, 4).Narrow(-1, 2, 4);  // [4, 5, 4]
        var h = map.Flatten().Apply(Fc);
        return (h.Narrow(1, 0, 8) * h.Narrow(1, 8, 8).Sigmoid()).Apply(Head);
    }
}

/// <summary>Softmax and log-softmax along dimensions other than the last: over channels and over rows of a feature map.</summary>
[Network, Input(3, 4, 5), CrossEntropyLoss]
public partial class SoftmaxDimNet
{
    [Conv2d(3, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 * 5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv);
        return (h.Softmax(1) * h.LogSoftmax(-2) + h.Softmax(-1)).Flatten().Apply(Head);
    }
}

/// <summary>Distillation-style: log-probabilities trained towards target distributions with the KL divergence per sample.</summary>
[Network, Input(6), KLDivLoss(BatchMean = true)]
public partial class DistillNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Head).LogSoftmax();
}

/// <summary>Two outputs from one trunk: class logits (cross-entropy) and a box (smooth L1, weighted 0.5), and a third
/// output without a loss (the trunk's features, for inspection).</summary>
[Network, Input(1, 8, 8), CrossEntropyLoss(Output = "digit", LabelSmoothing = 0.1f), SmoothL1Loss(Output = "box", Weight = 0.5f, Beta = 0.5)]
public partial class TwoHeadNet
{
    [Conv2d(1, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 * 4, 16)] public partial Linear Trunk { get; }
    [Linear(16, 3)] public partial Linear Classes { get; }
    [Linear(16, 4)] public partial Linear Box { get; }

    (Tensor digit, Tensor box, Tensor features) Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu().MaxPool2d(2).Flatten().Apply(Trunk).Relu();
        return (h.Apply(Classes), h.Apply(Box).Sigmoid(), h);
    }
}

/// <summary>Two inputs and two outputs over a sequence: per-token tags (cross-entropy over [T, 3] is not a classifier
/// output, so MSE on a pooled score instead) and a sentence class.</summary>
[Network, Input("ids", Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10), Input("types", Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10)]
[NLLLoss(Output = "sentence"), MSELoss(Output = "tokens", Weight = 2f)]
public partial class PairTwoHeadNet
{
    [Embedding(50, 8)] public partial Embedding Words { get; }
    [Embedding(2, 8)] public partial Embedding Types { get; }
    [Linear(8, 2)] public partial Linear Tag { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    (Tensor tokens, Tensor sentence) Forward(Tensor ids, Tensor types)
    {
        var h = (ids.Apply(Words) + types.Apply(Types)).Tanh();
        return (h.Apply(Tag), h.MeanOverSequence().Apply(Head).LogSoftmax());
    }
}

/// <summary>Splits: a gated unit's halves by Chunk (deconstructed), sections by Split (a local indexed by constants),
/// and an unequal torch.chunk cut (7 channels in 3 chunks: 3, 3, 1) by index.</summary>
[Network, Input(7, 4, 4), CrossEntropyLoss]
public partial class SplitNet
{
    [Linear(4, 12)] public partial Linear Up { get; }
    [Linear(7 * 4 * 5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var (a, b) = x.Apply(Up).Chunk(2, -1);     // [7, 4, 6] each
        var g = a * b.Sigmoid();
        var parts = g.Split([2, 3, 1], -1);        // [7, 4, 2], [7, 4, 3], [7, 4, 1]
        var last = x.Chunk(3, 1)[2];               // [1, 4, 4]: the last of 3, 3, 1
        var h = Tensor.Concat(-1, parts[0], parts[1].Tanh()) * last.Narrow(-1, 0, 1).Sigmoid();   // gated by [1, 4, 1]
        return h.Flatten().Apply(Head);
    }
}

/// <summary>A Siamese pair: two inputs through one shared encoder, their embeddings compared by a cosine embedding loss
/// (weighted) next to a classifier head on the first.</summary>
[Network, Input("left", 6), Input("right", 6)]
[CosineEmbeddingLoss(Output = "a", Second = "b", Margin = 0.2, Weight = 0.5f), CrossEntropyLoss(Output = "kind")]
public partial class SiameseNet
{
    [Linear(6, 8)] public partial Linear Encoder { get; }
    [Linear(8, 5)] public partial Linear Project { get; }
    [Linear(5, 3)] public partial Linear Head { get; }

    (Tensor a, Tensor b, Tensor kind) Forward(Tensor left, Tensor right)
    {
        var a = left.Apply(Encoder).Tanh().Apply(Project);
        var b = right.Apply(Encoder).Tanh().Apply(Project);
        return (a, b, a.Apply(Head));
    }
}

/// <summary>NLL with class weights and an ignored label, on log-probabilities.</summary>
[Network, Input(6), NLLLoss(Weights = new[] { 0.5f, 2f, 1f }, IgnoreIndex = -100)]
public partial class WeightedNllNet
{
    [Linear(6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Head).Tanh().LogSoftmax();
}

/// <summary>An MLP trained by a loss written as a method: the squared error, as a PyTorch user writes it.</summary>
[Network, Input(5), CustomLoss(nameof(SquaredError))]
public partial class CustomMseNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);

    public Tensor SquaredError(Tensor output, Tensor target)
    {
        var d = output - target;
        return (d * d).Mean();
    }
}

/// <summary>The same MLP with the built-in MSE loss (the same parameter names, so the same initialisation).</summary>
[Network, Input(5), MSELoss]
public partial class BuiltInMseNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);
}

/// <summary>A pinball (quantile 0.9) loss written as a method, from ReLUs and constants.</summary>
[Network, Input(5), CustomLoss(nameof(Pinball))]
public partial class QuantileNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Out);

    public Tensor Pinball(Tensor output, Tensor target)
    {
        var d = target - output;
        return d.Relu() * 0.9f + (0f - d).Relu() * 0.1f;
    }
}

/// <summary>Huber's loss (δ = 1) written as a method with Abs: PyTorch's smooth L1 with β = 1, which BuiltInSmoothL1Net uses.</summary>
[Network, Input(5), CustomLoss(nameof(Huber))]
public partial class HuberMethodNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);

    public Tensor Huber(Tensor output, Tensor target)
    {
        var a = (output - target).Abs();
        var m = a - (a - 1f).Relu();       // min(|d|, 1)
        return m * m * 0.5f + (a - m);
    }
}

/// <summary>The same MLP with the built-in smooth L1 loss.</summary>
[Network, Input(5), SmoothL1Loss]
public partial class BuiltInSmoothL1Net
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);
}

/// <summary>Abs, Exp and Log in Forward, fused after a Linear's bias and after each other.</summary>
[Network, Input(6), CrossEntropyLoss]
public partial class ExpLogNet
{
    [Linear(6, 5)] public partial Linear Fc { get; }
    [Linear(5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => (x.Apply(Fc).Abs() + 1f).Log().Apply(Head).Tanh().Exp();
}

/// <summary>Cross-entropy written as a method on class indices: the true class's log-probability picked by OneHot and Sum.</summary>
[Network, Input(5), CustomLoss(nameof(CrossEntropy), ClassIndices = true)]
public partial class CrossEntropyMethodNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);

    public Tensor CrossEntropy(Tensor logits, Tensor labels) => 0f - (logits.LogSoftmax() * labels.OneHot(3)).Sum(-1);
}

/// <summary>The same MLP with the built-in cross-entropy.</summary>
[Network, Input(5), CrossEntropyLoss]
public partial class BuiltInCrossEntropyNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(4, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Out);
}

/// <summary>A focal loss (γ = 2, Lin et al. 2017) on class indices: −(1 − p)² log p of the true class, which weighs easy
/// samples down.</summary>
[Network, Input(6), CustomLoss(nameof(Focal), ClassIndices = true)]
public partial class FocalNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head);

    public Tensor Focal(Tensor logits, Tensor labels)
    {
        var logp = (logits.LogSoftmax() * labels.OneHot(3)).Sum(1);   // log p of the true class, one per sample
        var w = 1f - logp.Exp();
        return 0f - w * w * logp;
    }
}

/// <summary>Sums and means over single dimensions: a gate from the sum over channels kept for broadcasting, then the mean
/// over columns.</summary>
[Network, Input(3, 4, 5), CrossEntropyLoss]
public partial class ReduceNet
{
    [Conv2d(3, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Tanh();                            // [4, 4, 5]
        var gated = h * h.Sum(1, keepDim: true).Sigmoid();       // [4, 4, 5] × [1, 4, 5]
        return gated.Mean(-1).Flatten().Apply(Head);             // [4, 4] → 16
    }
}

/// <summary>Token ids as one-hot rows (a bag of tokens without an embedding table), summed over positions.</summary>
[Network, Input(6, Kind = InputKind.TokenIds), CrossEntropyLoss]
public partial class OneHotTokenNet
{
    [Linear(7, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.OneHot(7).Sum(1).Apply(Head);
}

/// <summary>Two heads with built-in losses: cross-entropy on the digit, MSE (weighted 0.5) on the box.</summary>
[Network, Input(1, 8, 8), CrossEntropyLoss(Output = "digit"), MSELoss(Output = "box", Weight = 0.5f)]
public partial class TwoHeadMseNet
{
    [Conv2d(1, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 * 4, 16)] public partial Linear Trunk { get; }
    [Linear(16, 3)] public partial Linear Classes { get; }
    [Linear(16, 4)] public partial Linear Box { get; }

    (Tensor digit, Tensor box) Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu().MaxPool2d(2).Flatten().Apply(Trunk).Relu();
        return (h.Apply(Classes), h.Apply(Box).Sigmoid());
    }
}

/// <summary>The same two heads, the box trained by a squared-error method among the outputs' losses.</summary>
[Network, Input(1, 8, 8), CrossEntropyLoss(Output = "digit"), CustomLoss(nameof(Squared), Output = "box", Weight = 0.5f)]
public partial class TwoHeadMethodNet
{
    [Conv2d(1, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 * 4, 16)] public partial Linear Trunk { get; }
    [Linear(16, 3)] public partial Linear Classes { get; }
    [Linear(16, 4)] public partial Linear Box { get; }

    (Tensor digit, Tensor box) Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu().MaxPool2d(2).Flatten().Apply(Trunk).Relu();
        return (h.Apply(Classes), h.Apply(Box).Sigmoid());
    }

    public Tensor Squared(Tensor output, Tensor target)
    {
        var d = output - target;
        return d * d;
    }
}

/// <summary>The same two heads, the digit trained by a cross-entropy method on class indices.</summary>
[Network, Input(1, 8, 8), CustomLoss(nameof(CrossEntropy), Output = "digit", ClassIndices = true), MSELoss(Output = "box", Weight = 0.5f)]
public partial class TwoHeadClassMethodNet
{
    [Conv2d(1, 4, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 * 4, 16)] public partial Linear Trunk { get; }
    [Linear(16, 3)] public partial Linear Classes { get; }
    [Linear(16, 4)] public partial Linear Box { get; }

    (Tensor digit, Tensor box) Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu().MaxPool2d(2).Flatten().Apply(Trunk).Relu();
        return (h.Apply(Classes), h.Apply(Box).Sigmoid());
    }

    public Tensor CrossEntropy(Tensor logits, Tensor labels) => 0f - (logits.LogSoftmax() * labels.OneHot(3)).Sum(-1);
}

/// <summary>Attention pooling over the tokens: a score per position, a softmax over T (padding gets no weight), the
/// weighted sum over T, next to the masked mean over T.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 16), CrossEntropyLoss]
public partial class AttentionPoolNet
{
    [Embedding(50, 8)] public partial Embedding Words { get; }
    [Linear(8, 1)] public partial Linear Score { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Tanh();                    // [T, 8]
        var weights = h.Apply(Score).Softmax(1);            // [T, 1], over T
        return ((h * weights).Sum(1) + h.Mean(1)).Apply(Head);
    }
}

/// <summary>View and Reshape: a Linear's features viewed as two 4×4 maps for a convolution, reshaped back to a vector.</summary>
[Network, Input(12), CrossEntropyLoss]
public partial class ReshapeNet
{
    [Linear(12, 32)] public partial Linear Fc { get; }
    [Conv2d(2, 3, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(48, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().View(-1, 2, 4, 4).Apply(Conv).Relu().Reshape(-1, 48).Apply(Head);
}

/// <summary>A decoder step: a strided convolution down, transposed convolutions back up (stride 2 with output padding,
/// then a 2×2 stride-2 one without bias, as DCGAN's), a skip connection, and the downsampled map read twice (so the
/// first transposed convolution adds to its input gradient instead of writing it).</summary>
[Network, Input(2, 8, 8), CrossEntropyLoss]
public partial class DecoderNet
{
    [Conv2d(2, 4, 3, stride: 2, padding: 1)] public partial Conv2d Down { get; }
    [ConvTranspose2d(4, 3, 3, stride: 2, padding: 1, outputPadding: 1)] public partial ConvTranspose2d Up { get; }
    [Conv2d(2, 3, 1)] public partial Conv2d Skip { get; }
    [ConvTranspose2d(3, 2, 2, stride: 2, bias: false)] public partial ConvTranspose2d Up2 { get; }
    [Linear(2 * 16 * 16 + 4 * 4 * 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var d = x.Apply(Down).Relu();                       // [4, 4, 4]
        var u = (d.Apply(Up) + x.Apply(Skip)).Relu();        // [3, 8, 8]
        return Tensor.Concat(-1, u.Apply(Up2).Flatten(), d.Flatten()).Apply(Head);
    }
}
