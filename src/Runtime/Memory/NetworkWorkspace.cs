using Compiled.Nets.Kernels;

namespace Compiled.Nets;

/// <summary>
/// The sizes of a compiled network's workspace, as its generator laid it out: floats per sample for the activations
/// and for their gradients, integers per sample (max-pool argmax), and per-workspace statistics and scratch.
/// </summary>
public sealed class WorkspaceLayout
{
    /// <summary>Creates a layout; <paramref name="network"/> names the network in messages.</summary>
    public WorkspaceLayout(string network, long activations, long gradients, int ints, int stats, long scratch)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (activations < 0 || gradients < 0 || ints < 0 || stats < 0 || scratch < 0)
            throw new ArgumentOutOfRangeException(nameof(activations), $"{network}: workspace sizes must not be negative.");
        Network = network; Activations = activations; Gradients = gradients; Ints = ints; Stats = stats; Scratch = scratch;
    }

    /// <summary>The network's name, for messages.</summary>
    public string Network { get; }
    /// <summary>Floats of activations per sample.</summary>
    public long Activations { get; }
    /// <summary>Floats of activation gradients per sample (training only).</summary>
    public long Gradients { get; }
    /// <summary>Integers per sample.</summary>
    public int Ints { get; }
    /// <summary>Floats of per-batch statistics, whatever the batch.</summary>
    public int Stats { get; }
    /// <summary>Floats of kernel scratch, whatever the batch.</summary>
    public long Scratch { get; }

    /// <summary>The largest batch one workspace can hold: each arena is at most 2^31 floats.</summary>
    public int MaxBatch => (int)Math.Max(1L, int.MaxValue / Math.Max(1L, Math.Max(Activations, Gradients)));

    /// <summary>The bytes a <see cref="NetworkWorkspace"/> of this layout allocates for <paramref name="capacity"/> samples:
    /// activations, (training) their gradients, integers, statistics and kernel scratch.</summary>
    public long Bytes(int capacity, bool forTraining) =>
        4 * (Activations * capacity + (forTraining ? Gradients * capacity : 0) + Math.Max(Stats, 1) + Math.Max(Scratch, 1) + (long)Math.Max(Ints, 1) * capacity);
}

/// <summary>
/// A compiled network's working memory for up to <see cref="Capacity"/> samples: the activation arena, the gradient
/// arena (training workspaces only), integers, statistics and scratch. The generated code slices the arenas by the
/// plan's regions; a <see cref="WorkspacePool{T}"/> hands workspaces to calls.
/// </summary>
public sealed class NetworkWorkspace : IWorkspace
{
    /// <summary>Allocates a workspace of <paramref name="layout"/> for <paramref name="capacity"/> samples.</summary>
    /// <exception cref="InvalidOperationException">When an arena would exceed 2^31 floats: names the MiB needed and the largest batch that fits.</exception>
    public NetworkWorkspace(WorkspaceLayout layout, int capacity, bool forTraining)
    {
        ArgumentNullException.ThrowIfNull(layout);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        if (layout.Activations * capacity > int.MaxValue || layout.Gradients * capacity > int.MaxValue)
            throw new InvalidOperationException($"{layout.Network}: a batch of {capacity} samples needs {layout.Activations * capacity * 4 >> 20} MiB of activations and {layout.Gradients * capacity * 4 >> 20} MiB of their gradients, more than one workspace arena holds (2^31 floats); use batches of at most {layout.MaxBatch} samples.");
        Capacity = capacity;
        ForTraining = forTraining;
        Act = new AlignedBuffer(layout.Activations * capacity);
        Grad = new AlignedBuffer(forTraining ? layout.Gradients * capacity : 0);
        Gemm.ReserveThreadBuffers(); // this thread's GEMM packing buffers, so later steps allocate nothing
        Stats = new AlignedBuffer(Math.Max(layout.Stats, 1));
        Scratch = new AlignedBuffer(Math.Max(layout.Scratch, 1));
        Ints = new int[Math.Max(layout.Ints, 1) * capacity];
    }

