using Compiled.Nets.Data;
using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>One input of a twin of several inputs: its column name, token ids or floats, values per sample (per position
/// for an input along the sequence), for token ids the rows of the smallest table (or one-hot width) that reads them,
/// and whether it runs along the sequence.</summary>
public sealed class DeviceInput(string name, bool tokens, int size, int vocabulary, bool sequence = false)
{
    public string Name { get; } = name;
    public bool Tokens { get; } = tokens;
    public int Size { get; } = size;
    public int Vocabulary { get; } = vocabulary;
    public bool Sequence { get; } = sequence;
}

/// <summary>One loss of a twin of several outputs: the output it reads (index into the outputs), its kind and parameter
/// (label smoothing, β, BatchMean, margin), its weight in the sum, its targets' column, a class-index loss's class
/// weights (null: none) and ignored label (int.MinValue: none), and a loss of two outputs' second (-1: none).</summary>
public sealed class DeviceHead(int output, DeviceLoss loss, float parameter, float weight, string targets, float[]? classWeights, int ignoreIndex, int output2 = -1)
{
    public int Output2 { get; } = output2;
    public int Output { get; } = output;
    public DeviceLoss Loss { get; } = loss;
    public float Parameter { get; } = parameter;
    public float Weight { get; } = weight;
    public string Targets { get; } = targets;
    public float[]? ClassWeights { get; } = classWeights;
    public int IgnoreIndex { get; } = ignoreIndex;
}

/// <summary>
/// The device twin of a network with several inputs or outputs (fixed shapes): like the CPU network's
/// <see cref="IMultiNetwork"/> it takes a <see cref="TensorBatch"/> whose columns are named as its inputs and its losses'
/// targets, so the <see cref="Training.Trainer"/> trains it with <see cref="TensorDataLoader"/>s. Each input has its own
/// device buffer; each loss is computed on the device (per-row sums, their total in double on the host, as the
/// one-output twin does) and its gradient enters its output's scaled by its weight.
/// </summary>
public abstract class MultiDeviceNetwork : DeviceNetwork, IMultiNetwork
{
    /// <summary>The mask column of a sequence network's batches: Hugging Face's name, as the CPU network reads it.</summary>
    private const string MaskColumn = "attention_mask";

    private readonly IReadOnlyList<TensorSlot> _inputSlots, _outputSlots;
    private readonly IReadOnlyList<LossSlot> _lossSlots;
    private MemoryBuffer1D<float, Stride1D.Dense>[] _floatInputs = [];
    private MemoryBuffer1D<int, Stride1D.Dense>[] _tokenInputs = [];
    private TokenRunsBuilder[] _tokenRuns = [];
    private MemoryBuffer1D<int, Stride1D.Dense>[] _labels = [];
    private MemoryBuffer1D<float, Stride1D.Dense>[] _targets = [];
    private MemoryBuffer1D<float, Stride1D.Dense>[] _rowLosses = [];
    private MemoryBuffer1D<float, Stride1D.Dense>?[]? _classWeights;
    private double[] _weightTotals = [];

    /// <summary>Copies the host network's parameters to <paramref name="device"/>.</summary>
    protected MultiDeviceNetwork(GpuDevice device, IMultiNetwork host, string name)
        : base(device, (host ?? throw new ArgumentNullException(nameof(host))).Parameters, name, 0, "", 0, "", 0f)
    {
        (_inputSlots, _outputSlots, _lossSlots) = (host.Inputs, host.Outputs, host.Losses);
    }

    /// <summary>Copies <paramref name="store"/>'s parameters to <paramref name="device"/> for a network of several
    /// inputs or outputs without a loss (its CPU class is no <see cref="IMultiNetwork"/>): a twin for inference only.</summary>
    protected MultiDeviceNetwork(GpuDevice device, ParameterStore store, string name, IReadOnlyList<TensorSlot> inputs, IReadOnlyList<TensorSlot> outputs)
        : base(device, store ?? throw new ArgumentNullException(nameof(store)), name, 0, "", 0, "", 0f)
    {
        (_inputSlots, _outputSlots, _lossSlots) = (inputs, outputs, []);
    }

    private protected override bool TakesColumns => true;

    /// <summary>The inputs, in the host network's order.</summary>
    protected abstract IReadOnlyList<DeviceInput> InputLayout { get; }

    /// <summary>The losses, in the host network's order.</summary>
    protected abstract IReadOnlyList<DeviceHead> HeadLayout { get; }

    /// <summary>The device values of output <paramref name="output"/> (index into the host's outputs).</summary>
    protected abstract ArrayView<float> OutputAt(int output);

    /// <summary>Their gradient, which the losses write and backward starts from.</summary>
    protected abstract ArrayView<float> OutputGradientAt(int output);

    /// <summary>The softmax a cross-entropy loss of head <paramref name="head"/> writes (a region of the generated layout).</summary>
    protected abstract ArrayView<float> HeadProbabilities(int head);

    /// <summary>The batch's floats of input <paramref name="input"/>.</summary>
    protected ArrayView<float> InputAt(int input) => _floatInputs[input].View;

    /// <summary>The batch's token ids of input <paramref name="input"/>, checked on the host.</summary>
    protected ArrayView<int> TokenInputAt(int input) => _tokenInputs[input].View;

    /// <summary>Input <paramref name="input"/>'s token ids grouped by id, for an embedding's backward (built on first use for each batch).</summary>
    protected EmbeddingRuns TokenRunsAt(int input) => _tokenRuns[input].Runs(Device);

    /// <summary>The loss method's float targets (what its target parameter reads), or its labels with <c>ClassIndices</c>.</summary>
    protected ArrayView<float> MethodTargets => _targets[MethodHead].View;
    protected ArrayView<int> MethodLabels => _labels[MethodHead].View;

    private int MethodHead
    {
        get
        {
            var heads = HeadLayout;
            for (int h = 0; h < heads.Count; h++) if (heads[h].Loss == DeviceLoss.Method) return h;
            throw new InvalidOperationException($"{Name} has no loss method.");
        }
    }

    /// <summary>Head <paramref name="head"/> reads class labels: a class-index loss, or a loss method on class indices.</summary>
    private bool TakesLabels(DeviceHead head) => IsClassIndex(head.Loss) || head.Loss == DeviceLoss.Method && MethodOnLabels;

    // The one-output members are not this twin's way in (its single-span methods refuse before reaching them).
    protected sealed override ArrayView<float> Logits => OutputAt(0);
    protected sealed override ArrayView<float> LogitsGradient => OutputGradientAt(0);
    protected sealed override ArrayView<float> Probabilities => HeadProbabilities(0);

    IReadOnlyList<TensorSlot> IMultiNetwork.Inputs => _inputSlots;
    IReadOnlyList<TensorSlot> IMultiNetwork.Outputs => _outputSlots;
    IReadOnlyList<LossSlot> IMultiNetwork.Losses => _lossSlots;
    int IMultiNetwork.MaxSequence => MaxSequence;
    ParameterStore IMultiNetwork.Parameters => HostParameters;

    /// <summary>
    /// One training step on the device: the batch's input and target columns go up, the weighted sum of the losses comes
    /// back (and each loss, unweighted, into <paramref name="losses"/> when not empty; each output into
    /// <paramref name="outputs"/>' buffer); every trainable parameter's gradient is on the device for an optimizer step.
    /// </summary>
    /// <exception cref="InvalidOperationException">A column missing, of the other element type or of another size.</exception>
    /// <exception cref="ArgumentException">A label outside its classes, a buffer too short.</exception>
    public float TrainStep(TensorBatch batch, float[][] outputs, Span<float> losses)
    {
        using var exclusive = EnterDevice();
        int count = Prepare(batch, losses, "TrainStep");
        BeginTrainingStep();
        WithLoss = true;
        RunForward(count, training: true);
        float total = Losses(count, losses, backward: true);
        DownloadOutputs(outputs, count);
        RunBackward(count);
        return total;
    }

    /// <summary>The weighted loss in evaluation mode, without gradients (see <see cref="TrainStep(TensorBatch, float[][], Span{float})"/>).</summary>
    public float EvaluateLoss(TensorBatch batch, float[][] outputs, Span<float> losses)
    {
        using var exclusive = EnterDevice();
        int count = Prepare(batch, losses, "EvaluateLoss");
        WithLoss = true;
        RunForward(count, training: false);
        float total = Losses(count, losses, backward: false);
        DownloadOutputs(outputs, count);
        return total;
    }

    /// <summary>Inference in evaluation mode on the batch's input columns: each output into its buffer (targets not read).</summary>
    public void Forward(TensorBatch batch, float[][] outputs)
    {
        using var exclusive = EnterDevice();
        ArgumentNullException.ThrowIfNull(batch);
        EnsureCapacity(batch.Count);
        UploadInputs(batch, "Forward");
        WithLoss = false;
        RunForward(batch.Count, training: false);
        DownloadOutputs(outputs, batch.Count);
    }

    // The generated Forward over spans (as the CPU class's Forward): the batch (with a sequence, its length and mask) and
    // the output spans checked, each input checked and uploaded, the forward run, each output downloaded.

    /// <summary>Checks the batch and each output span's length (output i has <paramref name="outputLengths"/>[i] floats).</summary>
    protected void BeginForward(int batch, params ReadOnlySpan<int> outputLengths)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"{Name}.Forward: batch must be positive.");
        CheckOutputs(batch, 1, outputLengths);
        EnsureCapacity(batch);
    }

    /// <summary>A sequence network's call: the batch, the sequence length (up to MaxSequence) and the attention mask
    /// ([batch, sequence] of 0/1, a real token in every row; empty: every position real) checked as the CPU checks them,
    /// each output span's length (batch × its per-sample size, along T batch × sequence × its size per position); the
    /// mask goes up.</summary>
    protected void BeginForward(ReadOnlySpan<int> mask, int batch, int sequence, params ReadOnlySpan<int> outputLengths)
    {
        NetworkArguments.CheckCall(Name, "Forward", mask, batch, sequence, MaxSequence, -1, 0, "");
        CheckOutputs(batch, sequence, outputLengths);
        EnsureCapacity(batch);
        UseMask(mask, batch, sequence);
    }

    private void CheckOutputs(int batch, int sequence, ReadOnlySpan<int> outputLengths)
    {
        for (int o = 0; o < outputLengths.Length; o++)
        {
            var slot = _outputSlots[o];
            NetworkArguments.CheckOutput(Name, "Forward", slot.Name, outputLengths[o], batch, slot.IsSequence ? sequence * slot.Size : slot.Size, Shape(slot, sequence), optional: false);
        }
    }

    /// <summary>A slot's per-sample shape as messages show it (T as the call's length).</summary>
    private static string Shape(TensorSlot slot, int sequence) => string.Join(", ", slot.Shape.Select(d => d == -1 ? sequence : d));

    /// <summary>Input <paramref name="input"/>'s floats, checked for length and uploaded.</summary>
    protected void UploadInput(int input, ReadOnlySpan<float> values, int batch)
    {
        var slot = InputLayout[input];
        int positions = slot.Sequence ? SequenceLength : 1;
        NetworkArguments.CheckInput(Name, "Forward", slot.Name, values.Length, batch, positions, slot.Size, Shape(_inputSlots[input], positions));
        Upload(values, _floatInputs[input].View);
    }

    /// <summary>Input <paramref name="input"/>'s token ids, checked for length and against its table, and uploaded.</summary>
    protected void UploadInput(int input, ReadOnlySpan<int> ids, int batch)
    {
        var slot = InputLayout[input];
        int positions = slot.Sequence ? SequenceLength : 1;
        NetworkArguments.CheckInput(Name, "Forward", slot.Name, ids.Length, batch, positions, slot.Size, Shape(_inputSlots[input], positions));
        UploadIds(slot, ids, input);
    }

    /// <summary>The forward pass in evaluation mode over the uploaded inputs.</summary>
    protected void RunInference(int batch)
    {
        WithLoss = false;
        RunForward(batch, training: false);
    }

    /// <summary>Output <paramref name="output"/> of the last forward into <paramref name="values"/> (checked when the call began).</summary>
    protected void DownloadOutput(int output, Span<float> values) => Download(OutputAt(output), values);

    /// <summary>A network without a loss has nothing to train or evaluate a loss of.</summary>
    private void HasLosses()
    {
        if (HeadLayout.Count == 0)
            throw new InvalidOperationException($"{Name} has no loss (its [Network] declares none): its twin runs inference only (Forward).");
    }

    private int Prepare(TensorBatch batch, Span<float> losses, string method)
    {
        ArgumentNullException.ThrowIfNull(batch);
        HasLosses();
        var heads = HeadLayout;
        if (!losses.IsEmpty && losses.Length != heads.Count)
            throw new ArgumentException($"{Name}: losses has {losses.Length} values, but the network has {heads.Count} losses.", nameof(losses));
        int count = batch.Count;
        EnsureCapacity(count);
        UploadInputs(batch, method);
        var slots = _outputSlots;
        for (int h = 0; h < heads.Count; h++)
        {
            var head = heads[h];
            var slot = slots[head.Output];
            if (head.Loss == DeviceLoss.CosineEmbedding) UploadTargets(h, head, batch.Floats(head.Targets, 1)); // one label per pair
            else if (TakesLabels(head)) UploadLabels(h, head, batch.Integers(head.Targets, 1), slot.Size);
            else UploadTargets(h, head, slot.IsSequence ? batch.Floats(head.Targets, slot.Size, SequenceLength) : batch.Floats(head.Targets, slot.Size));
        }
        return count;
    }

    /// <summary>A sequence network's batch: cut to its longest real row of the mask column, the mask checked as the CPU
    /// network checks it and uploaded.</summary>
    private void UploadSequence(TensorBatch batch, string method)
    {
        if (MaxSequence == 0) return;
        int sequence = batch.SequenceLength(MaskColumn);
        if (sequence > MaxSequence)
            throw new ArgumentOutOfRangeException(nameof(batch), sequence, $"{Name}: the batch's longest row has {sequence} positions; MaxSequence is {MaxSequence}.");
        var mask = batch.Integers(MaskColumn, 1, sequence);
        Kernels.SequenceKernels.CheckMask(mask, batch.Count, sequence, Name, method);
        UseSequence(mask, sequence);
    }

    private void UploadInputs(TensorBatch batch, string method)
    {
        UploadSequence(batch, method);
        var inputs = InputLayout;
        for (int i = 0; i < inputs.Count; i++)
        {
            var input = inputs[i];
            if (!input.Tokens)
            {
                Upload(input.Sequence ? batch.Floats(input.Name, input.Size, SequenceLength) : batch.Floats(input.Name, input.Size), _floatInputs[i].View);
                continue;
            }
            UploadIds(input, input.Sequence ? batch.Integers(input.Name, input.Size, SequenceLength) : batch.Integers(input.Name, input.Size), i);
        }
    }

    private void UploadIds(DeviceInput input, ReadOnlySpan<int> ids, int i)
    {
        for (int n = 0; n < ids.Length; n++)
            if ((uint)ids[n] >= (uint)input.Vocabulary)
                throw new ArgumentOutOfRangeException(input.Name, ids[n], $"{Name}: token id {ids[n]} at position {n} of '{input.Name}' is outside [0, {input.Vocabulary}).");
        Upload(ids, _tokenInputs[i].View);
        _tokenRuns[i].Set(ids);
    }

    private static bool IsClassIndex(DeviceLoss loss) => loss is DeviceLoss.CrossEntropy or DeviceLoss.Nll;

    private void UploadLabels(int h, DeviceHead head, ReadOnlySpan<int> labels, int classes)
    {
        _weightTotals[h] = CheckedLabelWeights(labels, classes, head.ClassWeights, head.IgnoreIndex, $" of '{head.Targets}'", "batch");
        Upload(labels, _labels[h].View);
    }

    private void UploadTargets(int h, DeviceHead head, ReadOnlySpan<float> targets)
    {
        if (head.Loss == DeviceLoss.KlDiv) CheckProbabilities(targets, $" of '{head.Targets}'", "batch");
        Upload(targets, _targets[h].View);
    }

    /// <summary>Each loss on the device; with <paramref name="backward"/> its gradient, scaled by its weight, enters its output's.</summary>
    private float Losses(int count, Span<float> losses, bool backward)
    {
        var heads = HeadLayout;
        var slots = _outputSlots;
        double total = 0;
        for (int h = 0; h < heads.Count; h++)
        {
            var head = heads[h];
            var slot = slots[head.Output];
            if (head.Loss == DeviceLoss.CosineEmbedding)
            {
                float pair = CosineLoss(h, head, count, slot.Size, backward);
                if (!losses.IsEmpty) losses[h] = pair;
                total += head.Weight * (double)pair;
                continue;
            }
            if (head.Loss == DeviceLoss.Method)
            {
                float mean = MethodLoss(count, backward, head.Weight, _rowLosses[h].View);
                if (!losses.IsEmpty) losses[h] = mean;
                total += head.Weight * (double)mean;
                continue;
            }
            int size = slot.Size, rows = slot.IsSequence ? count * SequenceLength : count; // a loss over [T, …]: a row per position
            bool weighted = IsClassIndex(head.Loss) && (head.ClassWeights is not null || head.IgnoreIndex != int.MinValue);
            float loss = LossOnDevice(head.Loss, head.Parameter, head.Weight, weighted, head.IgnoreIndex, _weightTotals[h], OutputAt(head.Output), OutputGradientAt(head.Output),
                HeadProbabilities(h), _labels[h].View, _targets[h].View, weighted ? ClassWeightsOf(h, size) : default, _rowLosses[h].View, rows, size, count, backward);
            if (!losses.IsEmpty) losses[h] = loss;
            total += head.Weight * (double)loss;
        }
        return (float)total;
    }

    /// <summary>A cosine embedding loss of two outputs: its mean over the pairs, and with <paramref name="backward"/> both
    /// outputs' gradients times its weight.</summary>
    private float CosineLoss(int h, DeviceHead head, int count, int dim, bool backward)
    {
        var rowLoss = _rowLosses[h].View;
        var a = OutputAt(head.Output);
        var b = OutputAt(head.Output2);
        K.CosineEmbeddingForward(rowLoss, a, b, _targets[h].View, count, dim, head.Parameter);
        float loss = MeanOf(rowLoss, count);
        if (backward) K.CosineEmbeddingBackward(OutputGradientAt(head.Output), OutputGradientAt(head.Output2), a, b, _targets[h].View, count, dim, head.Parameter, head.Weight / count);
        return loss;
    }

    /// <summary>A head's class weights on the device (ones when only a label is ignored), uploaded on first use.</summary>
    private ArrayView<float> ClassWeightsOf(int h, int classes)
    {
        _classWeights ??= new MemoryBuffer1D<float, Stride1D.Dense>?[HeadLayout.Count];
        _classWeights[h] ??= UploadClassWeights(HeadLayout[h].ClassWeights, classes);
        return _classWeights[h]!.View;
    }

    private void DownloadOutputs(float[][] outputs, int count)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        var slots = _outputSlots;
        for (int o = 0; o < slots.Count; o++)
            Download(OutputAt(o), NetworkArguments.OutputBuffer(Name, outputs, o, slots[o].Name, count, slots[o].IsSequence ? SequenceLength * slots[o].Size : slots[o].Size));
    }

    private protected override void WorkspaceGrown(int capacity)
    {
        // Values along the sequence are laid out for T = MaxSequence, as the activations are.
        long positions = Math.Max(1, MaxSequence);
        var inputs = InputLayout;
        _floatInputs = AllocateEach(inputs, i => Device.Allocate(i.Tokens ? 1 : i.Size * (i.Sequence ? positions : 1) * capacity));
        _tokenInputs = AllocateEach(inputs, i => Device.AllocateInts(i.Tokens ? i.Size * (i.Sequence ? positions : 1) * capacity : 1));
        _tokenRuns = inputs.Select(_ => new TokenRunsBuilder()).ToArray();
        var heads = HeadLayout;
        var slots = _outputSlots;
        _labels = AllocateEach(heads, h => Device.AllocateInts(TakesLabels(h) ? capacity : 1));
        _targets = AllocateEach(heads, h => Device.Allocate(TakesLabels(h) ? 1 : h.Loss == DeviceLoss.CosineEmbedding ? capacity
            : slots[h.Output].Size * (slots[h.Output].IsSequence ? positions : 1) * capacity));
        _rowLosses = AllocateEach(heads, _ => Device.Allocate(positions * capacity));
        _weightTotals = new double[heads.Count];
    }

    /// <summary>A buffer per item; where the device refuses one, those already made are freed before the error goes on.</summary>
    private static TBuffer[] AllocateEach<TItem, TBuffer>(IReadOnlyList<TItem> items, Func<TItem, TBuffer> allocate) where TBuffer : IDisposable
    {
        var made = new TBuffer[items.Count];
        int count = 0;
        try
        {
            for (; count < made.Length; count++) made[count] = allocate(items[count]);
            return made;
        }
        catch
        {
            for (int i = 0; i < count; i++) made[i].Dispose();
            throw;
        }
    }

    private protected override void FreeExtraWorkspace()
    {
        foreach (var b in _floatInputs) b.Dispose();
        foreach (var b in _tokenInputs) b.Dispose();
        foreach (var r in _tokenRuns) r.Dispose();
        foreach (var b in _labels) b.Dispose();
        foreach (var b in _targets) b.Dispose();
        foreach (var b in _rowLosses) b.Dispose();
        if (_classWeights is not null) foreach (var b in _classWeights) b?.Dispose();
        _classWeights = null;
        _floatInputs = []; _tokenInputs = []; _tokenRuns = []; _labels = []; _targets = []; _rowLosses = [];
    }
}
