using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>
/// A compiled classifier's twin on a <see cref="GpuDevice"/>: the generator derives one per network (<c>net.ToDevice(device)</c>)
/// and writes its forward and backward as launches of library kernels and of fused kernels generated for the network's
/// elementwise chains. Parameters, gradients, optimizer state and activations stay on the device for the whole step;
/// only the batch goes in and the loss (and logits when asked) come out. Parameters are copied from the host network's
/// <see cref="ParameterStore"/> on creation and back with <see cref="CopyParametersToHost"/>, so checkpoints,
/// safetensors and Hugging Face loading work on the host store unchanged.
/// </summary>
/// <remarks>Safe to call from many threads: a call holds its device (<see cref="EnterDevice"/>), so calls on one device
/// — to any of its twins and device optimizers — run one at a time (a twin holds one workspace, and a device runs its
/// kernels in order on one stream anyway).</remarks>
public abstract class DeviceNetwork : IDisposable
{
    private readonly MemoryBuffer1D<float, Stride1D.Dense> _values, _buffers;
    // Gradient memory comes with the first training call, as PyTorch's parameters have no .grad before a backward: a
    // twin that only infers holds neither the parameters' gradients nor the activations'.
    private MemoryBuffer1D<float, Stride1D.Dense>? _gradients;
    private bool _trains;
    private readonly List<MemoryBuffer1D<float, Stride1D.Dense>> _persistent = new();
    private MemoryBuffer1D<float, Stride1D.Dense>? _act, _grad, _scratch, _input, _rowLoss, _targets;
    private MemoryBuffer1D<int, Stride1D.Dense>? _ints, _labels, _tokens, _mask;
    private int[] _allReal = [];
    private float[] _rowLossHost = [];
    private int[] _labelsHost = [];
    private readonly string _inputShape, _outputShape;
    private bool _disposed;

    /// <summary>Copies the host network's parameters to <paramref name="device"/>.</summary>
    /// <param name="device">Where the twin runs.</param>
    /// <param name="host">The host network's parameters, copied to the device now.</param>
    /// <param name="name">The network's name, as errors name it.</param>
    /// <param name="inputFeatures">Floats per input sample.</param>
    /// <param name="inputShape">The per-sample input shape as errors show it ("1, 28, 28").</param>
    /// <param name="outputFeatures">Logits per sample.</param>
    /// <param name="outputShape">The per-sample output shape as errors show it.</param>
    /// <param name="labelSmoothing">The cross-entropy's label smoothing.</param>
    protected DeviceNetwork(GpuDevice device, ParameterStore host, string name, int inputFeatures, string inputShape, int outputFeatures, string outputShape, float labelSmoothing)
    {
        Device = device ?? throw new ArgumentNullException(nameof(device));
        HostParameters = host ?? throw new ArgumentNullException(nameof(host));
        Name = name; InputFeatures = inputFeatures; OutputFeatures = outputFeatures; LabelSmoothing = labelSmoothing;
        _inputShape = inputShape; _outputShape = outputShape;
        _values = Named(() => device.Allocate(host.ReadValues.Length), "parameters");
        _buffers = Named(() => device.Allocate(host.BufferValues.Length), "buffers");
        CopyParametersFromHost();
    }

    /// <summary>The device the twin runs on.</summary>
    public GpuDevice Device { get; }

    /// <summary>The host network's parameters (the source and destination of the copies).</summary>
    public ParameterStore HostParameters { get; }

    /// <summary>The network's name, as errors name it.</summary>
    public string Name { get; }

    /// <summary>Floats per input sample.</summary>
    public int InputFeatures { get; }

    /// <summary>Logits per sample.</summary>
    public int OutputFeatures { get; }

    /// <summary>The seed of the dropout masks: each training step draws them from Philox under a key made of this seed
    /// and the step's number, so two twins with the same seed draw the same masks.</summary>
    public ulong DropoutSeed { get; set; } = 0x9E3779B97F4A7C15UL;

    /// <summary>Training steps run so far (the counter in the dropout key).</summary>
    public long TrainingSteps { get; private set; }

    /// <summary>The Philox key of the current training step.</summary>
    protected ulong StepKey { get; private set; }

    /// <summary>The cross-entropy's label smoothing, as declared on the network.</summary>
    public float LabelSmoothing { get; }

    /// <summary>The loss the twin trains with (its network's loss attribute): cross-entropy on class labels, or a loss
    /// on float targets shaped like the output.</summary>
    public virtual DeviceLoss TrainedLoss => DeviceLoss.CrossEntropy;

    /// <summary>The loss's parameter: label smoothing for cross-entropy, β for smooth L1.</summary>
    protected virtual float LossParameter => LabelSmoothing;

    private bool ClassLabels => TrainedLoss is DeviceLoss.CrossEntropy or DeviceLoss.Nll || TrainedLoss == DeviceLoss.Method && MethodOnLabels;

    /// <summary>A loss method on class indices (<c>ClassIndices = true</c>): its targets are labels, which it reads as one-hot rows.</summary>
    protected virtual bool MethodOnLabels => false;

    /// <summary>The passes compute the loss too (a loss method's ops run only then, not for inference).</summary>
    protected bool WithLoss { get; private protected set; }

    /// <summary>A loss method's last value (its mean is the loss), its gradient, and its values per sample.</summary>
    protected virtual ArrayView<float> LossValues => default;
    protected virtual ArrayView<float> LossValuesGradient => default;
    protected virtual int LossValuesPerSample => 0;

    /// <summary>The batch's float targets on the device (what a loss method reads as its targets).</summary>
    protected ArrayView<float> TargetValues => _targets!.View;

    /// <summary>The class weights of a cross-entropy or NLL loss (<c>Weights</c> on its attribute), or null.</summary>
    protected virtual float[]? ClassWeights => null;

    /// <summary>The label a cross-entropy or NLL loss ignores (<c>IgnoreIndex</c>), or int.MinValue for none.</summary>
    protected virtual int IgnoreIndex => int.MinValue;

    /// <summary>Class weights or an ignored label: PyTorch's weighted mean over the kept rows.</summary>
    private bool Weighted => ClassWeights is not null || IgnoreIndex != int.MinValue;

    private MemoryBuffer1D<float, Stride1D.Dense>? _weights;
    private double _weightTotal;

    /// <summary>The class weights on the device (ones when only a label is ignored), uploaded on first use.</summary>
    private ArrayView<float> WeightsOnDevice
    {
        get
        {
            _weights ??= UploadClassWeights(ClassWeights, OutputFeatures);
            return _weights.View;
        }
    }

