using System;

namespace Compiled.Nets
{
    /// <summary>Base class of the layer attributes placed on a network's partial layer properties.</summary>
    [AttributeUsage(AttributeTargets.Property, Inherited = false, AllowMultiple = false)]
    public abstract class LayerAttribute : Attribute
    {
    }

    /// <summary>2-D convolution (<c>nn.Conv2d</c>): input [B, InChannels, H, W] → [B, OutChannels, H', W'].</summary>
    public sealed class Conv2dAttribute : LayerAttribute
    {
        /// <summary>Declares a convolution with a square kernel.</summary>
        /// <param name="inChannels">Channels of the input.</param>
        /// <param name="outChannels">Channels of the output (number of filters).</param>
        /// <param name="kernel">Kernel height and width.</param>
        /// <param name="stride">Stride in both dimensions.</param>
        /// <param name="padding">Zero padding on each side in both dimensions.</param>
        /// <param name="dilation">Dilation in both dimensions.</param>
        /// <param name="bias">Whether the layer has a learnable bias.</param>
        public Conv2dAttribute(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, bool bias = true)
        {
            InChannels = inChannels; OutChannels = outChannels; Kernel = kernel; Stride = stride; Padding = padding; Dilation = dilation; Bias = bias;
        }

        /// <summary>Channels of the input.</summary>
        public int InChannels { get; }
        /// <summary>Channels of the output.</summary>
        public int OutChannels { get; }
        /// <summary>Kernel size.</summary>
        public int Kernel { get; }
        /// <summary>Stride.</summary>
        public int Stride { get; }
        /// <summary>Zero padding per side.</summary>
        public int Padding { get; }
        /// <summary>Dilation.</summary>
        public int Dilation { get; }
        /// <summary>Whether there is a bias.</summary>
        public bool Bias { get; }

        /// <summary>The kernel's width when it is not square (<c>kernel_size=(3, 5)</c> is <c>Conv2d(…, 3, KernelWidth = 5)</c>); 0: <see cref="Kernel"/>.</summary>
        public int KernelWidth { get; set; }
        /// <summary>The horizontal stride when it differs; 0: <see cref="Stride"/>.</summary>
        public int StrideWidth { get; set; }
        /// <summary>The horizontal zero padding when it differs; -1: <see cref="Padding"/>.</summary>
        public int PaddingWidth { get; set; } = -1;
        /// <summary>Channel groups (<c>groups</c>): each group of InChannels/Groups inputs makes OutChannels/Groups outputs;
        /// Groups = InChannels is a depthwise convolution.</summary>
        public int Groups { get; set; } = 1;
    }

    /// <summary>
    /// Transposed 2-D convolution (<c>nn.ConvTranspose2d</c>, a decoder's learnt upsampling): input [B, InChannels, H, W]
    /// → [B, OutChannels, (H − 1)·stride − 2·padding + dilation·(kernel − 1) + outputPadding + 1, likewise W]; weight
    /// [InChannels, OutChannels, kernel, kernel] as PyTorch lays it out.
    /// </summary>
    public sealed class ConvTranspose2dAttribute : LayerAttribute
    {
        /// <summary>Declares a transposed convolution with a square kernel (PyTorch's argument order, without groups).</summary>
        /// <param name="inChannels">Channels of the input.</param>
        /// <param name="outChannels">Channels of the output.</param>
        /// <param name="kernel">Kernel height and width.</param>
        /// <param name="stride">Stride in both dimensions (the upsampling factor).</param>
        /// <param name="padding">Rows and columns taken off each side of the output.</param>
        /// <param name="outputPadding">Rows and columns added at the bottom and right of the output (below the stride).</param>
        /// <param name="bias">Whether the layer has a learnable bias.</param>
        /// <param name="dilation">Dilation in both dimensions.</param>
        public ConvTranspose2dAttribute(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int outputPadding = 0, bool bias = true, int dilation = 1)
        {
            InChannels = inChannels; OutChannels = outChannels; Kernel = kernel; Stride = stride; Padding = padding; OutputPadding = outputPadding; Bias = bias; Dilation = dilation;
        }

