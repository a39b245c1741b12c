using Compiled.Nets.Generator.Helpers;

namespace Compiled.Nets.Generator.Model
{
    /// <summary>Kinds of layer a property can declare.</summary>
    internal enum LayerKind { SubNetwork, Conv2d, Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, ReLU, GELU, Tanh, Sigmoid, LeakyReLU, SiLU, ELU, Hardswish, Flatten, Dropout, BatchNorm2d, BatchNorm1d, LayerNorm, Embedding, SelfAttention, PositionEmbedding, TokenTypeEmbedding, LSTM, GRU, Conv1d, Dropout2d, GroupNorm, Upsample, ConvTranspose2d }

    /// <summary>Kinds of op in the plan (the ordered list the emitters walk).</summary>
    internal enum OpKind { Input, Embedding, Conv2d, Linear, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, BatchNorm1d, LayerNorm, Softmax, LogSoftmax, Flatten, Add, Subtract, Multiply, Concat, Relu, Gelu, Tanh, Sigmoid, LeakyRelu, Silu, Elu, Hardswish, Dropout, SelectToken, MeanOverSequence, SelfAttention, AddPositions, AddTokenType, Lstm, Gru, Scale, Shift, Unflatten, Permute, Transpose, MatMul, Conv1d, Dropout2d, GroupNorm, Upsample, Narrow, Abs, Exp, Log, Sum, Mean, OneHot, Reshape, ConvTranspose2d }

    internal enum LossKind { None, CrossEntropy, Mse, L1, SmoothL1, BceWithLogits, Nll, KlDiv, CosineEmbedding, Custom, CustomClassIndices }

    /// <summary>A tensor of the parameter table: state-dict name, shape, role and initialisation (all as emitted text).</summary>
    internal sealed record ParamSpec(string Field, string Name, EquatableArray<int> Shape, string Role, string Init, bool IsBuffer);

    /// <summary>A declared layer property: its arguments as the layer's op definition reads them (integers and reals in
    /// the order of its argument schema; typed views such as <c>Conv2dArgs.Of</c> name them), and where it is stored.</summary>
    internal sealed record LayerSpec(string Property, string StateName, LayerKind Kind, EquatableArray<int> Ints, double Real, double Real2, bool Bias,
        string Modifiers, string FieldName, bool IsRootProperty, string SubType);

    /// <summary>
    /// One op of the plan: its inputs (value ids, which are op ids), the layer it uses (index into the layers, or -1),
    /// its per-sample output shape, and kind-specific integers (pools: kernel, stride, padding) and a real (dropout p).
    /// </summary>
    internal sealed record OpSpec(int Id, OpKind Kind, int Input, int Input2, int Layer, EquatableArray<int> InShape, EquatableArray<int> OutShape,
        EquatableArray<int> Ints, double Real, string Label);

    /// <summary>One input of a network: the Forward parameter it binds to ("input" when it is the only one), its
    /// per-sample shape, token ids or floats, and the plan value it is.</summary>
    internal sealed record InputSpec(string Name, EquatableArray<int> Shape, bool Tokens, int Value);

    /// <summary>One output of a network whose Forward returns a tuple: the element's name and the plan value it is.</summary>
    internal sealed record OutputSpec(string Name, int Value);

    /// <summary>A loss of a network with several outputs: its kind and parameter, the output it trains (index into
    /// <see cref="NetworkSpec.Outputs"/>), its weight in the sum, and cross-entropy's class weights and ignored label.</summary>
    internal sealed record LossSpec(LossKind Kind, double Parameter, int Output, float Weight, EquatableArray<float> ClassWeights, int IgnoreIndex)
    {
        /// <summary>A loss of two outputs (cosine embedding): the second (index into Outputs), else -1.</summary>
        public int Output2 { get; init; } = -1;
    }

