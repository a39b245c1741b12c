namespace Compiled.Nets;

/// <summary>A layer usable in a network's <c>Forward</c>; its eager <see cref="Forward"/> is the slow reference path.</summary>
public interface ILayer
{
    /// <summary>Runs the layer eagerly on a tensor (records the backward on the tape when training).</summary>
    Tensor Forward(Tensor x);
}

/// <summary>What every generated network offers: its shapes, its parameters and the compiled inference forward.</summary>
public interface INetwork
{
    /// <summary>The network's class name.</summary>
    string Name { get; }
    /// <summary>The per-sample input shape (a symbolic sequence dimension is reported at its maximum).</summary>
    IReadOnlyList<int> InputShape { get; }
    /// <summary>Floats per input sample.</summary>
    int InputSize { get; }
    /// <summary>The per-sample output shape.</summary>
    IReadOnlyList<int> OutputShape { get; }
    /// <summary>Floats per output sample (the number of classes for a classifier).</summary>
    int OutputSize { get; }
    /// <summary>Parameters, gradients and buffers.</summary>
    ParameterStore Parameters { get; }
}

/// <summary>A generated network whose input is a float tensor (images, features).</summary>
public interface IFloatNetwork : INetwork
{
    /// <summary>
    /// Compiled inference (evaluation mode: dropout off, BatchNorm running statistics).
    /// </summary>
    /// <param name="input">[batch, ..InputShape] floats.</param>
    /// <param name="batch">Number of samples.</param>
    /// <param name="output">[batch, ..OutputShape] floats, written.</param>
    /// <exception cref="ArgumentException">When a span's length does not match the batch and the declared shapes.</exception>
    void Forward(ReadOnlySpan<float> input, int batch, Span<float> output);
}

/// <summary>A generated network trained with cross-entropy on class indices (<c>[CrossEntropyLoss]</c>).</summary>
public interface IClassifier : IFloatNetwork
{
    /// <summary>
    /// One compiled training step in training mode: forward, mean cross-entropy, backward. Gradients are zeroed first
    /// and then hold d(loss)/d(parameter) for every parameter that requires a gradient. No optimizer step is taken.
    /// </summary>
    /// <param name="input">[batch, ..InputShape].</param>
    /// <param name="labels">[batch] class indices in [0, OutputSize).</param>
    /// <param name="batch">Number of samples.</param>
    /// <param name="logits">Optional [batch, OutputSize] destination for the logits (for accuracy); empty to skip.</param>
    /// <returns>The mean loss over the batch.</returns>
    float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default);

    /// <summary>The mean loss in evaluation mode, without gradients (validation).</summary>
    float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default);
}

/// <summary>A generated network trained with mean squared error on float targets (<c>[MSELoss]</c>).</summary>
public interface IRegressor : IFloatNetwork
{
    /// <summary>One compiled training step (see <see cref="IClassifier.TrainStep"/>), targets shaped like the output.</summary>
    float TrainStep(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, int batch, Span<float> output = default);

    /// <summary>The mean loss in evaluation mode, without gradients.</summary>
    float EvaluateLoss(ReadOnlySpan<float> input, ReadOnlySpan<float> targets, int batch, Span<float> output = default);
}

/// <summary>A generated network whose input is token ids (<c>[Input(..., Kind = InputKind.TokenIds)]</c>) trained with cross-entropy.</summary>
public interface ITokenClassifier : INetwork
{
    /// <summary>Compiled inference (evaluation mode) on [batch, ..InputShape] token ids.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When an id is outside its embedding table (names position and id).</exception>
    void Forward(ReadOnlySpan<int> input, int batch, Span<float> output);

    /// <summary>One compiled training step (see <see cref="IClassifier.TrainStep"/>) on token ids.</summary>
    float TrainStep(ReadOnlySpan<int> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default);

    /// <summary>The mean loss in evaluation mode, without gradients.</summary>
    float EvaluateLoss(ReadOnlySpan<int> input, ReadOnlySpan<int> labels, int batch, Span<float> logits = default);
}

/// <summary>
/// A generated network with a symbolic sequence dimension (<c>[Input(Dim.Sequence, ...)]</c>): every batch gives its
/// own sequence length T ≤ <see cref="MaxSequence"/> and an optional attention mask, so a batch is padded only to its
/// longest sequence. <see cref="INetwork.InputShape"/> reports T at its maximum.
/// </summary>
public interface ISequenceNetwork : INetwork
{
    /// <summary>The largest sequence length accepted (the workspace is laid out for it).</summary>
    int MaxSequence { get; }
}