        /// <summary>Channels of the input.</summary>
        public int InChannels { get; }
        /// <summary>Channels of the output.</summary>
        public int OutChannels { get; }
        /// <summary>Kernel size.</summary>
        public int Kernel { get; }
        /// <summary>Stride.</summary>
        public int Stride { get; }
        /// <summary>Padding taken off the output per side.</summary>
        public int Padding { get; }
        /// <summary>Extra output rows and columns.</summary>
        public int OutputPadding { get; }
        /// <summary>Whether there is a bias.</summary>
        public bool Bias { get; }
        /// <summary>Dilation.</summary>
        public int Dilation { get; }
    }

    /// <summary>1-D convolution (<c>nn.Conv1d</c>): input [B, InChannels, L] → [B, OutChannels, L'], weight [O, C/Groups, K].</summary>
    public sealed class Conv1dAttribute : LayerAttribute
    {
        /// <summary>Declares a 1-D convolution.</summary>
        /// <param name="inChannels">Channels of the input.</param>
        /// <param name="outChannels">Channels of the output.</param>
        /// <param name="kernel">Kernel length.</param>
        /// <param name="stride">Stride.</param>
        /// <param name="padding">Zero padding on each side.</param>
        /// <param name="dilation">Dilation.</param>
        /// <param name="bias">Whether the layer has a learnable bias.</param>
        public Conv1dAttribute(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, bool bias = true)
        {
            InChannels = inChannels; OutChannels = outChannels; Kernel = kernel; Stride = stride; Padding = padding; Dilation = dilation; Bias = bias;
        }

        /// <summary>Channels of the input.</summary>
        public int InChannels { get; }
        /// <summary>Channels of the output.</summary>
        public int OutChannels { get; }
        /// <summary>Kernel length.</summary>
        public int Kernel { get; }
        /// <summary>Stride.</summary>
        public int Stride { get; }
        /// <summary>Zero padding per side.</summary>
        public int Padding { get; }
        /// <summary>Dilation.</summary>
        public int Dilation { get; }
        /// <summary>Whether there is a bias.</summary>
        public bool Bias { get; }
        /// <summary>Channel groups (depthwise when it equals InChannels).</summary>
        public int Groups { get; set; } = 1;
    }

    /// <summary>Fully connected layer (<c>nn.Linear</c>): [..., InFeatures] → [..., OutFeatures], weight stored [out, in].</summary>
    public sealed class LinearAttribute : LayerAttribute
    {
        /// <summary>Declares a linear layer.</summary>
        public LinearAttribute(int inFeatures, int outFeatures, bool bias = true)
        {
            InFeatures = inFeatures; OutFeatures = outFeatures; Bias = bias;
        }

        /// <summary>Input features.</summary>
        public int InFeatures { get; }
        /// <summary>Output features.</summary>
        public int OutFeatures { get; }
        /// <summary>Whether there is a bias.</summary>
        public bool Bias { get; }
    }

    /// <summary>2-D max pooling (<c>nn.MaxPool2d</c>); stride defaults to the kernel size.</summary>
    public sealed class MaxPool2dAttribute : LayerAttribute
    {
        /// <summary>Declares max pooling.</summary>
        public MaxPool2dAttribute(int kernel, int stride = 0, int padding = 0) { Kernel = kernel; Stride = stride == 0 ? kernel : stride; Padding = padding; }
        /// <summary>Window size.</summary>
        public int Kernel { get; }
        /// <summary>Stride.</summary>
        public int Stride { get; }
        /// <summary>Padding.</summary>
        public int Padding { get; }
    }

    /// <summary>2-D average pooling (<c>nn.AvgPool2d</c>, padding counted in the average as PyTorch does by default).</summary>
    public sealed class AvgPool2dAttribute : LayerAttribute
    {
        /// <summary>Declares average pooling.</summary>
        public AvgPool2dAttribute(int kernel, int stride = 0, int padding = 0) { Kernel = kernel; Stride = stride == 0 ? kernel : stride; Padding = padding; }
        /// <summary>Window size.</summary>
        public int Kernel { get; }
        /// <summary>Stride.</summary>
        public int Stride { get; }
        /// <summary>Padding.</summary>
        public int Padding { get; }
    }