    /// <summary>A class-index loss's weights on the device: <paramref name="weights"/>, or ones when only a label is ignored.</summary>
    private protected MemoryBuffer1D<float, Stride1D.Dense> UploadClassWeights(float[]? weights, int classes)
    {
        var buffer = Device.Allocate(classes);
        Upload<float>(weights ?? Enumerable.Repeat(1f, classes).ToArray(), buffer.View);
        return buffer;
    }

    /// <summary>
    /// Checks a batch's class labels (each in [0, <paramref name="classes"/>) unless it is the ignored one) and returns W,
    /// the weights of the labels kept (their count without weights): what a weighted loss divides by.
    /// <paramref name="where"/> names the column in messages (" of 'digitLabels'"; empty for a one-output twin).
    /// </summary>
    private protected double CheckedLabelWeights(ReadOnlySpan<int> labels, int classes, float[]? weights, int ignoreIndex, string where, string parameter)
    {
        double total = 0;
        for (int r = 0; r < labels.Length; r++)
        {
            if (labels[r] == ignoreIndex) continue;
            if ((uint)labels[r] >= (uint)classes)
                throw new ArgumentException($"{Name}: label {labels[r]} in row {r}{where} is outside [0, {classes}){(ignoreIndex != int.MinValue ? $" and is not the ignored label {ignoreIndex}" : "")}.", parameter);
            total += weights is null ? 1 : weights[labels[r]];
        }
        return total;
    }

    /// <summary>KL divergence's targets are probabilities: finite and not negative, checked before they go up.</summary>
    private protected void CheckProbabilities(ReadOnlySpan<float> targets, string where, string parameter)
    {
        for (int i = 0; i < targets.Length; i++)
            if (!(targets[i] >= 0) || float.IsInfinity(targets[i]))
                throw new ArgumentException($"{Name}: KL divergence target {i}{where} is {targets[i]}; targets are probabilities (finite, not negative).", parameter);
    }

    /// <summary>The batch the workspace holds now (it grows when a larger batch comes).</summary>
    public int Capacity { get; private set; }

    /// <summary>Kernel launches of one <see cref="TrainStep(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float})"/> of the plan at any batch (forward, loss, backward; not the
    /// optimizer) with every tensor trainable: the figure the fused chains bring down. Layers frozen before the first
    /// trainable one launch nothing in backward, so a step of a partly frozen network launches fewer.</summary>
    public abstract int LaunchesPerTrainStep { get; }

    /// <summary>What <see cref="LaunchesPerTrainStep"/> would be with every elementwise op (and a chained bias and its
    /// gradient's sum) as a kernel of its own, as an unfused framework launches them.</summary>
    public abstract int LaunchesPerTrainStepUnfused { get; }

    /// <summary>The library kernels of <see cref="Device"/>.</summary>
    protected GpuKernels K => Device.Kernels;

    /// <summary>All parameters' values on the device, at the host store's offsets.</summary>
    protected ArrayView<float> Values => _values.View;

    /// <summary>All parameters' gradients on the device, at the host store's offsets.</summary>
    protected ArrayView<float> Gradients => GradientBuffer.View;

    /// <summary>The device values of a host parameter or buffer (BatchNorm's running statistics).</summary>
    protected ArrayView<float> Value(ParameterInfo p) => (p.IsBuffer ? _buffers : _values).View.SubView(p.Offset, Math.Max(p.Length, 1));

    /// <summary>Device memory the twin keeps for its whole life (an op's saved statistics), freed with it.</summary>
    protected ArrayView<float> Persistent(long length)
    {
        var b = Device.Allocate(length);
        b.View.MemSetToZero();
        _persistent.Add(b);
        return b.View;
    }

    /// <summary>The device gradient of a host parameter.</summary>
    protected ArrayView<float> Gradient(ParameterInfo p) => GradientBuffer.View.SubView(p.Offset, Math.Max(p.Length, 1));

    /// <summary>The device values of parameters declared one after another, from <paramref name="first"/>'s start through
    /// <paramref name="last"/>'s end, as one view (what a kernel over several tensors at one spacing reads).</summary>
    protected ArrayView<float> Value(ParameterInfo first, ParameterInfo last) => _values.View.SubView(first.Offset, Through(first, last));

    /// <summary>The device gradients of parameters declared one after another, laid out as <see cref="Value(ParameterInfo, ParameterInfo)"/>.</summary>
    protected ArrayView<float> Gradient(ParameterInfo first, ParameterInfo last) => GradientBuffer.View.SubView(first.Offset, Through(first, last));

    /// <summary>The parameters' gradients, allocated and zeroed on first use.</summary>
    private MemoryBuffer1D<float, Stride1D.Dense> GradientBuffer
    {
        get
        {
            if (_gradients is { } g) return g;
            g = Named(() => Device.Allocate(HostParameters.ReadValues.Length), "parameters' gradients");
            g.View.MemSetToZero();
            return _gradients = g;
        }
    }

    /// <summary>Whether the twin holds gradient memory yet (it does from its first training call, or an optimizer's).</summary>
    internal bool HoldsGradients => _gradients is not null || _grad is not null;

    private static long Through(ParameterInfo first, ParameterInfo last) =>
        !first.IsBuffer && !last.IsBuffer && last.Offset >= first.Offset ? last.Offset + Math.Max(last.Length, 1) - first.Offset
        : throw new ArgumentException($"'{first.Name}' does not come before '{last.Name}' among the parameters.");

    /// <summary>The floats from one parameter's start to the next's, for three of one shape declared one after another
    /// (self-attention's query, key and value); an error if they do not lie at one spacing.</summary>
    protected static long Spacing(ParameterInfo first, ParameterInfo second, ParameterInfo third)
    {
        long spacing = second.Offset - first.Offset;
        if (spacing < first.Length || third.Offset - second.Offset != spacing || first.Length != second.Length || second.Length != third.Length)
            throw new InvalidOperationException($"'{first.Name}', '{second.Name}' and '{third.Name}' do not lie at one spacing in the parameters (offsets {first.Offset}, {second.Offset}, {third.Offset}).");
        return spacing;
    }

    /// <summary>Which of three tensors train, as bits 1, 2 and 4 (a kernel over several tensors leaves a frozen one's gradient alone).</summary>
    protected static int Trained(ParameterInfo first, ParameterInfo second, ParameterInfo third) =>
        (first.RequiresGrad ? 1 : 0) | (second.RequiresGrad ? 2 : 0) | (third.RequiresGrad ? 4 : 0);

