using System;

namespace Compiled.Nets
{
    /// <summary>
    /// Marks a <c>partial class</c> as a compiled network. The Compiled.Nets source generator reads the class's layer
    /// properties and its <c>Forward(Tensor)</c> method, checks every shape at compile time and emits the inference
    /// forward, the training step (forward, loss, backward) and the parameter table.
    /// </summary>
    /// <example>
    /// <code>
    /// [Network, Input(1, 28, 28), CrossEntropyLoss]
    /// public partial class Net
    /// {
    ///     [Linear(784, 10)] public partial Linear Fc { get; }
    ///     Tensor Forward(Tensor x) => x.Flatten().Apply(Fc);
    /// }
    /// </code>
    /// </example>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
    public sealed class NetworkAttribute : Attribute
    {
        /// <summary>The largest batch the generated workspace is first sized for (it grows on demand).</summary>
        public int MaxBatch { get; set; } = 64;
    }

    /// <summary>
    /// Declares the per-sample shape of the network's input (the batch dimension is implicit and dynamic).
    /// A dimension may be symbolic: pass <see cref="Dim.Sequence"/> for a bounded sequence length (see
    /// <see cref="MaxSequence"/>). A network with several inputs (an image and its metadata, token ids and token
    /// types) declares one named <c>[Input("image", 3, 32, 32), Input("meta", 4)]</c> per parameter of
    /// <c>Forward(Tensor image, Tensor meta)</c>; its generated methods then take one span per input, in that order.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class InputAttribute : Attribute
    {
        /// <summary>Declares an input named <c>x</c> with the given per-sample shape.</summary>
        public InputAttribute(params int[] shape) { Name = "x"; Shape = shape; }

        /// <summary>Declares a named input with the given per-sample shape.</summary>
        public InputAttribute(string name, params int[] shape) { Name = name; Shape = shape; }

        /// <summary>The input's name (the <c>Forward</c> parameter it binds to).</summary>
        public string Name { get; }

        /// <summary>The per-sample shape; <see cref="Dim.Sequence"/> marks the symbolic sequence dimension.</summary>
        public int[] Shape { get; }

        /// <summary>The element type: <see cref="InputKind.Float"/> (default) or <see cref="InputKind.TokenIds"/>.</summary>
        public InputKind Kind { get; set; } = InputKind.Float;

        /// <summary>The upper bound of the symbolic sequence dimension, when the shape has one.</summary>
        public int MaxSequence { get; set; } = 128;
    }

    /// <summary>Special dimension values for <see cref="InputAttribute"/>.</summary>
    public static class Dim
    {
        /// <summary>A symbolic sequence length <c>T</c>, bounded by <see cref="InputAttribute.MaxSequence"/>.</summary>
        public const int Sequence = -1;
    }

    /// <summary>The element type of a network input.</summary>
    public enum InputKind
    {
        /// <summary>32-bit floating point values.</summary>
        Float = 0,
        /// <summary>Integer token ids (fed to an <c>Embedding</c>).</summary>
        TokenIds = 1,
    }

    /// <summary>
    /// What every loss attribute shares. A network whose Forward returns several tensors (a tuple) trains with one loss
    /// per output it names, and minimises their weighted sum.
    /// </summary>
    public abstract class LossAttribute : Attribute
    {
        /// <summary>The output this loss trains: the name of an element of Forward's tuple (<c>(Tensor digit, Tensor box)
        /// Forward(...)</c>; unnamed elements are <c>Item1</c>, <c>Item2</c>…). Null for a network with one output.</summary>
        public string? Output { get; set; }

        /// <summary>This loss's weight in the sum TrainStep minimises when several outputs have losses (default 1).</summary>
        public float Weight { get; set; } = 1f;
    }

    /// <summary>Trains the network with softmax cross-entropy on its logits (<c>nn.CrossEntropyLoss</c>); targets are class indices.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class CrossEntropyLossAttribute : LossAttribute
    {
        /// <summary>Label smoothing in [0, 1), as in PyTorch.</summary>
        public float LabelSmoothing { get; set; }

        /// <summary>A weight per class (PyTorch's <c>weight</c>): the mean is weighted by the labels' weights, so rare
        /// classes can count more. Null: every class weighs 1.</summary>
        public float[]? Weights { get; set; }

        /// <summary>A label that adds nothing to the loss or its gradient (PyTorch's <c>ignore_index</c>, e.g. -100 for
        /// padding tokens). Unset (int.MinValue), every label must be a class and any other value is an error.</summary>
        public int IgnoreIndex { get; set; } = int.MinValue;
    }

    /// <summary>Trains the network with mean squared error (<c>nn.MSELoss</c>); targets are float tensors shaped like the output.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class MSELossAttribute : LossAttribute
    {
    }