    /// <summary>
    /// Base of parameter-free elementwise layers. They take no sizes; the optional <c>features</c> argument exists so a
    /// port of code that passed one still compiles, and the generator warns (CNET0007) that it is ignored.
    /// </summary>
    public abstract class ActivationAttribute : LayerAttribute
    {
        /// <summary>Creates the attribute.</summary>
        protected ActivationAttribute(int ignoredFeatures) { IgnoredFeatures = ignoredFeatures; }
        /// <summary>A size passed by mistake (0 when none); it has no effect.</summary>
        public int IgnoredFeatures { get; }
    }

    /// <summary>Rectified linear unit (<c>nn.ReLU</c>).</summary>
    public sealed class ReLUAttribute : ActivationAttribute
    {
        /// <summary>Declares a ReLU.</summary>
        public ReLUAttribute() : base(0) { }
        /// <summary>Declares a ReLU with a size it ignores (reported as CNET0007).</summary>
        public ReLUAttribute(int features) : base(features) { }
    }

    /// <summary>Gaussian error linear unit, exact erf form (<c>nn.GELU()</c>, as BERT uses).</summary>
    public sealed class GELUAttribute : ActivationAttribute
    {
        /// <summary>Declares a GELU.</summary>
        public GELUAttribute() : base(0) { }
        /// <summary>Declares a GELU with a size it ignores (reported as CNET0007).</summary>
        public GELUAttribute(int features) : base(features) { }
    }

    /// <summary>Hyperbolic tangent (<c>nn.Tanh</c>).</summary>
    public sealed class TanhAttribute : ActivationAttribute
    {
        /// <summary>Declares a tanh.</summary>
        public TanhAttribute() : base(0) { }
        /// <summary>Declares a tanh with a size it ignores (reported as CNET0007).</summary>
        public TanhAttribute(int features) : base(features) { }
    }

    /// <summary>Logistic sigmoid (<c>nn.Sigmoid</c>).</summary>
    public sealed class SigmoidAttribute : ActivationAttribute
    {
        /// <summary>Declares a sigmoid.</summary>
        public SigmoidAttribute() : base(0) { }
        /// <summary>Declares a sigmoid with a size it ignores (reported as CNET0007).</summary>
        public SigmoidAttribute(int features) : base(features) { }
    }

    /// <summary>Adaptive average pooling to outputSize×outputSize bins (<c>nn.AdaptiveAvgPool2d</c>); 1 is global average pooling.</summary>
    public sealed class AdaptiveAvgPool2dAttribute : LayerAttribute
    {
        /// <summary>Declares adaptive average pooling.</summary>
        public AdaptiveAvgPool2dAttribute(int outputSize) { OutputSize = outputSize; }
        /// <summary>The output's height and width.</summary>
        public int OutputSize { get; }
    }

    /// <summary>Leaky ReLU (<c>nn.LeakyReLU</c>): x for x &gt; 0, else <see cref="NegativeSlope"/>·x.</summary>
    public sealed class LeakyReLUAttribute : LayerAttribute
    {
        /// <summary>Declares a leaky ReLU.</summary>
        public LeakyReLUAttribute(double negativeSlope = 0.01) { NegativeSlope = negativeSlope; }
        /// <summary>The slope for negative inputs.</summary>
        public double NegativeSlope { get; }
    }

    /// <summary>Sigmoid-weighted linear unit, also called swish (<c>nn.SiLU</c>): x·σ(x).</summary>
    public sealed class SiLUAttribute : ActivationAttribute
    {
        /// <summary>Declares a SiLU.</summary>
        public SiLUAttribute() : base(0) { }
        /// <summary>Declares a SiLU with a size it ignores (reported as CNET0007).</summary>
        public SiLUAttribute(int features) : base(features) { }
    }

    /// <summary>Exponential linear unit (<c>nn.ELU</c>): x for x &gt; 0, else <see cref="Alpha"/>·(eˣ − 1).</summary>
    public sealed class ELUAttribute : LayerAttribute
    {
        /// <summary>Declares an ELU.</summary>
        public ELUAttribute(double alpha = 1.0) { Alpha = alpha; }
        /// <summary>The scale of the negative branch.</summary>
        public double Alpha { get; }
    }