    /// <summary>Block <paramref name="index"/> of <paramref name="length"/> floats of a view holding several one after another.</summary>
    protected static ArrayView<float> Part(ArrayView<float> stacked, int index, long length) => stacked.SubView(index * length, length);

    internal ArrayView<float> ValueOf(ParameterInfo p) => Value(p);
    internal ArrayView<float> GradientOf(ParameterInfo p) => Gradient(p);
    internal long ParameterFloats => _values.Length;
    internal ArrayView<float> AllGradients => GradientBuffer.View;
    internal ArrayView<float> AllValues => _values.View;

    /// <summary>The batch's input, uploaded.</summary>
    protected ArrayView<float> Input => _input!.View;

    /// <summary>A network over token ids: the rows of its smallest embedding table (ids are checked against it on the
    /// host before they go up); 0 for a network of float inputs.</summary>
    protected virtual int TokenVocabulary => 0;

    /// <summary>A network over sequences: the longest sequence it takes (its workspace is laid out for it); 0 for a
    /// network of fixed-size inputs.</summary>
    protected virtual int MaxSequence => 0;

    /// <summary>Values per position of a sequence network's input (1 for token ids; the features of a float sequence).</summary>
    protected virtual int InputPerPosition => 1;

    /// <summary>Values per position of an output along the sequence ([T, …] per sample); 0 when the output has no T.</summary>
    protected virtual int OutputPerPosition => 0;

    /// <summary>Outputs of the current batch: batch × OutputFeatures, or batch × T × OutputPerPosition along the sequence.</summary>
    private int OutputCount(int batch) => OutputPerPosition > 0 ? batch * SequenceLength * OutputPerPosition : batch * OutputFeatures;

    /// <summary>The current batch's sequence length T (a sequence network): the generated passes size every [T, …] value by it.</summary>
    protected int SequenceLength { get; private set; }

    /// <summary>The current batch's attention mask [B, T] of 1 (a real token) and 0 (padding), uploaded (all ones when
    /// the caller gave none).</summary>
    protected ArrayView<int> Mask => _mask!.View;

    /// <summary>The batch's token ids, uploaded and checked (a network over token ids).</summary>
    protected ArrayView<int> TokenInput => _tokens!.View;

    /// <summary>The batch's token ids grouped by id, for an embedding's backward (built on first use for each batch).</summary>
    protected EmbeddingRuns TokenRuns => _tokenRuns.Runs(Device);

    private readonly TokenRunsBuilder _tokenRuns = new();

    /// <summary>The batch's labels, uploaded and checked.</summary>
    protected ArrayView<int> Labels => _labels!.View;

    /// <summary>Scratch for the library kernels (convolutions).</summary>
    protected ArrayView<float> Scratch => _scratch!.View;

    /// <summary>A region of the activation arena: <paramref name="perSample"/> floats per sample at per-sample offset <paramref name="offset"/>.</summary>
    protected ArrayView<float> Activation(long offset, long perSample) => _act!.View.SubView(offset * Capacity, Math.Max(perSample * Capacity, 1));

    /// <summary>A region of the gradient arena.</summary>
    protected ArrayView<float> ActivationGradient(long offset, long perSample) =>
        _grad is null ? default : _grad.View.SubView(offset * Capacity, Math.Max(perSample * Capacity, 1)); // none until a training call

    /// <summary>A region of the integer arena (max-pool winners).</summary>
    protected ArrayView<int> IntRegion(long offset, long perSample) => _ints!.View.SubView(offset * Capacity, Math.Max(perSample * Capacity, 1));

    /// <summary>Floats per sample of the activation arena, of its gradient arena, ints per sample, scratch for a batch.</summary>
    protected abstract long ActivationsPerSample { get; }
    protected abstract long GradientsPerSample { get; }
    protected abstract long IntsPerSample { get; }
    protected abstract long ScratchFor(int batch);

    /// <summary>Takes the generated network's views of the arenas after they were (re)allocated for <see cref="Capacity"/>.</summary>
    protected abstract void BindWorkspace();

    /// <summary>Runs the forward pass on <see cref="Input"/> for <paramref name="batch"/> samples.</summary>
    protected abstract void RunForward(int batch, bool training);

    /// <summary>The logits of the last forward (batch × <see cref="OutputFeatures"/>).</summary>
    protected abstract ArrayView<float> Logits { get; }

    /// <summary>Their gradient, which the loss writes and <see cref="RunBackward"/> starts from.</summary>
    protected abstract ArrayView<float> LogitsGradient { get; }

    /// <summary>Runs the backward pass, adding every parameter's gradient.</summary>
    protected abstract void RunBackward(int batch);

    /// <summary>Holds the device until the scope is disposed: every public call of a twin or a device optimizer takes it
    /// first (a generated method too), so concurrent callers wait their turn instead of sharing a workspace. Reentrant.</summary>
    protected Lock.Scope EnterDevice() => Device.Gate.EnterScope();

    /// <summary>As <see cref="EnterDevice"/>, then checks that the twin and its device are alive (for a device optimizer's calls).</summary>
    internal Lock.Scope EnterAlive()
    {
        var scope = EnterDevice();
        try { ThrowIfDisposed(); }
        catch { scope.Dispose(); throw; }
        return scope;
    }

    /// <summary>Inference in evaluation mode: <paramref name="output"/> gets batch × <see cref="OutputFeatures"/> logits.</summary>
    /// <exception cref="ArgumentException">Spans whose lengths do not fit the batch, naming the network and method.</exception>
    public void Forward(ReadOnlySpan<float> input, int batch, Span<float> output)
    {
        using var exclusive = EnterDevice();
        TakesFloats("Forward");
        NetworkArguments.Check(Name, "Forward", input.Length, batch, InputFeatures, _inputShape, output.Length, OutputFeatures, _outputShape);
        Prepare(input, batch);
        Infer(batch, output);
    }