    /// <summary>Trains the network's log-probabilities (end Forward with <c>LogSoftmax()</c>) with negative log-likelihood (<c>nn.NLLLoss</c>); targets are class indices.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class NLLLossAttribute : LossAttribute
    {
        /// <summary>A weight per class (PyTorch's <c>weight</c>): the mean is weighted by the labels' weights. Null: every class weighs 1.</summary>
        public float[]? Weights { get; set; }

        /// <summary>A label that adds nothing to the loss or its gradient (PyTorch's <c>ignore_index</c>). Unset
        /// (int.MinValue), every label must be a class.</summary>
        public int IgnoreIndex { get; set; } = int.MinValue;
    }

    /// <summary>Trains the network's log-probabilities (end Forward with <c>LogSoftmax()</c>) with the KL divergence from
    /// target probabilities shaped like the output (<c>nn.KLDivLoss</c>, log_target=False): distillation, label
    /// distributions.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class KLDivLossAttribute : LossAttribute
    {
        /// <summary>Divide by the batch (PyTorch's reduction='batchmean', the true divergence per sample) instead of by
        /// every element ('mean', PyTorch's default).</summary>
        public bool BatchMean { get; set; }
    }

    /// <summary>Trains the network with mean absolute error (<c>nn.L1Loss</c>); targets are float tensors shaped like the output.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class L1LossAttribute : LossAttribute
    {
    }

    /// <summary>Trains the network with smooth L1 loss (<c>nn.SmoothL1Loss</c>): quadratic below <see cref="Beta"/>, linear above.</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class SmoothL1LossAttribute : LossAttribute
    {
        /// <summary>Where the loss turns from quadratic to linear (PyTorch's default 1).</summary>
        public double Beta { get; set; } = 1.0;
    }

    /// <summary>Trains the network's logits with binary cross-entropy (<c>nn.BCEWithLogitsLoss</c>); targets are floats in [0, 1] shaped like the output (multi-label).</summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class BCEWithLogitsLossAttribute : LossAttribute
    {
    }

    /// <summary>
    /// The weights this network loads, checked at build time: a safetensors file, or a Hugging Face
    /// <c>model.safetensors.index.json</c> with its shards beside it, given to the build as an <c>AdditionalFiles</c>
    /// item (<c>&lt;AdditionalFiles Include="models/model.safetensors" /&gt;</c>; the path here matches the item's path or
    /// its end). The generator reads the files' headers only and reports at this attribute the tensors the network
    /// expects that the file lacks and those whose shape or dtype differ (errors), and the file's tensors the network does
    /// not use (a warning); <c>[StateName]</c> mappings apply. The generated <c>LoadWeights()</c> then loads them.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
    public sealed class WeightsAttribute : Attribute
    {
        /// <summary>Declares the weights file.</summary>
        public WeightsAttribute(string path) => Path = path;

        /// <summary>The file's path, as the AdditionalFiles item gives it (or its end).</summary>
        public string Path { get; }
    }

    /// <summary>An optimizer by the state it keeps per parameter, for the memory figures the generator states.</summary>
    public enum OptimizerKind
    {
        /// <summary>Plain SGD: no state.</summary>
        Sgd = 0,
        /// <summary>SGD with momentum: one buffer the size of the parameters.</summary>
        SgdMomentum = 1,
        /// <summary>Adam: two buffers (first and second moments).</summary>
        Adam = 2,
        /// <summary>AdamW: two buffers, as Adam.</summary>
        AdamW = 3,
    }

    /// <summary>
    /// A memory budget checked at build time: when training (or, with <see cref="Training"/> false, inference) at
    /// <see cref="Batch"/> needs more than <see cref="Mebibytes"/> MiB by the generator's memory plan — parameters,
    /// buffers, gradients, the optimizer's state and the workspace's arenas — the build warns (CNET0021), naming the
    /// largest regions. The kernels' scratch (im2col and Winograd buffers), which the runtime sizes, comes on top; the
    /// generated <c>TrainingBytes(batch)</c> includes it.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
    public sealed class MemoryBudgetAttribute : Attribute
    {
        /// <summary>Creates the budget.</summary>
        public MemoryBudgetAttribute(double mebibytes) => Mebibytes = mebibytes;

        /// <summary>The budget in MiB (2^20 bytes).</summary>
        public double Mebibytes { get; }

        /// <summary>The batch the budget is for (0: the network's MaxBatch).</summary>
        public int Batch { get; set; }

        /// <summary>The optimizer whose state counts (default AdamW).</summary>
        public OptimizerKind Optimizer { get; set; } = OptimizerKind.AdamW;

        /// <summary>Training (default: gradients, optimizer state and activation gradients count) or inference only.</summary>
        public bool Training { get; set; } = true;
    }