    /// <summary>Hard swish (<c>nn.Hardswish</c>, MobileNetV3): x·ReLU6(x + 3)/6.</summary>
    public sealed class HardswishAttribute : ActivationAttribute
    {
        /// <summary>Declares a hard swish.</summary>
        public HardswishAttribute() : base(0) { }
        /// <summary>Declares a hard swish with a size it ignores (reported as CNET0007).</summary>
        public HardswishAttribute(int features) : base(features) { }
    }

    /// <summary>Flattens all per-sample dimensions into one (<c>nn.Flatten</c>).</summary>
    public sealed class FlattenAttribute : ActivationAttribute
    {
        /// <summary>Declares a flatten.</summary>
        public FlattenAttribute() : base(0) { }
        /// <summary>Declares a flatten with a size it ignores (reported as CNET0007).</summary>
        public FlattenAttribute(int features) : base(features) { }
    }

    /// <summary>Dropout (<c>nn.Dropout</c>): zeroes elements with probability <see cref="P"/> while training and scales the rest by 1/(1-p).</summary>
    public sealed class DropoutAttribute : LayerAttribute
    {
        /// <summary>Declares dropout.</summary>
        public DropoutAttribute(double p = 0.5) { P = p; }
        /// <summary>Drop probability.</summary>
        public double P { get; }
    }

    /// <summary>Channel dropout (<c>nn.Dropout2d</c>) over [C, H, W] or [C, L]: whole channels of a sample dropped while training.</summary>
    public sealed class Dropout2dAttribute : LayerAttribute
    {
        /// <summary>Declares channel dropout.</summary>
        public Dropout2dAttribute(double p = 0.5) { P = p; }
        /// <summary>Drop probability of a channel.</summary>
        public double P { get; }
    }

    /// <summary>Batch normalisation over the channels of [B, C] or [B, C, L] (<c>nn.BatchNorm1d</c>).</summary>
    public sealed class BatchNorm1dAttribute : LayerAttribute
    {
        /// <summary>Declares batch normalisation.</summary>
        public BatchNorm1dAttribute(int features, double eps = 1e-5, double momentum = 0.1) { Features = features; Eps = eps; Momentum = momentum; }
        /// <summary>Channels (features).</summary>
        public int Features { get; }
        /// <summary>Epsilon added to the variance.</summary>
        public double Eps { get; }
        /// <summary>Weight of the new batch statistics in the running ones.</summary>
        public double Momentum { get; }
    }

    /// <summary>Batch normalisation over channels of [B, C, H, W] (<c>nn.BatchNorm2d</c>).</summary>
    public sealed class BatchNorm2dAttribute : LayerAttribute
    {
        /// <summary>Declares batch normalisation.</summary>
        public BatchNorm2dAttribute(int features, double eps = 1e-5, double momentum = 0.1) { Features = features; Eps = eps; Momentum = momentum; }
        /// <summary>Channels.</summary>
        public int Features { get; }
        /// <summary>Epsilon added to the variance.</summary>
        public double Eps { get; }
        /// <summary>Running-statistics momentum.</summary>
        public double Momentum { get; }
    }

    /// <summary>
    /// Multi-head self-attention over a sequence [T, E], as Hugging Face's <c>BertSelfAttention</c>: query, key and value
    /// projections (parameters <c>query</c>, <c>key</c>, <c>value</c> .weight [E, E] and .bias [E]), softmax(QKᵀ/√(E/heads))
    /// per head with the network's attention mask (padded keys get no attention), dropout on the attention
    /// probabilities while training, and the heads' context concatenated back to [T, E]. The output projection is a
    /// separate <see cref="LinearAttribute"/> (HF's <c>attention.output.dense</c>).
    /// </summary>
    public sealed class SelfAttentionAttribute : LayerAttribute
    {
        /// <summary>Declares self-attention.</summary>
        /// <param name="embed">Features per position (E; 768 for bert-base).</param>
        /// <param name="heads">Number of heads (12 for bert-base); must divide <paramref name="embed"/>.</param>
        /// <param name="dropout">Dropout probability on the attention probabilities (BERT: 0.1).</param>
        public SelfAttentionAttribute(int embed, int heads, double dropout = 0.0) { Embed = embed; Heads = heads; Dropout = dropout; }
        /// <summary>Features per position.</summary>
        public int Embed { get; }
        /// <summary>Number of heads.</summary>
        public int Heads { get; }
        /// <summary>Attention-probability dropout.</summary>
        public double Dropout { get; }
    }