    /// <inheritdoc/>
    public int Capacity { get; }
    /// <inheritdoc/>
    public bool ForTraining { get; }
    /// <summary>Activations: every region's per-sample size × capacity.</summary>
    public AlignedBuffer Act { get; }
    /// <summary>The activations' gradients (empty in an inference workspace).</summary>
    public AlignedBuffer Grad { get; }
    /// <summary>Per-batch statistics (BatchNorm).</summary>
    public AlignedBuffer Stats { get; }
    /// <summary>Kernel scratch (im2col chunks, Winograd tiles, attention rows).</summary>
    public AlignedBuffer Scratch { get; }
    /// <summary>Integers (max-pool argmax) × capacity.</summary>
    public int[] Ints { get; }

    /// <summary>Frees the arenas.</summary>
    public void Dispose() { Act.Dispose(); Grad.Dispose(); Stats.Dispose(); Scratch.Dispose(); }
}

/// <summary>The argument checks at every compiled network's API boundary: what is wrong, named with the network, the method and the shapes.</summary>
public static class NetworkArguments
{
    /// <summary>A fixed-shape network's call: the batch, the input span and (when <paramref name="outputLength"/> ≥ 0) the output span.</summary>
    /// <exception cref="ArgumentOutOfRangeException">batch ≤ 0.</exception>
    /// <exception cref="ArgumentException">A span of the wrong length.</exception>
    public static void Check(string network, string method, int inputLength, int batch, int inputFeatures, string inputShape, int outputLength, int outputFeatures, string outputShape)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"{network}.{method}: batch must be positive.");
        if (inputLength != batch * inputFeatures)
            throw new ArgumentException($"{network}.{method}: input has {inputLength} floats, but batch {batch} × [{inputShape}] needs {batch * inputFeatures}.", "input");
        if (outputLength >= 0 && outputLength != batch * outputFeatures)
            throw new ArgumentException($"{network}.{method}: the output span has {outputLength} floats, but batch {batch} × [{outputShape}] needs {batch * outputFeatures}.", "output");
    }

    /// <summary>
    /// A call of a network with several inputs, before <see cref="CheckInput"/> checks each: the batch, for a sequence
    /// network (<paramref name="maxSequence"/> &gt; 0) the length and the mask, and the output span (when
    /// <paramref name="outputLength"/> ≥ 0).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">batch ≤ 0, or the sequence length outside [1, MaxSequence].</exception>
    /// <exception cref="ArgumentException">An output span of the wrong length, or a mask that is not [batch, T] of 0/1 with a 1 in every row.</exception>
    public static void CheckCall(string network, string method, ReadOnlySpan<int> mask, int batch, int sequence, int maxSequence, int outputLength, int outputPerSample, string outputShape)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"{network}.{method}: batch must be positive.");
        if (maxSequence > 0)
        {
            if (sequence <= 0 || sequence > maxSequence)
                throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"{network}.{method}: the sequence length must be in [1, {maxSequence}] (MaxSequence).");
            if (!mask.IsEmpty && mask.Length != batch * sequence)
                throw new ArgumentException($"{network}.{method}: the mask has {mask.Length} values, but batch {batch} × sequence {sequence} needs {batch * sequence}.", nameof(mask));
            SequenceKernels.CheckMask(mask, batch, sequence, network, method);
        }
        if (outputLength >= 0 && outputLength != batch * outputPerSample)
            throw new ArgumentException($"{network}.{method}: the output span has {outputLength} floats, but batch {batch} × [{outputShape}] needs {batch * outputPerSample}.", "output");
    }

    /// <summary>One input of a network with several: <paramref name="length"/> values must be batch × positions ×
    /// <paramref name="perPosition"/> (positions is the sequence length for a sequence input, else 1).</summary>
    /// <exception cref="ArgumentException">Names the input, its shape and both lengths.</exception>
    public static void CheckInput(string network, string method, string input, int length, int batch, int positions, int perPosition, string shape)
    {
        long need = (long)batch * positions * perPosition;
        if (length != need)
            throw new ArgumentException($"{network}.{method}: input '{input}' has {length} values, but batch {batch} × [{shape.Replace("T", positions.ToString(System.Globalization.CultureInfo.InvariantCulture))}] needs {need}.", input);
    }

    /// <summary>One output span of a network with several outputs: batch × <paramref name="perSample"/> floats, or empty
    /// where it is <paramref name="optional"/> (TrainStep and EvaluateLoss write only the outputs they are given).</summary>
    /// <exception cref="ArgumentException">The span has the wrong length.</exception>
    public static void CheckOutput(string network, string method, string output, int length, int batch, int perSample, string shape, bool optional)
    {
        if (optional && length == 0) return;
        long need = (long)batch * perSample;
        if (length != need)
            throw new ArgumentException($"{network}.{method}: output '{output}' has {length} floats, but batch {batch} × [{shape}] needs {need}.", output);
    }

    /// <summary>Output <paramref name="index"/>'s buffer of an <see cref="IMultiNetwork"/> call: its first batch ×
    /// <paramref name="perSample"/> floats.</summary>
    /// <exception cref="ArgumentException">Too few buffers, or a buffer too short (named with the output).</exception>
    public static Span<float> OutputBuffer(string network, float[][] outputs, int index, string output, int batch, int perSample)
    {
        ArgumentNullException.ThrowIfNull(outputs);
        if (index >= outputs.Length)
            throw new ArgumentException($"{network}: {outputs.Length} output buffers given, but output '{output}' is number {index + 1}.", nameof(outputs));
        long need = (long)batch * perSample;
        if (outputs[index] is not { } buffer || buffer.Length < need)
            throw new ArgumentException($"{network}: the buffer of output '{output}' has {outputs[index]?.Length ?? 0} floats, but batch {batch} × {perSample} needs {need}.", nameof(outputs));
        return buffer.AsSpan(0, (int)need);
    }

    /// <summary>
    /// A sequence network's call: the batch, the sequence length, the input ([batch, T, ..] with
    /// <paramref name="inputPerPosition"/> values per position; <paramref name="inputTail"/> shows the dimensions after T),
    /// the attention mask (empty, or [batch, T] of 0/1 with a 1 in every row) and the output span.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">batch ≤ 0, or the sequence length outside [1, MaxSequence].</exception>
    /// <exception cref="ArgumentException">A span of the wrong length, or a mask that is not 0/1 or has an empty row.</exception>
    public static void CheckSequence(string network, string method, int inputLength, ReadOnlySpan<int> mask, int batch, int sequence, int maxSequence,
        int inputPerPosition, string inputTail, int outputLength, int outputPerSample, string outputShape)
    {
        if (batch <= 0) throw new ArgumentOutOfRangeException(nameof(batch), batch, $"{network}.{method}: batch must be positive.");
        if (sequence <= 0 || sequence > maxSequence)
            throw new ArgumentOutOfRangeException(nameof(sequence), sequence, $"{network}.{method}: the sequence length must be in [1, {maxSequence}] (MaxSequence).");
        if (inputLength != batch * sequence * inputPerPosition)
            throw new ArgumentException($"{network}.{method}: input has {inputLength} values, but batch {batch} × [{sequence}{inputTail}] needs {batch * sequence * inputPerPosition}.", "input");
        if (!mask.IsEmpty && mask.Length != batch * sequence)
            throw new ArgumentException($"{network}.{method}: the mask has {mask.Length} values, but batch {batch} × sequence {sequence} needs {batch * sequence}.", nameof(mask));
        SequenceKernels.CheckMask(mask, batch, sequence, network, method);
        if (outputLength >= 0 && outputLength != batch * outputPerSample)
            throw new ArgumentException($"{network}.{method}: the output span has {outputLength} floats, but batch {batch} × [{outputShape}] needs {batch * outputPerSample}.", "output");
    }
}