/// <summary>A sequence network over token ids trained with cross-entropy (text classification).</summary>
/// <remarks>
/// <c>mask</c> is [batch, sequence] of 1 (a real token) and 0 (padding), as HF tokenizers produce it; an empty span
/// means every position is real. Ops that reduce over the sequence (MeanOverSequence, attention) honour it.
/// </remarks>
public interface ISequenceClassifier : ISequenceNetwork
{
    /// <summary>Compiled inference (evaluation mode) on [batch, sequence] token ids.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When the sequence length exceeds <see cref="ISequenceNetwork.MaxSequence"/> or an id is outside its embedding table.</exception>
    void Forward(ReadOnlySpan<int> input, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> output);

    /// <summary>One compiled training step (see <see cref="IClassifier.TrainStep"/>) on [batch, sequence] token ids.</summary>
    float TrainStep(ReadOnlySpan<int> input, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default);

    /// <summary>The mean loss in evaluation mode, without gradients.</summary>
    float EvaluateLoss(ReadOnlySpan<int> input, ReadOnlySpan<int> labels, ReadOnlySpan<int> mask, int batch, int sequence, Span<float> logits = default);
}

/// <summary>A tensor a network takes, gives or trains against, by name, with its per-sample shape.</summary>
/// <param name="Name">An input's name (Forward's parameter), an output's (Forward's tuple element) or a targets' name
/// (TrainStep's parameter: <c>labels</c>, <c>targets</c>, <c>digitLabels</c>, <c>boxTargets</c>).</param>
/// <param name="Shape">Per-sample shape (empty: one value per sample, e.g. a class index); a leading -1 is the sequence
/// length T of a sequence network.</param>
/// <param name="IsInteger">Integers (token ids, class indices), not floats.</param>
public sealed record TensorSlot(string Name, IReadOnlyList<int> Shape, bool IsInteger)
{
    /// <summary>Values per sample; for a sequence slot (<see cref="IsSequence"/>), per position.</summary>
    public int Size => Shape.Where(d => d != -1).Aggregate(1, (a, b) => a * b);

    /// <summary>The slot runs along the sequence: [T, …] per sample.</summary>
    public bool IsSequence => Shape.Count > 0 && Shape[0] == -1;
}

/// <summary>One loss of a network: which output it reads, the targets it compares it with, and its weight in the sum.</summary>
/// <param name="Loss">The loss attribute's name, e.g. <c>CrossEntropyLoss</c>.</param>
/// <param name="Output">The output it reads (the first, for a loss of two outputs).</param>
/// <param name="Targets">Its targets: class indices (one per sample) or floats.</param>
/// <param name="Weight">Its weight in the sum TrainStep minimises.</param>
public sealed record LossSlot(string Loss, string Output, TensorSlot Targets, float Weight);

/// <summary>
/// A generated network with several inputs or several outputs (fixed shapes, at least one loss), reached through named
/// columns of a <see cref="Data.TensorBatch"/>: what <see cref="Training.Trainer"/> trains it with. The class's own
/// TrainStep and EvaluateLoss, with one span per input, target and output, are the direct way.
/// </summary>
public interface IMultiNetwork
{
    /// <summary>The network's class name.</summary>
    string Name { get; }
    /// <summary>Parameters, gradients and buffers.</summary>
    ParameterStore Parameters { get; }
    /// <summary>The inputs, in Forward's parameter order.</summary>
    IReadOnlyList<TensorSlot> Inputs { get; }
    /// <summary>The outputs, in Forward's order.</summary>
    IReadOnlyList<TensorSlot> Outputs { get; }
    /// <summary>The losses, in declaration order (their weighted sum is what is trained).</summary>
    IReadOnlyList<LossSlot> Losses { get; }
    /// <summary>The largest sequence length of a sequence network, whose batches are cut to their longest row of the
    /// <c>attention_mask</c> column; 0 for fixed shapes.</summary>
    int MaxSequence { get; }

    /// <summary>One training step on the batch's columns named as <see cref="Inputs"/> and the losses' targets (see the
    /// class's TrainStep).</summary>
    /// <param name="batch">The batch; its columns are found by name and checked for size.</param>
    /// <param name="outputs">One buffer per output of at least Count × its size floats, written.</param>
    /// <param name="losses">Empty, or one value per loss, written (unweighted).</param>
    /// <returns>The weighted sum of the losses.</returns>
    /// <exception cref="InvalidOperationException">When a column is missing, of the other element type or of another size.</exception>
    float TrainStep(Data.TensorBatch batch, float[][] outputs, Span<float> losses);

    /// <summary>The weighted loss in evaluation mode, without gradients (see <see cref="TrainStep"/>).</summary>
    float EvaluateLoss(Data.TensorBatch batch, float[][] outputs, Span<float> losses);
}