    /// <summary>How <see cref="UpsampleAttribute"/> fills in the new pixels (<c>mode</c> of <c>nn.Upsample</c>).</summary>
    public enum UpsampleMode
    {
        /// <summary>Each output pixel copies its nearest source pixel.</summary>
        Nearest,
        /// <summary>Bilinear interpolation with align_corners=False.</summary>
        Bilinear,
    }

    /// <summary>Upsampling by an integer factor (<c>nn.Upsample(scale_factor=s)</c>) over [C, H, W] → [C, H·s, W·s].</summary>
    public sealed class UpsampleAttribute : LayerAttribute
    {
        /// <summary>Declares upsampling.</summary>
        /// <param name="scaleFactor">The factor on both height and width.</param>
        /// <param name="mode">Nearest (PyTorch's default) or bilinear.</param>
        public UpsampleAttribute(int scaleFactor, UpsampleMode mode = UpsampleMode.Nearest) { ScaleFactor = scaleFactor; Mode = mode; }
        /// <summary>The factor.</summary>
        public int ScaleFactor { get; }
        /// <summary>The interpolation.</summary>
        public UpsampleMode Mode { get; }
    }

    /// <summary>Group normalisation (<c>nn.GroupNorm</c>) over [C, …]: each sample's channels in NumGroups groups, each
    /// normalised over its channels and positions, then a per-channel scale and shift.</summary>
    public sealed class GroupNormAttribute : LayerAttribute
    {
        /// <summary>Declares group normalisation.</summary>
        /// <param name="numGroups">Groups; must divide the channels (1: LayerNorm over [C, H, W]; C: instance norm).</param>
        /// <param name="numChannels">Channels of the input.</param>
        /// <param name="eps">Epsilon added to the variance.</param>
        public GroupNormAttribute(int numGroups, int numChannels, double eps = 1e-5) { NumGroups = numGroups; NumChannels = numChannels; Eps = eps; }
        /// <summary>Groups.</summary>
        public int NumGroups { get; }
        /// <summary>Channels.</summary>
        public int NumChannels { get; }
        /// <summary>Epsilon added to the variance.</summary>
        public double Eps { get; }
    }

    /// <summary>Layer normalisation over the last dimension (<c>nn.LayerNorm</c>).</summary>
    public sealed class LayerNormAttribute : LayerAttribute
    {
        /// <summary>Declares layer normalisation.</summary>
        public LayerNormAttribute(int features, double eps = 1e-5) { Features = features; Eps = eps; }
        /// <summary>Size of the normalised (last) dimension.</summary>
        public int Features { get; }
        /// <summary>Epsilon added to the variance.</summary>
        public double Eps { get; }
    }

    /// <summary>
    /// Learned absolute position embeddings added to a sequence [T, Dim] (BERT's <c>position_embeddings</c>):
    /// y[t] = x[t] + weight[t] for t &lt; T; <see cref="Count"/> must cover the longest sequence.
    /// </summary>
    public sealed class PositionEmbeddingAttribute : LayerAttribute
    {
        /// <summary>Declares position embeddings.</summary>
        public PositionEmbeddingAttribute(int count, int dim) { Count = count; Dim = dim; }
        /// <summary>Number of positions (BERT: 512).</summary>
        public int Count { get; }
        /// <summary>Embedding width.</summary>
        public int Dim { get; }
    }

    /// <summary>
    /// Segment (token type) embeddings for single-segment input (BERT's <c>token_type_embeddings</c> with every
    /// token-type id 0, as for one sentence): y[t] = x[t] + weight[0]. The table keeps all <see cref="Count"/> rows
    /// so checkpoints load unchanged.
    /// </summary>
    public sealed class TokenTypeEmbeddingAttribute : LayerAttribute
    {
        /// <summary>Declares token type embeddings.</summary>
        public TokenTypeEmbeddingAttribute(int count, int dim) { Count = count; Dim = dim; }
        /// <summary>Number of token types (BERT: 2).</summary>
        public int Count { get; }
        /// <summary>Embedding width.</summary>
        public int Dim { get; }
    }