    /// <remarks>Per-sample shapes may hold -1: the symbolic sequence length T (always the first dimension), bounded by
    /// <see cref="NetworkSpec.MaxSequence"/>.</remarks>
    /// <summary>Everything the emitter needs for one [Network] class; equatable, with no symbols or syntax. A block
    /// (<see cref="IsBlock"/>: no [Input], no loss) has layers and parameters but no ops: networks inline it where they apply it.</summary>
    internal sealed record NetworkSpec(
        string Namespace, string TypeName, string TypeModifiers, EquatableArray<string> ContainingTypes,
        string InputName, EquatableArray<int> InputShape, bool TokenInput, int MaxBatch, int MaxSequence,
        LossKind Loss, double LossParameter,
        EquatableArray<LayerSpec> Layers, EquatableArray<ParamSpec> Parameters, EquatableArray<OpSpec> Ops, int Output, bool IsBlock = false)
    {
        /// <summary>Every input in Forward's parameter order (the first is also InputName/InputShape/TokenInput).</summary>
        public EquatableArray<InputSpec> Inputs { get; init; } = EquatableArray<InputSpec>.Empty;

        /// <summary>Cross-entropy's class weights (empty: none).</summary>
        public EquatableArray<float> LossWeights { get; init; } = EquatableArray<float>.Empty;

        /// <summary>Cross-entropy's ignored label (int.MinValue: none).</summary>
        public int IgnoreIndex { get; init; } = int.MinValue;

        /// <summary>Forward takes several tensors: the generated methods take one span per input, named as its parameters.</summary>
        public bool IsMultiInput => Inputs.Count > 1;

        /// <summary>Forward's tuple elements when it returns several tensors (else empty; the one output is <see cref="Output"/>).</summary>
        public EquatableArray<OutputSpec> Outputs { get; init; } = EquatableArray<OutputSpec>.Empty;

        /// <summary>The losses of a network with several outputs, in declaration order (else empty: <see cref="Loss"/> is the one).</summary>
        public EquatableArray<LossSpec> HeadLosses { get; init; } = EquatableArray<LossSpec>.Empty;

        /// <summary>Forward returns a tuple: one span per output, one targets span per loss.</summary>
        public bool IsMultiOutput => Outputs.Count > 1;

        /// <summary>Several inputs or several outputs: the generated members take named spans and implement no
        /// one-input, one-output interface.</summary>
        public bool IsMultiple => IsMultiInput || IsMultiOutput;

        /// <summary>A [CustomLoss] method compiled into the plan: its ops come last, from <see cref="LossStart"/>; it reads the
        /// output and the targets (an Input op, <see cref="TargetInput"/>) and ends in <see cref="LossValue"/>, whose mean is
        /// the loss. -1 without one.</summary>
        public int LossStart { get; init; } = -1;
        public int TargetInput { get; init; } = -1;
        public int LossValue { get; init; } = -1;

        /// <summary>The op belongs to the [CustomLoss] method (runs only where targets are given, never in Forward or ONNX).</summary>
        public bool IsLossOp(int id) => LossStart >= 0 && id >= LossStart;

        /// <summary>The path of <c>[Weights("…")]</c> as declared (null: none); the build resolves it among AdditionalFiles.</summary>
        public string? WeightsPath { get; init; }
    }

    /// <summary>A layer property of a class with errors, implemented with the accessors its declaration has (each
    /// with its modifiers: "get", "private set"), so the implementation adds no error of its own.</summary>
    internal sealed record StubProperty(string Modifiers, string Type, string Name, EquatableArray<string> Accessors);

    /// <summary>
    /// What a [Network] class with errors still gets: the members its users call, so that only the real error shows and
    /// the rest of the code keeps compiling. <see cref="InputFeatures"/> and <see cref="OutputFeatures"/> are 0 when the
    /// declaration does not determine them.
    /// </summary>
    internal sealed record NetworkSkeleton(
        string Namespace, string TypeName, string TypeModifiers, EquatableArray<string> ContainingTypes,
        bool TokenInput, int MaxSequence, LossKind Loss, long InputFeatures, long OutputFeatures, EquatableArray<StubProperty> Properties)
    {
        /// <summary>The declared inputs when there are several (their members take one span each), else empty.</summary>
        public EquatableArray<InputSpec> Inputs { get; init; } = EquatableArray<InputSpec>.Empty;

        /// <summary>Forward's tuple element names when it returns several tensors, else empty.</summary>
        public EquatableArray<string> Outputs { get; init; } = EquatableArray<string>.Empty;

        /// <summary>The losses with the output each names (several outputs only), so TrainStep keeps its parameters.</summary>
        public EquatableArray<LossSpec> HeadLosses { get; init; } = EquatableArray<LossSpec>.Empty;

        /// <summary>The class declares [Weights]: LoadWeights exists for its callers.</summary>
        public bool HasWeights { get; init; }

        /// <summary>The class has no [Input]: a block, which the networks applying it build with their arguments.</summary>
        public bool IsBlock { get; init; }

        /// <summary>A member other than a method is named Forward (<c>Tensor Forward</c> half typed): no Forward method then.</summary>
        public bool ForwardIsTaken { get; init; }
    }

    /// <summary>What the generator emits for one class: the full network when it is error-free, else its skeleton
    /// (none when the class cannot take a partial declaration at all).</summary>
    internal sealed record EmitModel(NetworkSpec? Spec, NetworkSkeleton? Skeleton);

    /// <summary>The result of parsing one class: a spec when it is error-free, a skeleton when it is not, and its diagnostics.</summary>
    internal sealed record ParseResult(NetworkSpec? Spec, NetworkSkeleton? Skeleton, EquatableArray<DiagnosticInfo> Diagnostics)
    {
        public EmitModel ToEmitModel() => new(Spec, Spec is null ? Skeleton : null);
    }
}
