namespace Compiled.Nets.Gpu.Tests;

/// <summary>The seed ConvNet on Fashion-MNIST's 1×28×28 input.</summary>
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

/// <summary>Residual adds, strided and padded convolutions, an overlapping max-pool, every activation the chains fuse
/// (after a convolution's in-kernel bias, after a Linear's chained bias, alone after an add), label smoothing, and an
/// internal class (its kernels need the generated InternalsVisibleTo).</summary>
[Network, Input(2, 9, 9), CrossEntropyLoss(LabelSmoothing = 0.1f)]
internal partial class ResidualConvNet
{
    [Conv2d(2, 6, kernel: 3, padding: 1)] public partial Conv2d Conv1 { get; }
    [Conv2d(6, 6, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv2 { get; }
    [Conv2d(6, 5, kernel: 3, stride: 2)] public partial Conv2d Down { get; }
    [Linear(5 * 2 * 2, 12)] public partial Linear Fc1 { get; }
    [Linear(12, 12)] public partial Linear Fc2 { get; }
    [Linear(12, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv1).LeakyRelu(0.1);
        h = (h.Apply(Conv2).Tanh() + h).Relu();
        h = h.Apply(Down).MaxPool2d(3, 1).Silu().Flatten();
        var z = h.Apply(Fc1).Gelu();
        z = (z.Apply(Fc2).Sigmoid() + z).Elu().Hardswish();
        return z.Apply(Head);
    }
}

/// <summary>BatchNorm2d and BatchNorm1d in a residual network with global average pooling (a ResNet's parts).</summary>
[Network, Input(3, 8, 8), CrossEntropyLoss]
public partial class BnResNet
{
    [Conv2d(3, 6, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv1 { get; }
    [BatchNorm2d(6)] public partial BatchNorm2d Bn1 { get; }
    [Conv2d(6, 6, kernel: 3, padding: 1, bias: false)] public partial Conv2d Conv2 { get; }
    [BatchNorm2d(6)] public partial BatchNorm2d Bn2 { get; }
    [Linear(6 * 2 * 2, 8)] public partial Linear Fc { get; }
    [BatchNorm1d(8)] public partial BatchNorm1d Bn3 { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv1).Apply(Bn1).Relu();
        h = (h.Apply(Conv2).Apply(Bn2) + h).Relu();
        return h.AdaptiveAvgPool2d(2).Flatten().Apply(Fc).Apply(Bn3).Relu().Apply(Head);
    }
}

/// <summary>An MLP with LayerNorm on features and on a [4, 6] input's rows, GELU and tanh.</summary>
[Network, Input(4, 6), CrossEntropyLoss]
public partial class NormMlp
{
    [LayerNorm(6)] public partial LayerNorm RowNorm { get; }
    [Linear(6, 10)] public partial Linear Fc1 { get; }
    [Linear(4 * 10, 12)] public partial Linear Fc2 { get; }
    [LayerNorm(12)] public partial LayerNorm Norm { get; }
    [Linear(12, 5)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(RowNorm).Apply(Fc1).Tanh().Flatten().Apply(Fc2).Apply(Norm).Gelu().Apply(Head);
}

/// <summary>Dropout right before the logits: what the device's mask did can be read off the logits.</summary>
[Network, Input(64), CrossEntropyLoss]
public partial class DropHead
{
    [Linear(64, 200)] public partial Linear Fc { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Dropout(0.3);
}

/// <summary>Two branches concatenated along channels (Inception-style), average pooling with padding, and a
/// concatenation along features.</summary>
[Network, Input(2, 7, 7), CrossEntropyLoss]
public partial class BranchNet
{
    [Conv2d(2, 3, kernel: 1)] public partial Conv2d Narrow { get; }
    [Conv2d(2, 4, kernel: 3, padding: 1)] public partial Conv2d Wide { get; }
    [Linear(7 * 4 * 4, 6)] public partial Linear Fc { get; }
    [Linear(7 * 4 * 4 + 6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = Tensor.Concat(1, x.Apply(Narrow).Relu(), x.Apply(Wide).Tanh()).AvgPool2d(3, 2, 1).Flatten();
        return Tensor.Concat(1, h, h.Apply(Fc).Sigmoid()).Apply(Head);
    }
}

/// <summary>Softmax and log-softmax inside a network (over the last dimension of [3, 5] rows and of features).</summary>
[Network, Input(3, 5), CrossEntropyLoss]
public partial class SoftNet
{
    [Linear(5, 4)] public partial Linear Fc { get; }
    [Linear(3 * 4, 6)] public partial Linear Mid { get; }
    [Linear(6, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Softmax().Flatten().Apply(Mid).LogSoftmax().Apply(Head);
}

/// <summary>Squeeze-and-excitation gating (a·b broadcast over H×W) and centring (a − b broadcast), on both operands' sides.</summary>
[Network, Input(4, 3, 3), CrossEntropyLoss]
public partial class GateNet
{
    [Conv2d(4, 4, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
    [Conv2d(4, 4, kernel: 1)] public partial Conv2d Excite { get; }
    [Linear(4 * 3 * 3, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Relu();
        var gate = h.AdaptiveAvgPool2d(1).Apply(Excite).Sigmoid();   // [4, 1, 1]
        h = gate * h - h.AdaptiveAvgPool2d(1);
        return (h * x).Flatten().Apply(Head);
    }
}

/// <summary>A network the GPU backend cannot run yet (a loss written as a method): ToDevice says so.</summary>
[Network, Input(5), CustomLoss(nameof(Pinball))]
public partial class QuantileNet
{
    [Linear(5, 3)] public partial Linear Out { get; }

    Tensor Forward(Tensor x) => x.Apply(Out);

    public Tensor Pinball(Tensor output, Tensor target)
    {
        var d = target - output;
        return d.Relu() * 0.9f + (0f - d).Relu() * 0.1f;
    }
}

/// <summary>Two inputs: an image through a small convolution, token ids through an embedding, and metadata, concatenated
/// into the head.</summary>
[Network, Input("image", 1, 6, 6), Input("tags", 3, Kind = InputKind.TokenIds), Input("meta", 4), CrossEntropyLoss]
public partial class TwoInputNet
{
    [Conv2d(1, 2, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Embedding(9, 2)] public partial Embedding Tags { get; }
    [Linear(2 * 3 * 3 + 3 * 2 + 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor image, Tensor tags, Tensor meta) =>
        Tensor.Concat(-1, image.Apply(Conv).Relu().MaxPool2d(2).Flatten(), tags.Apply(Tags).Flatten(), meta).Apply(Head);
}

/// <summary>Two heads and an output without a loss: a class (cross-entropy with smoothing) and a box (smooth L1, weight
/// 0.5) from a shared trunk, whose features are the third output.</summary>
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

/// <summary>Token ids → embedding → two stacked bidirectional LSTM layers → masked mean → classifier.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), CrossEntropyLoss]
public partial class LstmNet
{
    [Embedding(30, 6)] public partial Embedding Embed { get; }
    [LSTM(6, 5, numLayers: 2, bidirectional: true)] public partial LSTM Rnn { get; }
    [Linear(10, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Apply(Rnn).MeanOverSequence().Apply(Head);
}

/// <summary>Two GRUs of different widths in a row (one bidirectional, one without biases), then the masked mean.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), CrossEntropyLoss]
public partial class GruNet
{
    [Embedding(30, 6)] public partial Embedding Embed { get; }
    [GRU(6, 4, bidirectional: true)] public partial GRU Lower { get; }
    [GRU(8, 7, bias: false)] public partial GRU Upper { get; }
    [Linear(7, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Apply(Lower).Tanh().Apply(Upper).MeanOverSequence().Apply(Head);
}

/// <summary>A fixed-length float sequence [7, 4] (no mask) through a three-layer LSTM, flattened into a classifier.</summary>
[Network, Input(7, 4), CrossEntropyLoss]
public partial class FixedLstmNet
{
    [LSTM(4, 6, numLayers: 3)] public partial LSTM Rnn { get; }
    [Linear(42, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Rnn).Flatten().Apply(Head);
}

/// <summary>
/// A two-layer BERT in miniature (hidden 16, 4 heads, intermediate 32) with Hugging Face's names: token, position and
/// token-type embeddings, LayerNorm, encoder layers of masked self-attention, residual + LayerNorm and a GELU
/// feed-forward, the pooler's tanh over [CLS] and a classifier, plus the masked mean of the last layer beside [CLS].
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
        return (h.SelectToken(0).Apply(Pooler).Tanh() + h.MeanOverSequence()).Apply(Classifier);
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

/// <summary>BERT's dropouts (after the embeddings, in attention, after each projection) on the device: evaluation
/// matches the CPU, training draws reproducible masks.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 10), CrossEntropyLoss]
public partial class DropBert
{
    [Embedding(30, 8)] public partial Embedding Words { get; }
    [PositionEmbedding(10, 8)] public partial PositionEmbedding Positions { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }
    [Dropout(0.1)] public partial Dropout Drop { get; }
    [SelfAttention(8, heads: 2, dropout: 0.5)] public partial SelfAttention Attention { get; }
    [Linear(8, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Apply(Positions).Apply(Norm).Apply(Drop);
        return (h.Apply(Attention).Apply(Drop) + h).SelectToken(0).Apply(Head);
    }
}

/// <summary>
/// BERT's dense → dropout → + x → LayerNorm twice over a padded sequence: a dense layer with its bias, the branch the
/// add's first operand; one without, its second. The device's layer norms apply each chain as they read it.
/// </summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class DropNormNet
{
    [Embedding(30, 8)] public partial Embedding Words { get; }
    [Linear(8, 8)] public partial Linear Dense { get; }
    [Linear(8, 8, bias: false)] public partial Linear Plain { get; }
    [LayerNorm(8)] public partial LayerNorm Norm1 { get; }
    [LayerNorm(8)] public partial LayerNorm Norm2 { get; }
    [Dropout(0.3)] public partial Dropout Drop { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words);
        var a = (h.Apply(Dense).Apply(Drop) + h).Apply(Norm1);
        var b = (a + a.Apply(Plain).Apply(Drop)).Apply(Norm2);
        return b.MeanOverSequence().Apply(Head);
    }
}

/// <summary>
/// <see cref="DropNormNet"/>'s arithmetic with each residual sum read once more (times zero, added after the last
/// dropout, so the dropouts keep their op ids and masks): no layer norm may take its sum in, so the device runs each
/// chain, add and norm as kernels of their own — the reference for the fused path.
/// </summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class DropNormNetUnfused
{
    [Embedding(30, 8)] public partial Embedding Words { get; }
    [Linear(8, 8)] public partial Linear Dense { get; }
    [Linear(8, 8, bias: false)] public partial Linear Plain { get; }
    [LayerNorm(8)] public partial LayerNorm Norm1 { get; }
    [LayerNorm(8)] public partial LayerNorm Norm2 { get; }
    [Dropout(0.3)] public partial Dropout Drop { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words);
        var s1 = h.Apply(Dense).Apply(Drop) + h;
        var a = s1.Apply(Norm1);
        var s2 = a + a.Apply(Plain).Apply(Drop);
        var b = s2.Apply(Norm2);
        return (b.MeanOverSequence() + (s1.MeanOverSequence() + s2.MeanOverSequence()) * 0f).Apply(Head);
    }
}

/// <summary>Self-attention over a fixed-length float sequence (no mask), between two Linears.</summary>
[Network, Input(5, 6), CrossEntropyLoss]
public partial class FixedAttentionNet
{
    [Linear(6, 8)] public partial Linear In { get; }
    [SelfAttention(8, heads: 2)] public partial SelfAttention Attention { get; }
    [Linear(5 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(In).Relu().Apply(Attention).Flatten().Apply(Head);
}

/// <summary>Arithmetic with constants (scaling, a gate's complement, shifts) as stages of the fused chains.</summary>
[Network, Input(2, 4, 4), CrossEntropyLoss]
public partial class ScaleNet
{
    [Conv2d(2, 3, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(3 * 4 * 4, 6)] public partial Linear Fc { get; }
    [Linear(6, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = (x.Apply(Conv) * 0.5f).Relu().Flatten().Apply(Fc).Sigmoid();
        return ((1f - h) * h / 4f + 2f).Apply(Head);
    }
}

/// <summary>A non-square kernel with its own horizontal stride and padding: the device's im2col takes them as they are.</summary>
[Network, Input(2, 5, 7), CrossEntropyLoss]
public partial class WideKernelNet
{
    [Conv2d(2, 3, 1, stride: 2, KernelWidth = 3, StrideWidth = 1, PaddingWidth = 1)] public partial Conv2d Conv { get; }
    [Linear(3 * 3 * 7, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Relu().Flatten().Apply(Head);
}

/// <summary>Grouped convolutions (neither ordinary nor depthwise): two groups of 2 → 3 channels with a bias, then
/// three groups of 2 → 1 with stride 2 and no bias, whose input gradient flows back into the first.</summary>
[Network, Input(4, 5, 5), CrossEntropyLoss]
public partial class TwoGroupNet
{
    [Conv2d(4, 6, 3, padding: 1, Groups = 2)] public partial Conv2d Conv { get; }
    [Conv2d(6, 3, 3, stride: 2, padding: 1, bias: false, Groups = 3)] public partial Conv2d Down { get; }
    [Linear(3 * 3 * 3, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Relu().Apply(Down).Flatten().Apply(Head);
}

/// <summary>Depthwise convolutions on the device: 3×3 with padding and a bias, then stride 2 with two outputs per channel
/// and dilation 2 without one, between pointwise ones (a MobileNet block).</summary>
[Network, Input(4, 9, 9), CrossEntropyLoss]
public partial class DepthwiseNet
{
    [Conv2d(4, 4, 3, padding: 1, Groups = 4)] public partial Conv2d Dw1 { get; }
    [Conv2d(4, 6, 1)] public partial Conv2d Pw { get; }
    [Conv2d(6, 12, 3, stride: 2, padding: 2, dilation: 2, bias: false, Groups = 6)] public partial Conv2d Dw2 { get; }
    [Linear(12 * 5 * 5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Dw1).Relu().Apply(Pw).Relu().Apply(Dw2).Flatten().Apply(Head);
}

/// <summary>Views the device takes as they are: a feature vector unflattened into rows, a LayerNorm per row, flattened back from dimension 1.</summary>
[Network, Input(12), CrossEntropyLoss]
public partial class ViewNet
{
    [Linear(12, 12)] public partial Linear Fc { get; }
    [LayerNorm(4)] public partial LayerNorm Norm { get; }
    [Linear(12, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Unflatten(1, 3, 4).Apply(Norm).Relu().Flatten(1).Apply(Head);
}

/// <summary>Abs, Log and Exp stages, Narrow slices, a Sum and a Mean along dimensions (one kept for broadcasting) and
/// views: the newer ops of the CPU path on the device.</summary>
[Network, Input(3, 4, 5), CrossEntropyLoss]
public partial class SliceReduceNet
{
    [Conv2d(3, 6, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(4 * 4 + 2 * 5, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv);                                     // [6, 4, 5]
        var a = (h.Abs() + 1f).Log().Narrow(1, 1, 4);               // [4, 4, 5]
        var s = a.Sum(-1);                                          // [4, 4]
        var m = h.Narrow(1, 0, 2).Tanh().Exp().Mean(2, keepDim: true);   // [2, 1, 5]
        return Tensor.Concat(-1, s.View(-1, 16), m.Reshape(-1, 10)).Apply(Head);
    }
}

/// <summary>A decoder step on the device: a strided convolution down, transposed convolutions back up (with output
/// padding and bias; 2×2 stride 2 without), and the downsampled map read twice.</summary>
[Network, Input(2, 8, 8), CrossEntropyLoss]
public partial class DecoderNet
{
    [Conv2d(2, 4, 3, stride: 2, padding: 1)] public partial Conv2d Down { get; }
    [ConvTranspose2d(4, 3, 3, stride: 2, padding: 1, outputPadding: 1)] public partial ConvTranspose2d Up { get; }
    [ConvTranspose2d(3, 2, 2, stride: 2, bias: false)] public partial ConvTranspose2d Up2 { get; }
    [Linear(2 * 16 * 16 + 4 * 4 * 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var d = x.Apply(Down).Relu();
        var u = d.Apply(Up).Relu();
        return Tensor.Concat(-1, u.Apply(Up2).Flatten(), d.Flatten()).Apply(Head);
    }
}

/// <summary>A 1-D convolution over a sequence of features laid out [L, C] (transposed to [C, L] first, as PyTorch
/// users do), a depthwise one, and a permutation back: Conv1d and Permute/Transpose on the device.</summary>
[Network, Input(12, 3), CrossEntropyLoss]
public partial class Conv1dPermuteNet
{
    [Conv1d(3, 6, 3, padding: 1)] public partial Conv1d Conv { get; }
    [Conv1d(6, 6, 5, stride: 2, padding: 2, Groups = 6)] public partial Conv1d Depthwise { get; }
    [Linear(6, 4)] public partial Linear Mix { get; }
    [Linear(6 * 4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Transpose(1, 2).Apply(Conv).Relu().Apply(Depthwise);   // [3, 12] → [6, 12] → [6, 6]
        return h.Permute(0, 2, 1).Apply(Mix).Tanh().Flatten().Apply(Head); // [6, 6] → [6, 4] → 24
    }
}

/// <summary>Nearest and bilinear upsampling on the device (as a U-Net's decoder does), summed.</summary>
[Network, Input(2, 5, 5), CrossEntropyLoss]
public partial class UpsampleNet
{
    [Conv2d(2, 3, 3, padding: 1)] public partial Conv2d Conv { get; }
    [Upsample(2)] public partial Upsample Up { get; }
    [Linear(3 * 15 * 15, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x)
    {
        var h = x.Apply(Conv).Tanh();
        return (h.Apply(Up).Upsample(2, UpsampleMode.Bilinear).Narrow(2, 2, 15).Narrow(3, 1, 15) + h.Upsample(3, UpsampleMode.Bilinear)).Flatten().Apply(Head);
    }
}

/// <summary>GroupNorm on the device: groups of two channels over 6×6 maps between convolutions (a diffusion U-Net's norm).</summary>
[Network, Input(2, 6, 6), CrossEntropyLoss]
public partial class GroupNormNet
{
    [Conv2d(2, 8, 3, padding: 1)] public partial Conv2d Conv { get; }
    [GroupNorm(4, 8)] public partial GroupNorm Norm { get; }
    [Conv2d(8, 4, 3, padding: 1)] public partial Conv2d Conv2 { get; }
    [Linear(4 * 6 * 6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Apply(Norm).Silu().Apply(Conv2).Flatten().Apply(Head);
}

/// <summary>Token ids of a fixed length on the device: an embedding with a padding row, a LayerNorm and a head.</summary>
[Network, Input(6, Kind = InputKind.TokenIds), CrossEntropyLoss]
public partial class TokenNet
{
    [Embedding(20, 8, PaddingIdx = 0)] public partial Embedding Words { get; }
    [LayerNorm(8)] public partial LayerNorm Norm { get; }
    [Linear(6 * 8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Words).Apply(Norm).Gelu().Flatten().Apply(Head);
}

/// <summary>A regressor on the device: MSE over a [3] output after a fused bias + tanh chain and a LayerNorm.</summary>
[Network, Input(2, 5, 5), MSELoss]
public partial class MseNet
{
    [Conv2d(2, 3, kernel: 3, padding: 1)] public partial Conv2d Conv { get; }
    [Linear(3 * 5 * 5, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Relu().Flatten().Apply(Fc).Tanh().Apply(Head);
}

/// <summary>Mean absolute error on the device.</summary>
[Network, Input(6), L1Loss]
public partial class L1Net
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Gelu().Apply(Head);
}

/// <summary>Smooth L1 with β = 0.5 on the device (both of its branches are taken by the test's targets).</summary>
[Network, Input(6), SmoothL1Loss(Beta = 0.5)]
public partial class SmoothL1Net
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Head);
}

/// <summary>Binary cross-entropy on logits on the device (multi-label: 5 independent logits per sample).</summary>
[Network, Input(6), BCEWithLogitsLoss]
public partial class BceNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 5)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Silu().Apply(Head);
}

/// <summary>Attention written out by hand over 4 fixed tokens: heads by Unflatten/Permute/Transpose, scores by a
/// batched MatMul scaled by a constant, softmax, the context by a second MatMul, the heads merged back.</summary>
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

/// <summary>Token ids read twice: through an embedding and as one-hot rows (the ids are checked against the smaller
/// width, 10); the two concatenated before the head.</summary>
[Network, Input(5, Kind = InputKind.TokenIds), CrossEntropyLoss]
public partial class OneHotNet
{
    [Embedding(12, 4)] public partial Embedding Embed { get; }
    [Linear(5 * 4 + 5 * 10, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => Tensor.Concat(-1, ids.Apply(Embed).Flatten(), ids.OneHot(10).Flatten()).Apply(Head);
}

/// <summary>A product along the sequence: each position [T, 8] scored against the sequence's masked mean [8, 1].</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), CrossEntropyLoss]
public partial class SeqMatMulNet
{
    [Embedding(30, 8)] public partial Embedding Embed { get; }
    [Linear(8, 8)] public partial Linear Mix { get; }
    [Linear(9, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Embed).Apply(Mix).Tanh();                    // [T, 8]
        var pooled = h.MeanOverSequence();                            // [8]
        var scores = h.MatMul(pooled.Unflatten(1, 8, 1)).Sigmoid();   // [T, 1]
        return Tensor.Concat(-1, pooled, scores.MeanOverSequence()).Apply(Head);
    }
}

/// <summary>Attention pooling over the tokens: a score per position, a softmax over T (padding gets no weight), the
/// weighted sum over T beside the masked mean over T, and a softmax along a fixed dimension of a [T, 2, 4] view.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 11), CrossEntropyLoss]
public partial class AttentionPoolNet
{
    [Embedding(40, 8)] public partial Embedding Words { get; }
    [Linear(8, 1)] public partial Linear Score { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Words).Tanh();                          // [T, 8]
        var weights = h.Apply(Score).Softmax(1);                  // [T, 1], over T
        var mixed = h.Unflatten(2, 2, 4).Softmax(2).Flatten(2);  // [T, 8]: a softmax over the 2 of each [2, 4]
        return ((h * weights).Sum(1) + mixed.Mean(1)).Apply(Head);
    }
}

/// <summary>NLL on log-probabilities (a LogSoftmax after the head) on the device.</summary>
[Network, Input(12), NLLLoss]
public partial class NllNet
{
    [Linear(12, 9)] public partial Linear Fc { get; }
    [Linear(9, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head).LogSoftmax();
}

/// <summary>Cross-entropy with class weights, an ignored label and label smoothing on the device.</summary>
[Network, Input(6), CrossEntropyLoss(LabelSmoothing = 0.1f, Weights = new[] { 1f, 2.5f, 0.5f }, IgnoreIndex = -100)]
public partial class WeightedNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Relu().Apply(Head);
}

/// <summary>NLL with class weights and an ignored label on the device.</summary>
[Network, Input(6), NLLLoss(Weights = new[] { 0.5f, 2f, 1f }, IgnoreIndex = -100)]
public partial class WeightedNllNet
{
    [Linear(6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Head).LogSoftmax();
}

/// <summary>KL divergence of target distributions from log-probabilities ('batchmean') on the device.</summary>
[Network, Input(6), KLDivLoss(BatchMean = true)]
public partial class KlNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head).LogSoftmax();
}

/// <summary>KL divergence averaged over every element (PyTorch's default 'mean').</summary>
[Network, Input(6), KLDivLoss]
public partial class KlMeanNet
{
    [Linear(6, 4)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Head).LogSoftmax();
}

/// <summary>Arithmetic along a sequence with an operand that does not run along it: each position centred by the
/// sequence's masked mean kept as [1, 8], then gated per feature by a [8] vector computed from it.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class SeqBroadcastNet
{
    [Embedding(30, 8)] public partial Embedding Embed { get; }
    [Linear(8, 8)] public partial Linear Gate { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Embed).Tanh();                                  // [T, 8]
        var centred = h - h.Mean(1, keepDim: true);                       // [T, 8] − [1, 8]
        var gated = centred * h.MeanOverSequence().Apply(Gate).Sigmoid(); // [T, 8] · [8]
        return gated.Sum(1).Apply(Head);
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

/// <summary>Two sequence inputs and two outputs: per-token targets [T, 2] (MSE, weight 2) and a sentence class (NLL).</summary>
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

/// <summary>A float sequence [T, 4] regressed per position to [T, 2] (MSE): the output itself runs along T.</summary>
[Network, Input(Dim.Sequence, 4, MaxSequence = 10), MSELoss]
public partial class SeqRegressor
{
    [Linear(4, 6)] public partial Linear Fc1 { get; }
    [Linear(6, 2)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc1).Tanh().Softmax().Apply(Fc2);
}

/// <summary>Per-position distributions [T, 3] fitted with KL's 'batchmean' (the sum over every position and class
/// divided by the batch, as PyTorch divides by the input's first dimension).</summary>
[Network, Input(Dim.Sequence, 4, MaxSequence = 10), KLDivLoss(BatchMean = true)]
public partial class SeqKlNet
{
    [Linear(4, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Head).Tanh().LogSoftmax();
}

/// <summary>A float sequence [T, 3] classified through an LSTM and the masked mean.</summary>
[Network, Input(Dim.Sequence, 3, MaxSequence = 8), CrossEntropyLoss]
public partial class FloatSequenceNet
{
    [LSTM(3, 5)] public partial LSTM Rnn { get; }
    [Linear(5, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Rnn).MeanOverSequence().Apply(Head);
}

/// <summary>A siamese encoder: the cosine embedding loss of its two outputs (weighted) beside a classifier head on the first.</summary>
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

/// <summary>A focal loss (γ = 2) written as a method on class indices: the labels read as one-hot rows on the device.</summary>
[Network, Input(6), CustomLoss(nameof(Focal), ClassIndices = true)]
public partial class FocalNet
{
    [Linear(6, 8)] public partial Linear Fc { get; }
    [Linear(8, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc).Tanh().Apply(Head);

    public Tensor Focal(Tensor logits, Tensor labels)
    {
        var logp = (logits.LogSoftmax() * labels.OneHot(3)).Sum(1);
        var w = 1f - logp.Exp();
        return 0f - w * w * logp;
    }
}

/// <summary>A loss method beside a second output's MSE (weighted): its ops run in the twin's passes.</summary>
[Network, Input(4), CustomLoss(nameof(Gap), Output = "a", Weight = 0.5f), MSELoss(Output = "b")]
public partial class TwoOutputMethodNet
{
    [Linear(4, 2)] public partial Linear A { get; }
    [Linear(4, 2)] public partial Linear B { get; }

    (Tensor a, Tensor b) Forward(Tensor x) => (x.Apply(A), x.Apply(B));

    public Tensor Gap(Tensor output, Tensor target) => (output - target).Abs();
}

/// <summary>A loss method over a per-position output [T, 2] of a float sequence (its mean counts every position of T).</summary>
[Network, Input(Dim.Sequence, 4, MaxSequence = 10), CustomLoss(nameof(Squared))]
public partial class SeqMethodNet
{
    [Linear(4, 5)] public partial Linear Fc1 { get; }
    [Linear(5, 2)] public partial Linear Fc2 { get; }

    Tensor Forward(Tensor x) => x.Apply(Fc1).Tanh().Apply(Fc2);

    public Tensor Squared(Tensor output, Tensor target) => (output - target) * (output - target);
}

/// <summary>A loss method on class indices over token ids and the masked mean (one label per sample).</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), CustomLoss(nameof(Hinge), ClassIndices = true)]
public partial class SeqLabelMethodNet
{
    [Embedding(20, 6)] public partial Embedding Embed { get; }
    [Linear(6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Tanh().MeanOverSequence().Apply(Head);

    public Tensor Hinge(Tensor logits, Tensor labels) => (logits * labels.OneHot(3)).Sum(1).Abs();
}

/// <summary>Dropout2d after a 1×1 convolution, the map itself the output (MSE): whole channels dropped on the device.</summary>
[Network, Input(3, 4, 4), MSELoss]
public partial class Dropout2dNet
{
    [Conv2d(3, 3, kernel: 1)] public partial Conv2d Conv { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Dropout2d(0.5).Flatten();
}

/// <summary>A regressor over token ids (a BERT-style similarity score): MSE on the masked mean's projection.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), MSELoss]
public partial class TokenRegressor
{
    [Embedding(20, 6)] public partial Embedding Embed { get; }
    [Linear(6, 1)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Tanh().MeanOverSequence().Apply(Head);
}

/// <summary>Two independent tags per token (BCE on logits): float targets along the sequence of token ids.</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 9), BCEWithLogitsLoss]
public partial class TokenTagger
{
    [Embedding(20, 6)] public partial Embedding Embed { get; }
    [Linear(6, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Tanh().Apply(Head);
}

/// <summary>Five token ids scored by a smooth L1 regression: float targets over fixed-length token ids.</summary>
[Network, Input(5, Kind = InputKind.TokenIds), SmoothL1Loss(Beta = 0.5)]
public partial class FixedTokenRegressor
{
    [Embedding(12, 4)] public partial Embedding Embed { get; }
    [Linear(20, 2)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Embed).Flatten().Apply(Head);
}

/// <summary>Two inputs and no loss: a twin the GPU backend does not build yet (ToDevice says so).</summary>
[Network, Input("a", 4), Input("b", 4)]
public partial class TwoInputFeatures
{
    [Linear(4, 3)] public partial Linear Shared { get; }

    Tensor Forward(Tensor a, Tensor b) => a.Apply(Shared) + b.Apply(Shared);
}

/// <summary>A feature extractor without a loss: its twin runs inference only.</summary>
[Network, Input(2, 5, 5)]
public partial class FeatureConv
{
    [Conv2d(2, 3, kernel: 3)] public partial Conv2d Conv { get; }
    [BatchNorm2d(3)] public partial BatchNorm2d Norm { get; }

    Tensor Forward(Tensor x) => x.Apply(Conv).Apply(Norm).Relu().AdaptiveAvgPool2d(1).Flatten();
}

/// <summary>Shape ops along a sequence of token ids: Chunk (two Narrows), Concat, Unflatten, Permute and Flatten on [T, …].</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class SeqPiecesNet
{
    [Embedding(20, 6)] public partial Embedding Embed { get; }
    [Linear(6, 3)] public partial Linear Head { get; }

    Tensor Forward(Tensor ids)
    {
        var h = ids.Apply(Embed).Tanh();                                            // [T, 6]
        var (p, q) = h.Chunk(2, -1);                                                // [T, 3] each
        var swapped = Tensor.Concat(-1, q * 2f, p);                                 // [T, 6]
        var mixed = swapped.Unflatten(-1, 2, 3).Permute(0, 1, 3, 2).Flatten(2);     // [T, 6]
        return mixed.MeanOverSequence().Apply(Head);
    }
}