    /// <summary>
    /// Trains the network with a loss written as a method of the class, <c>Tensor Name(Tensor output, Tensor target)</c>,
    /// which the generator compiles and differentiates like Forward: the targets are floats shaped like the output, the
    /// method combines them with tensor operations (<c>var d = output - target; return d * d;</c>, a trailing
    /// <c>.Mean()</c> as PyTorch users write it), and the loss is the mean of its result over the batch and its elements
    /// (PyTorch's reduction='mean'). Called on eager tensors, the same method is the reference.
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = false)]
    public sealed class CustomLossAttribute : LossAttribute
    {
        /// <summary>Names the loss method (<c>nameof(Huber)</c>).</summary>
        public CustomLossAttribute(string method) => Method = method;

        /// <summary>The loss method's name.</summary>
        public string Method { get; }

        /// <summary>The targets are class indices, one per sample, as cross-entropy's (the network is then a classifier):
        /// the method's second parameter holds them, and <c>labels.OneHot(K)</c> makes them targets shaped like the
        /// logits (a focal loss: <c>var p = (logits.Softmax() * labels.OneHot(3)).Sum(-1); …</c>).</summary>
        public bool ClassIndices { get; set; }
    }

    /// <summary>
    /// Trains two embeddings to agree for alike pairs and to differ for unlike ones (<c>nn.CosineEmbeddingLoss</c>): a
    /// network returning a tuple names both, <c>[CosineEmbeddingLoss(Output = "a", Second = "b", Margin = 0.5)]</c>; the
    /// targets are one float per sample, 1 (alike: 1 − cos) or −1 (unlike: max(0, cos − margin)).
    /// </summary>
    [AttributeUsage(AttributeTargets.Class, Inherited = false, AllowMultiple = true)]
    public sealed class CosineEmbeddingLossAttribute : LossAttribute
    {
        /// <summary>The output compared with <see cref="LossAttribute.Output"/> (an element of Forward's tuple of the same shape).</summary>
        public string? Second { get; set; }

        /// <summary>Unlike pairs add nothing once their cosine is below this (PyTorch's default 0).</summary>
        public double Margin { get; set; }
    }

    /// <summary>Overrides the state-dict name of a layer (default: the property name in snake_case, e.g. <c>Fc1</c> → <c>fc1</c>).</summary>
    [AttributeUsage(AttributeTargets.Property, Inherited = false, AllowMultiple = false)]
    public sealed class StateNameAttribute : Attribute
    {
        /// <summary>Creates the override.</summary>
        public StateNameAttribute(string name) { Name = name; }

        /// <summary>The state-dict prefix of the layer's parameters.</summary>
        public string Name { get; }
    }

    /// <summary>
    /// Marks a property whose type is another <see cref="NetworkAttribute">[Network]</see> class as a sub-network
    /// (composition). With <see cref="Count"/> &gt; 1 the property is an array of that many copies, applied in order
    /// by <c>x.Apply(Layers)</c> and named <c>layers.0</c>, <c>layers.1</c>, … in the state dict.
    /// </summary>
    [AttributeUsage(AttributeTargets.Property, Inherited = false, AllowMultiple = false)]
    public sealed class SubNetworkAttribute : Attribute
    {
        /// <summary>A single sub-network.</summary>
        public SubNetworkAttribute() { Count = 1; }

        /// <summary>A stack of <paramref name="count"/> sub-networks applied in sequence.</summary>
        public SubNetworkAttribute(int count) { Count = count; }

        /// <summary>How many copies are stacked.</summary>
        public int Count { get; }

        /// <summary>The block's arguments, where its layer attributes use <see cref="BlockArg"/> placeholders
        /// (<c>[SubNetwork(Args = new[] { 16, 32, 2 })]</c>: <c>BlockArg.A</c> = 16, <c>BlockArg.B</c> = 32, <c>BlockArg.C</c> = 2).</summary>
        public int[]? Args { get; set; }
    }

    /// <summary>
    /// Placeholders for a block's arguments in its layer attributes: a block (a <c>[Network]</c> without <c>[Input]</c>)
    /// declares <c>const int In = BlockArg.A, Out = BlockArg.B, Stride = BlockArg.C;</c> and writes
    /// <c>[Conv2d(In, Out, kernel: 3, stride: Stride, padding: 1)]</c>; each <c>[SubNetwork(Args = …)]</c> that applies it
    /// gives the values. Use a placeholder as it is: arithmetic on it is reported (CNET0014).
    /// </summary>
    public static class BlockArg
    {
        /// <summary>The first argument.</summary>
        public const int A = -1_000_000;
        /// <summary>The second argument.</summary>
        public const int B = -1_000_001;
        /// <summary>The third argument.</summary>
        public const int C = -1_000_002;
        /// <summary>The fourth argument.</summary>
        public const int D = -1_000_003;
        /// <summary>The fifth argument.</summary>
        public const int E = -1_000_004;
        /// <summary>The sixth argument.</summary>
        public const int F = -1_000_005;
        /// <summary>The seventh argument.</summary>
        public const int G = -1_000_006;
        /// <summary>The eighth argument.</summary>
        public const int H = -1_000_007;
    }
}