    /// <summary>
    /// Forward, cross-entropy loss and backward on the device: every trainable parameter's gradient is replaced (or added
    /// to, when <see cref="ParameterStore.AccumulateGradients"/> is set on the host store) on the device. Returns the mean
    /// loss; <paramref name="logits"/>, when not empty, gets the logits. A device optimizer then steps the parameters.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong lengths, or a label outside [0, classes) (naming the row).</exception>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        TakesFloats("TrainStep");
        NetworkArguments.Check(Name, "TrainStep", input.Length, batch, InputFeatures, _inputShape, logits.IsEmpty ? -1 : logits.Length, OutputFeatures, _outputShape);
        Prepare(input, batch);
        UploadLabels(labels, batch);
        return Step(batch, logits);
    }

    /// <summary>A training step begins: the next dropout key, the activation gradients cleared, the parameters' gradients
    /// too unless the host store accumulates them.</summary>
    private protected void BeginTrainingStep()
    {
        TrainingSteps++;
        StepKey = SplitMix(DropoutSeed + (ulong)TrainingSteps);
        if (_grad is null)
        {
            _trains = true;
            _grad = Named(() => Device.Allocate(GradientsPerSample * Capacity), $"activations' gradients at batch {Capacity}");
            BindWorkspace();
        }
        _grad.View.MemSetToZero();
        if (!HostParameters.AccumulateGradients) GradientBuffer.View.MemSetToZero();
    }

    private float Step(int batch, Span<float> logits)
    {
        HasLoss();
        BeginTrainingStep();
        WithLoss = true;
        RunForward(batch, training: true);
        float loss = Loss(batch, backward: true);
        if (!logits.IsEmpty) Download(Logits, logits.Slice(0, OutputCount(batch)));
        RunBackward(batch);
        return loss;
    }

    /// <summary>The mean loss in evaluation mode, without gradients.</summary>
    public float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        TakesFloats("EvaluateLoss");
        NetworkArguments.Check(Name, "EvaluateLoss", input.Length, batch, InputFeatures, _inputShape, logits.IsEmpty ? -1 : logits.Length, OutputFeatures, _outputShape);
        Prepare(input, batch);
        return Evaluate(labels, batch, logits);
    }

    /// <summary>
    /// A training step of a network trained on float targets (MSE, L1, smooth L1, BCE on logits): forward, the mean loss
    /// over every output element, backward, as <c>IRegressor.TrainStep</c>; <paramref name="output"/>, when not empty,
    /// gets the outputs.
    /// </summary>
    /// <exception cref="ArgumentException">Spans whose lengths do not fit the batch.</exception>
    /// <exception cref="InvalidOperationException">The network trains on class labels.</exception>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, int batch, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        TakesFloats("TrainStep");
        NetworkArguments.Check(Name, "TrainStep", input.Length, batch, InputFeatures, _inputShape, output.IsEmpty ? -1 : output.Length, OutputFeatures, _outputShape);
        Prepare(input, batch);
        UploadTargets(targets, batch);
        return Step(batch, output);
    }

    /// <summary>The mean loss on float targets in evaluation mode, without gradients.</summary>
    public float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, int batch, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        TakesFloats("EvaluateLoss");
        NetworkArguments.Check(Name, "EvaluateLoss", input.Length, batch, InputFeatures, _inputShape, output.IsEmpty ? -1 : output.Length, OutputFeatures, _outputShape);
        Prepare(input, batch);
        UploadTargets(targets, batch);
        return EvaluateUploaded(batch, output);
    }

    /// <summary>Inference on token ids (a network over token ids): <paramref name="output"/> gets batch × <see cref="OutputFeatures"/> logits.</summary>
    /// <exception cref="ArgumentException">Spans whose lengths do not fit the batch.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the embedding table, naming its position.</exception>
    public void Forward(ReadOnlySpan<int> ids, int batch, Span<float> output)
    {
        using var exclusive = EnterDevice();
        TakesTokens("Forward");
        NetworkArguments.Check(Name, "Forward", ids.Length, batch, InputFeatures, _inputShape, output.Length, OutputFeatures, _outputShape);
        PrepareTokens(ids.Slice(0, batch * InputFeatures), batch);
        Infer(batch, output);
    }

    /// <summary>A training step on token ids (see <see cref="TrainStep(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float})"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id outside the embedding table, naming its position.</exception>
    public float TrainStep(ReadOnlySpan<int> ids, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        TakesTokens("TrainStep");
        NetworkArguments.Check(Name, "TrainStep", ids.Length, batch, InputFeatures, _inputShape, logits.IsEmpty ? -1 : logits.Length, OutputFeatures, _outputShape);
        PrepareTokens(ids.Slice(0, batch * InputFeatures), batch);
        UploadLabels(labels, batch);
        return Step(batch, logits);
    }

    /// <summary>The mean loss on token ids in evaluation mode, without gradients.</summary>
    public float EvaluateLoss(ReadOnlySpan<int> ids, ReadOnlySpan<int> labels, int batch, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        TakesTokens("EvaluateLoss");
        NetworkArguments.Check(Name, "EvaluateLoss", ids.Length, batch, InputFeatures, _inputShape, logits.IsEmpty ? -1 : logits.Length, OutputFeatures, _outputShape);
        PrepareTokens(ids.Slice(0, batch * InputFeatures), batch);
        return Evaluate(labels, batch, logits);
    }

    /// <summary>A training step on token ids with float targets (a regression or tagging loss).</summary>
    public float TrainStep(ReadOnlySpan<int> ids, ReadOnlySpan<float> targets, int batch, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        TakesTokens("TrainStep");
        NetworkArguments.Check(Name, "TrainStep", ids.Length, batch, InputFeatures, _inputShape, output.IsEmpty ? -1 : output.Length, OutputFeatures, _outputShape);
        PrepareTokens(ids.Slice(0, batch * InputFeatures), batch);
        UploadTargets(targets, batch);
        return Step(batch, output);
    }

    /// <summary>The mean loss on token ids with float targets, in evaluation mode.</summary>
    public float EvaluateLoss(ReadOnlySpan<int> ids, ReadOnlySpan<float> targets, int batch, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        TakesTokens("EvaluateLoss");
        NetworkArguments.Check(Name, "EvaluateLoss", ids.Length, batch, InputFeatures, _inputShape, output.IsEmpty ? -1 : output.Length, OutputFeatures, _outputShape);
        PrepareTokens(ids.Slice(0, batch * InputFeatures), batch);
        UploadTargets(targets, batch);
        return EvaluateUploaded(batch, output);
    }

    /// <summary>Inference on [batch, sequence] token ids of a sequence network (as <c>ISequenceClassifier.Forward</c>):
    /// <paramref name="mask"/> is [batch, sequence] of 1 (a real token) and 0 (padding), empty when every position is real.</summary>
    /// <exception cref="ArgumentException">Spans whose lengths do not fit the batch and sequence, or a mask of other values.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A sequence longer than MaxSequence, or an id outside the embedding table.</exception>
    public void Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output)
    {
        using var exclusive = EnterDevice();
        PrepareSequence("Forward", ids, mask, batch, sequence, output.Length);
        Infer(batch, output);
    }

    /// <summary>A training step on [batch, sequence] token ids (see <see cref="TrainStep(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float})"/>).</summary>
    public float TrainStep(ReadOnlySpan<int> ids, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        PrepareSequence("TrainStep", ids, mask, batch, sequence, logits.IsEmpty ? -1 : logits.Length);
        UploadLabels(labels, batch);
        return Step(batch, logits);
    }

    /// <summary>The mean loss on [batch, sequence] token ids in evaluation mode, without gradients.</summary>
    public float EvaluateLoss(ReadOnlySpan<int> ids, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        PrepareSequence("EvaluateLoss", ids, mask, batch, sequence, logits.IsEmpty ? -1 : logits.Length);
        return Evaluate(labels, batch, logits);
    }

    /// <summary>A training step on [batch, sequence] token ids with float targets (a regression or tagging loss; per
    /// position when the output runs along the sequence).</summary>
    public float TrainStep(ReadOnlySpan<int> ids, ReadOnlySpan<float> targets, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        PrepareSequence("TrainStep", ids, mask, batch, sequence, output.IsEmpty ? -1 : output.Length);
        UploadTargets(targets, batch);
        return Step(batch, output);
    }

    /// <summary>The mean loss on [batch, sequence] token ids with float targets, in evaluation mode.</summary>
    public float EvaluateLoss(ReadOnlySpan<int> ids, ReadOnlySpan<float> targets, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        PrepareSequence("EvaluateLoss", ids, mask, batch, sequence, output.IsEmpty ? -1 : output.Length);
        UploadTargets(targets, batch);
        return EvaluateUploaded(batch, output);
    }

    /// <summary>Checks a sequence batch as the CPU network does, then uploads its ids and mask and sets <see cref="SequenceLength"/>.</summary>
    private void PrepareSequence(string method, ReadOnlySpan<int> ids, ReadOnlySpan<int> mask, int batch, int sequence, int outputLength)
    {
        TakesTokens(method, sequence: true);
        CheckSequence(method, ids.Length, mask, batch, sequence, outputLength);
        PrepareTokens(ids, batch);
        UseMask(mask, batch, sequence);
    }

    /// <summary>As <see cref="PrepareSequence"/> for a sequence of float vectors.</summary>
    private void PrepareFloatSequence(string method, ReadOnlySpan<float> input, ReadOnlySpan<int> mask, int batch, int sequence, int outputLength)
    {
        TakesFloats(method, sequence: true);
        CheckSequence(method, input.Length, mask, batch, sequence, outputLength);
        Prepare(input, batch);
        UseMask(mask, batch, sequence);
    }

    private void CheckSequence(string method, int inputLength, ReadOnlySpan<int> mask, int batch, int sequence, int outputLength)
    {
        string tail = InputPerPosition == 1 ? "" : $", {InputPerPosition}";
        int perSample = OutputPerPosition > 0 ? sequence * OutputPerPosition : OutputFeatures;
        NetworkArguments.CheckSequence(Name, method, inputLength, mask, batch, sequence, MaxSequence, InputPerPosition, tail, outputLength, perSample, _outputShape);
    }

    /// <summary>Uploads the batch's mask (all ones when the caller gave none) and sets <see cref="SequenceLength"/>.</summary>
    private protected void UseMask(ReadOnlySpan<int> mask, int batch, int sequence)
    {
        if (mask.IsEmpty)
        {
            if (_allReal.Length < batch * sequence) _allReal = Enumerable.Repeat(1, batch * MaxSequence).ToArray();
            mask = _allReal.AsSpan(0, batch * sequence);
        }
        UseSequence(mask, sequence);
    }

    /// <summary>Inference on [batch, sequence, …] floats of a sequence network (as its CPU class's Forward): the mask as
    /// for token ids; the output is batch × its per-sample shape, or batch × sequence × its per-position values.</summary>
    public void Forward(ReadOnlySpan<float> input, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output)
    {
        using var exclusive = EnterDevice();
        PrepareFloatSequence("Forward", input, mask, batch, sequence, output.Length);
        Infer(batch, output);
    }

    /// <summary>A training step on a float sequence with class labels.</summary>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        PrepareFloatSequence("TrainStep", input, mask, batch, sequence, logits.IsEmpty ? -1 : logits.Length);
        UploadLabels(labels, batch);
        return Step(batch, logits);
    }

    /// <summary>A training step on a float sequence with float targets (per position when the output runs along it).</summary>
    public float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        PrepareFloatSequence("TrainStep", input, mask, batch, sequence, output.IsEmpty ? -1 : output.Length);
        UploadTargets(targets, batch);
        return Step(batch, output);
    }

    /// <summary>The mean loss on a float sequence with class labels, in evaluation mode.</summary>
    public float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default)
    {
        using var exclusive = EnterDevice();
        PrepareFloatSequence("EvaluateLoss", input, mask, batch, sequence, logits.IsEmpty ? -1 : logits.Length);
        return Evaluate(labels, batch, logits);
    }

    /// <summary>The mean loss on a float sequence with float targets, in evaluation mode.</summary>
    public float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output = default)
    {
        using var exclusive = EnterDevice();
        PrepareFloatSequence("EvaluateLoss", input, mask, batch, sequence, output.IsEmpty ? -1 : output.Length);
        UploadTargets(targets, batch);
        return EvaluateUploaded(batch, output);
    }

    /// <summary>Inference on the uploaded batch, its logits downloaded.</summary>
    private void Infer(int batch, Span<float> output)
    {
        WithLoss = false;
        RunForward(batch, training: false);
        Download(Logits, output.Slice(0, OutputCount(batch)));
    }

    /// <summary>The evaluation-mode loss of the uploaded batch (and its logits, when asked for).</summary>
    private float Evaluate(ReadOnlySpan<int> labels, int batch, Span<float> logits)
    {
        UploadLabels(labels, batch);
        return EvaluateUploaded(batch, logits);
    }

    /// <summary>The evaluation-mode loss of the uploaded batch and targets.</summary>
    private float EvaluateUploaded(int batch, Span<float> logits)
    {
        WithLoss = true;
        RunForward(batch, training: false);
        float loss = Loss(batch, backward: false);
        if (!logits.IsEmpty) Download(Logits, logits.Slice(0, OutputCount(batch)));
        return loss;
    }

    /// <summary>A twin of several inputs or outputs: its batches come as named columns (<see cref="MultiDeviceNetwork"/>).</summary>
    private protected virtual bool TakesColumns => false;

    private void TakesColumnsCheck(string method)
    {
        if (TakesColumns)
            throw new InvalidOperationException($"{Name}.{method}: the network has several inputs or outputs; pass its batch as a TensorBatch of named columns (IMultiNetwork.{method})" +
                (method == "Forward" ? ", or a span for each input and output (the twin's own Forward)." : "."));
    }

    private void TakesFloats(string method, bool sequence = false)
    {
        TakesColumnsCheck(method);
        if (TokenVocabulary > 0) throw new InvalidOperationException($"{Name}.{method}: the network takes token ids (ReadOnlySpan<int>), not floats.");
        if (sequence && MaxSequence == 0)
            throw new InvalidOperationException($"{Name}.{method}: the network takes {InputFeatures} floats per sample, not sequences: call {method} without a mask and sequence length.");
        if (!sequence && MaxSequence > 0)
            throw new InvalidOperationException($"{Name}.{method}: the network takes sequences of up to {MaxSequence} positions: call {method} with the attention mask and the sequence length.");
    }

    private void TakesTokens(string method, bool sequence = false)
    {
        TakesColumnsCheck(method);
        if (TokenVocabulary == 0) throw new InvalidOperationException($"{Name}.{method}: the network takes floats, not token ids.");
        if (sequence && MaxSequence == 0)
            throw new InvalidOperationException($"{Name}.{method}: the network takes {InputFeatures} token ids per sample, not sequences: call {method} without a mask and sequence length.");
        if (!sequence && MaxSequence > 0)
            throw new InvalidOperationException($"{Name}.{method}: the network takes sequences of up to {MaxSequence} token ids: call {method} with the attention mask and the sequence length.");
    }

    /// <summary>Checks <paramref name="used"/> (the batch's ids) against the table, then uploads them.</summary>
    private void PrepareTokens(ReadOnlySpan<int> used, int batch)
    {
        ThrowIfDisposed();
        for (int n = 0; n < used.Length; n++)
            if ((uint)used[n] >= (uint)TokenVocabulary)
                throw new ArgumentOutOfRangeException("ids", used[n], $"{Name}: token id {used[n]} at position {n} is outside the embedding table's {TokenVocabulary} rows.");
        if (batch > Capacity) Grow(batch);
        Upload(used, _tokens!.View);
        _tokenRuns.Set(used);
    }

    /// <summary>Inference on a batch already on the device (an input pipeline that stays there): <paramref name="output"/>
    /// gets batch × <see cref="OutputFeatures"/> logits on the device.</summary>
    /// <exception cref="ArgumentException">Views shorter than the batch needs.</exception>
    public void Forward(ArrayView<float> input, int batch, ArrayView<float> output)
    {
        using var exclusive = EnterDevice();
        CheckViews(input.Length, output.Length, batch, "Forward");
        PrepareOnDevice(input, batch, "Forward");
        WithLoss = false;
        RunForward(batch, training: false);
        CopyOnDevice(Logits, output, (long)batch * OutputFeatures);
    }

    /// <summary>As <see cref="TrainStep(ReadOnlySpan{float}, ReadOnlySpan{int}, int, Span{float})"/> on a batch already on
    /// the device. The labels are read back (batch ints) to check their range before the loss reads them.</summary>
    public float TrainStep(ArrayView<float> input, ArrayView<int> labels, int batch)
    {
        using var exclusive = EnterDevice();
        CheckViews(input.Length, -1, batch, "TrainStep");
        if (labels.Length < batch) throw new ArgumentException($"{Name}: {labels.Length} labels on the device for a batch of {batch}.", nameof(labels));
        PrepareOnDevice(input, batch, "TrainStep");
        var host = _labelsHost.AsSpan(0, batch);
        Download(labels, host);
        UploadLabels(host, batch);
        return Step(batch, default);
    }

    private static ulong SplitMix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private void CheckViews(long input, long output, int batch, string method)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"{Name}.{method}: the batch must be positive.");
        if (input < (long)batch * InputFeatures)
            throw new ArgumentException($"{Name}.{method}: the input view holds {input} floats; a batch of {batch} needs {(long)batch * InputFeatures} ({InputFeatures} per sample).", "input");
        if (output >= 0 && output < (long)batch * OutputFeatures)
            throw new ArgumentException($"{Name}.{method}: the output view holds {output} floats; a batch of {batch} needs {(long)batch * OutputFeatures}.", "output");
    }

    private void PrepareOnDevice(ArrayView<float> input, int batch, string method)
    {
        ThrowIfDisposed();
        TakesFloats(method);
        if (batch > Capacity) Grow(batch);
        CopyOnDevice(input, _input!.View, (long)batch * InputFeatures);
    }

    private static void CopyOnDevice(ArrayView<float> source, ArrayView<float> target, long length)
    {
        var from = source.SubView(0, length);
        var to = target.SubView(0, length);
        ArrayViewExtensions.CopyTo(from, in to);
    }

    /// <summary>The softmax of the logits, written by the loss (a region of the generated layout).</summary>
    protected abstract ArrayView<float> Probabilities { get; }

    /// <summary>The batch's mean loss and, with <paramref name="backward"/>, its gradient into the logits' gradient.</summary>
    private float Loss(int batch, bool backward) => TrainedLoss == DeviceLoss.Method ? MethodLoss(batch, backward)
        : OutputPerPosition > 0
        ? LossOnDevice(TrainedLoss, LossParameter, 1f, false, int.MinValue, 0, Logits, LogitsGradient, Probabilities, Labels, _targets!.View, default,
            _rowLoss!.View, batch * SequenceLength, OutputPerPosition, batch, backward) // over [T, …] outputs: a row per position
        : LossOnDevice(TrainedLoss, LossParameter, 1f, Weighted, IgnoreIndex, _weightTotal, Logits, LogitsGradient, Probabilities, Labels, _targets!.View,
            Weighted ? WeightsOnDevice : default, _rowLoss!.View, batch, OutputFeatures, batch, backward);

    /// <summary>A loss method's loss: the mean of its last value (each sample's sum on the device, then their total here);
    /// backward starts from that mean's gradient, 1/n everywhere.</summary>
    private float MethodLoss(int batch, bool backward) => MethodLoss(batch, backward, 1f, _rowLoss!.View);

    /// <summary>As above for a loss of weight <paramref name="weight"/> in a sum (its gradient scaled by it), summing
    /// each sample's values into <paramref name="rowLosses"/>.</summary>
    private protected float MethodLoss(int batch, bool backward, float weight, ArrayView<float> rowLosses)
    {
        long n = (long)batch * LossValuesPerSample;
        var rowLoss = rowLosses.SubView(0, batch);
        rowLoss.MemSetToZero();
        K.AddRowSums(rowLoss, LossValues, batch, LossValuesPerSample);
        float loss = (float)(SumOf(rowLoss, batch) / n);
        if (backward) K.Fill(LossValuesGradient, n, weight / n);
        return loss;
    }

    /// <summary>
    /// One loss over <paramref name="count"/> rows of <paramref name="size"/> outputs <paramref name="y"/>: per-row sums on
    /// the device, their total in double on the host (as the CPU kernels sum), divided as PyTorch divides (the batch for
    /// a class-index loss, the <paramref name="samples"/> for KL's BatchMean (rows are positions over a sequence), the
    /// weights of the kept labels when weighted, else every element; a batch whose every label is ignored has loss 0).
    /// With <paramref name="backward"/> the gradient times <paramref name="weight"/> is added to <paramref name="dy"/>.
    /// </summary>
    private protected float LossOnDevice(DeviceLoss kind, float parameter, float weight, bool weighted, int ignoreIndex, double weightTotal,
        ArrayView<float> y, ArrayView<float> dy, ArrayView<float> probs, ArrayView<int> labels, ArrayView<float> targets, ArrayView<float> classWeights,
        ArrayView<float> rowLoss, int count, int size, int samples, bool backward)
    {
        bool nll = kind == DeviceLoss.Nll, classIndex = kind is DeviceLoss.CrossEntropy or DeviceLoss.Nll;
        double divisor = weighted ? weightTotal : classIndex ? count : kind == DeviceLoss.KlDiv && parameter != 0 ? samples : (double)count * size;
        if (weighted) K.WeightedClassLossForward(nll, rowLoss, probs, y, labels, classWeights, count, size, parameter, ignoreIndex);
        else if (kind == DeviceLoss.CrossEntropy) K.CrossEntropyForward(rowLoss, probs, y, labels, count, size, parameter);
        else if (nll) K.NllForward(rowLoss, y, labels, count, size);
        else K.FloatLossForward(kind, rowLoss, y, targets, count, size, parameter);
        double sum = SumOf(rowLoss, count);
        if (divisor == 0) return 0f;
        if (backward)
        {
            float scale = (float)(weight / divisor);
            if (weighted) K.WeightedClassLossBackward(nll, dy, probs, labels, classWeights, count, size, scale, parameter, ignoreIndex);
            else if (kind == DeviceLoss.CrossEntropy) K.CrossEntropyBackward(dy, probs, labels, count, size, scale, parameter);
            else if (nll) K.NllBackward(dy, labels, count, size, scale);
            else K.FloatLossBackward(kind, dy, y, targets, (long)count * size, scale, parameter);
        }
        return (float)(sum / divisor);
    }

    /// <summary>The total of <paramref name="count"/> per-row losses, downloaded and summed in double.</summary>
    private double SumOf(ArrayView<float> rowLoss, int count)
    {
        Download(rowLoss, _rowLossHost.AsSpan(0, count));
        double sum = 0;
        for (int r = 0; r < count; r++) sum += _rowLossHost[r];
        return sum;
    }

    /// <summary>The mean of <paramref name="count"/> per-row losses.</summary>
    private protected float MeanOf(ArrayView<float> rowLoss, int count) => (float)(SumOf(rowLoss, count) / count);

    /// <summary>Copies the host store's parameters and buffers (running statistics) to the device: after loading a checkpoint into the host network.</summary>
    public void CopyParametersFromHost()
    {
        using var exclusive = EnterDevice();
        ThrowIfDisposed();
        Upload(HostParameters.ReadValues, _values.View);
        Upload<float>(HostParameters.BufferValues, _buffers.View);
    }

    /// <summary>Copies the device's parameters and buffers to the host store: before saving a checkpoint or running the CPU network.</summary>
    public void CopyParametersToHost()
    {
        using var exclusive = EnterDevice();
        ThrowIfDisposed();
        Download(_values.View, HostParameters.Values);
        Download(_buffers.View, HostParameters.BufferValues);
    }

    /// <summary>Copies the device's gradients to the host store (to inspect them, or clip on the host).</summary>
    public void CopyGradientsToHost()
    {
        using var exclusive = EnterDevice();
        ThrowIfDisposed();
        Download(GradientBuffer.View, HostParameters.Gradients);
    }

    /// <summary>Copies the host store's gradients to the device (after they were changed there: averaged over the
    /// ranks of a data-parallel job).</summary>
    public void CopyGradientsFromHost()
    {
        using var exclusive = EnterDevice();
        ThrowIfDisposed();
        Upload<float>(HostParameters.Gradients, GradientBuffer.View);
    }

    /// <summary>Uploads the batch's floats (their length checked by the caller: batch × InputFeatures, or batch × T × the
    /// values per position of a sequence).</summary>
    private void Prepare(ReadOnlySpan<float> input, int batch)
    {
        ThrowIfDisposed();
        if (batch > Capacity) Grow(batch);
        Upload(input, _input!.View);
    }

    /// <summary>A network without a loss has nothing to train or evaluate a loss of.</summary>
    private void HasLoss()
    {
        if (TrainedLoss == DeviceLoss.None)
            throw new InvalidOperationException($"{Name} has no loss (its [Network] declares none): its twin runs inference only (Forward).");
    }

    private void UploadLabels(ReadOnlySpan<int> labels, int batch)
    {
        HasLoss();
        if (!ClassLabels) throw new InvalidOperationException($"{Name} trains with {TrainedLoss} on float targets shaped like its output (ReadOnlySpan<float>), not class labels.");
        if (labels.Length != batch) throw new ArgumentException($"{Name}: {labels.Length} labels for a batch of {batch}.", nameof(labels));
        _weightTotal = CheckedLabelWeights(labels, OutputFeatures, ClassWeights, IgnoreIndex, "", nameof(labels));
        Upload(labels, _labels!.View);
    }

    private void UploadTargets(ReadOnlySpan<float> targets, int batch)
    {
        HasLoss();
        if (ClassLabels) throw new InvalidOperationException($"{Name} trains with {TrainedLoss} on class labels (ReadOnlySpan<int>), not float targets.");
        if (targets.Length != OutputCount(batch))
            throw new ArgumentException($"{Name}: targets have {targets.Length} floats, but batch {batch} × [{_outputShape}] needs {OutputCount(batch)}.", nameof(targets));
        if (TrainedLoss == DeviceLoss.KlDiv) CheckProbabilities(targets, "", nameof(targets));
        Upload(targets, _targets!.View);
    }

    /// <summary>A sequence batch's attention mask (checked by the caller) goes up and its length becomes <see cref="SequenceLength"/>.</summary>
    private protected void UseSequence(ReadOnlySpan<int> mask, int sequence)
    {
        Upload(mask, _mask!.View);
        SequenceLength = sequence;
    }

    /// <summary>Makes room for <paramref name="batch"/> samples (checking that the twin and its device are alive).</summary>
    private protected void EnsureCapacity(int batch)
    {
        ThrowIfDisposed();
        if (batch > Capacity) Grow(batch);
    }

    /// <summary>After the workspace grew to <paramref name="capacity"/>: a subclass's own per-batch buffers.</summary>
    private protected virtual void WorkspaceGrown(int capacity) { }

    /// <summary>Frees a subclass's own buffers (on growth and disposal).</summary>
    private protected virtual void FreeExtraWorkspace() { }

    private void Grow(int batch)
    {
        // Checked before the workspace in hand is freed: a batch the device cannot hold leaves the twin as it was, so a
        // smaller one can follow (where the device cannot say what is free, the allocations below are the check).
        long needed = WorkspaceBytes(batch, _trains), held = Capacity > 0 ? WorkspaceBytes(Capacity, _grad is not null) : 0;
        if (Device.FreeMemory is { } free && needed > free + held)
            throw Device.OutOfMemory(needed, $"{Name}'s workspace at batch {batch} ({WorkspaceParts(batch)})", null);
        FreeWorkspace();
        try
        {
            Capacity = batch;
            _act = Device.Allocate(ActivationsPerSample * batch);
            _grad = _trains ? Device.Allocate(GradientsPerSample * batch) : null;
            _ints = Device.AllocateInts(IntsPerSample * batch);
            _scratch = Device.Allocate(ScratchFor(batch));
            _input = Device.Allocate(TokenVocabulary > 0 ? 1 : (long)InputFeatures * batch);
            _tokens = Device.AllocateInts(TokenVocabulary > 0 ? (long)InputFeatures * batch : 1);
            _mask = Device.AllocateInts(Math.Max(1, (long)MaxSequence * batch));
            _labels = Device.AllocateInts(batch);
            _targets = Device.Allocate(ClassLabels ? 1 : (long)OutputFeatures * batch);
            _rowLoss = Device.Allocate((long)batch * Math.Max(1, MaxSequence));
            _rowLossHost = new float[(long)batch * Math.Max(1, MaxSequence)]; // a loss over [T, …] outputs has a row per position
            _labelsHost = new int[batch];
            WorkspaceGrown(batch);
        }
        catch (DeviceMemoryException e)
        {
            // No half-made workspace stays behind: the next call allocates afresh for its own batch.
            FreeWorkspace();
            throw new DeviceMemoryException($"{Name}'s workspace at batch {batch} ({WorkspaceParts(batch)}) does not fit: {e.Message}", needed, e.FreeBytes, e);
        }
        BindWorkspace();
    }

    /// <summary>An allocation whose failure names what it was for.</summary>
    private MemoryBuffer1D<float, Stride1D.Dense> Named(Func<MemoryBuffer1D<float, Stride1D.Dense>> allocate, string what)
    {
        try { return allocate(); }
        catch (DeviceMemoryException e) { throw new DeviceMemoryException($"{Name}'s {what} do not fit: {e.Message}", e.RequestedBytes, e.FreeBytes, e); }
    }

    /// <summary>Device bytes of the workspace at <paramref name="batch"/> (with the activations' gradients when <paramref name="trains"/>).</summary>
    private long WorkspaceBytes(int batch, bool trains) =>
        4 * ((ActivationsPerSample + (trains ? GradientsPerSample : 0) + IntsPerSample + (long)InputFeatures + OutputFeatures + 2L * Math.Max(1, MaxSequence) + 1) * batch + ScratchFor(batch));

    /// <summary>The workspace's largest parts, as the memory error names them.</summary>
    private string WorkspaceParts(int batch) =>
        $"activations {DeviceMemoryException.Size(4 * ActivationsPerSample * batch)}" + (_trains ? $", their gradients {DeviceMemoryException.Size(4 * GradientsPerSample * batch)}" : "") +
        $", scratch {DeviceMemoryException.Size(4 * ScratchFor(batch))}";

    private void FreeWorkspace()
    {
        FreeExtraWorkspace();
        _act?.Dispose(); _grad?.Dispose(); _ints?.Dispose(); _scratch?.Dispose(); _input?.Dispose(); _tokens?.Dispose(); _mask?.Dispose(); _labels?.Dispose(); _targets?.Dispose(); _rowLoss?.Dispose();
        _act = _grad = _scratch = _input = _rowLoss = _targets = null;
        _ints = _labels = _tokens = _mask = null;
        Capacity = 0;
    }

    private void ThrowIfDisposed()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (Device.IsDisposed)
            throw new ObjectDisposedException(nameof(GpuDevice), $"{Name}: the GpuDevice it was moved to has been disposed.");
    }

    // ILGPU's span overloads pin the host memory for the copy; its overloads by reference take the address as it is,
    // and a collection moving the array mid-copy then reads or writes where it used to be.
    internal static void Upload<T>(ReadOnlySpan<T> source, ArrayView<T> target) where T : unmanaged
    {
        if (source.IsEmpty) return;
        target.SubView(0, source.Length).CopyFromCPU(source);
    }

    internal static void Download<T>(ArrayView<T> source, Span<T> target) where T : unmanaged
    {
        if (target.IsEmpty) return;
        source.SubView(0, target.Length).CopyToCPU(target);
    }

    /// <summary>Frees the device memory (the device itself stays open).</summary>
    public void Dispose()
    {
        using var exclusive = EnterDevice();
        if (_disposed) return;
        _disposed = true;
        FreeWorkspace();
        _values.Dispose();
        _gradients?.Dispose();
        _weights?.Dispose();
        _buffers.Dispose();
        _tokenRuns.Dispose();
        foreach (var b in _persistent) b.Dispose();
        GC.SuppressFinalize(this);
    }
}