    /// <summary>Embedding table (<c>nn.Embedding</c>): integer ids [...] → [..., Dim].</summary>
    public sealed class EmbeddingAttribute : LayerAttribute
    {
        /// <summary>Declares an embedding table.</summary>
        public EmbeddingAttribute(int count, int dim) { Count = count; Dim = dim; }
        /// <summary>Number of rows (vocabulary size).</summary>
        public int Count { get; }
        /// <summary>Embedding width.</summary>
        public int Dim { get; }
        /// <summary>The padding token's row (PyTorch's <c>padding_idx</c>; negative counts from the end): initialised to
        /// zeros and never updated, so padding adds nothing. Unset (int.MinValue): none.</summary>
        public int PaddingIdx { get; set; } = int.MinValue;
    }

    /// <summary>
    /// Long short-term memory over a sequence (<c>nn.LSTM</c> with <c>batch_first=True</c>): [T, InputSize] →
    /// [T, directions·HiddenSize], the top layer's output at every position; PyTorch's tensor names and gate order
    /// (i, f, g, o), so weights load from PyTorch. With the network's attention mask, padded positions keep the state
    /// and output zeros (PyTorch's packed sequences for right padding).
    /// </summary>
    public sealed class LSTMAttribute : LayerAttribute
    {
        /// <summary>Declares an LSTM.</summary>
        /// <param name="inputSize">Features per input position.</param>
        /// <param name="hiddenSize">Features of the state per direction.</param>
        /// <param name="numLayers">Stacked layers, each reading the one below.</param>
        /// <param name="bidirectional">Whether a second direction reads the sequence backwards (outputs concatenated).</param>
        /// <param name="bias">Whether the layers have <c>bias_ih</c> and <c>bias_hh</c>.</param>
        public LSTMAttribute(int inputSize, int hiddenSize, int numLayers = 1, bool bidirectional = false, bool bias = true)
        {
            InputSize = inputSize; HiddenSize = hiddenSize; NumLayers = numLayers; Bidirectional = bidirectional; Bias = bias;
        }

        /// <summary>Features per input position.</summary>
        public int InputSize { get; }
        /// <summary>Features of the state per direction.</summary>
        public int HiddenSize { get; }
        /// <summary>Stacked layers.</summary>
        public int NumLayers { get; }
        /// <summary>Whether there is a backward direction.</summary>
        public bool Bidirectional { get; }
        /// <summary>Whether there are biases.</summary>
        public bool Bias { get; }
    }

    /// <summary>
    /// Gated recurrent unit over a sequence (<c>nn.GRU</c> with <c>batch_first=True</c>): as <see cref="LSTMAttribute"/>,
    /// with PyTorch's gate order (r, z, n) and its candidate n = tanh(W_in·x + b_in + r⊙(W_hn·h + b_hn)).
    /// </summary>
    public sealed class GRUAttribute : LayerAttribute
    {
        /// <summary>Declares a GRU.</summary>
        /// <param name="inputSize">Features per input position.</param>
        /// <param name="hiddenSize">Features of the state per direction.</param>
        /// <param name="numLayers">Stacked layers, each reading the one below.</param>
        /// <param name="bidirectional">Whether a second direction reads the sequence backwards (outputs concatenated).</param>
        /// <param name="bias">Whether the layers have <c>bias_ih</c> and <c>bias_hh</c>.</param>
        public GRUAttribute(int inputSize, int hiddenSize, int numLayers = 1, bool bidirectional = false, bool bias = true)
        {
            InputSize = inputSize; HiddenSize = hiddenSize; NumLayers = numLayers; Bidirectional = bidirectional; Bias = bias;
        }

        /// <summary>Features per input position.</summary>
        public int InputSize { get; }
        /// <summary>Features of the state per direction.</summary>
        public int HiddenSize { get; }
        /// <summary>Stacked layers.</summary>
        public int NumLayers { get; }
        /// <summary>Whether there is a backward direction.</summary>
        public bool Bidirectional { get; }
        /// <summary>Whether there are biases.</summary>
        public bool Bias { get; }
    }
}
