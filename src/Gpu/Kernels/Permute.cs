using ILGPU;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>A permutation of up to 8 per-row dimensions as kernel scalars: the output's shape and, per output
/// dimension, the input stride it walks.</summary>
internal struct PermuteArgs
{
    public int Rank, Size, S0, S1, S2, S3, S4, S5, S6, S7, W0, W1, W2, W3, W4, W5, W6, W7;

    public static PermuteArgs Of(int[] shape, int[] permutation)
    {
        int rank = shape.Length;
        if (rank == 0 || rank > 8 || permutation.Length != rank) throw new ArgumentException($"Permute: a permutation of 1 to 8 dimensions is needed, got {permutation.Length} for {rank}.");
        // On the stack: the twin launches this every step and allocates nothing per step.
        Span<int> inStride = stackalloc int[8], s = stackalloc int[8], w = stackalloc int[8];
        s.Clear(); w.Clear();
        inStride[rank - 1] = 1;
        for (int d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * shape[d + 1];
        for (int i = 0; i < rank; i++) { s[i] = shape[permutation[i]]; w[i] = inStride[permutation[i]]; }
        return new PermuteArgs
        {
            Rank = rank, Size = inStride[0] * shape[0],
            S0 = s[0], S1 = s[1], S2 = s[2], S3 = s[3], S4 = s[4], S5 = s[5], S6 = s[6], S7 = s[7],
            W0 = w[0], W1 = w[1], W2 = w[2], W3 = w[3], W4 = w[4], W5 = w[5], W6 = w[6], W7 = w[7],
        };
    }

    public readonly int Shape(int d) => d switch { 0 => S0, 1 => S1, 2 => S2, 3 => S3, 4 => S4, 5 => S5, 6 => S6, _ => S7 };
    public readonly int Walk(int d) => d switch { 0 => W0, 1 => W1, 2 => W2, 3 => W3, 4 => W4, 5 => W5, 6 => W6, _ => W7 };

    /// <summary>The input offset (within its row) of the output element at <paramref name="offset"/> in its row.</summary>
    public readonly int Source(int offset)
    {
        int source = 0;
        for (int d = Rank - 1; d >= 0; d--)
        {
            int n = Shape(d);
            source += offset % n * Walk(d);
            offset /= n;
        }
        return source;
    }
}

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, PermuteArgs>? _permute, _permuteBackward;

    /// <summary>y = x with each row's dimensions <paramref name="shape"/> reordered by <paramref name="permutation"/>
    /// (Permute, Transpose); one thread per element.</summary>
    public void PermuteForward(ArrayView<float> y, ArrayView<float> x, int rows, int[] shape, int[] permutation)
    {
        var a = PermuteArgs.Of(shape, permutation);
        long n = (long)rows * a.Size;
        Need(y, n, nameof(y)); Need(x, n, nameof(x));
        _permute ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PermuteArgs>(PermuteKernel);
        Launched(); _permute(checked((int)n), y, x, a);
    }

    /// <summary>dx += dy permuted back (each element of dx written by one thread: a permutation is one to one).</summary>
    public void PermuteBackward(ArrayView<float> dx, ArrayView<float> dy, int rows, int[] shape, int[] permutation)
    {
        var a = PermuteArgs.Of(shape, permutation);
        long n = (long)rows * a.Size;
        Need(dx, n, nameof(dx)); Need(dy, n, nameof(dy));
        _permuteBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, PermuteArgs>(PermuteBackwardKernel);
        Launched(); _permuteBackward(checked((int)n), dx, dy, a);
    }

    private static void PermuteKernel(Index1D index, ArrayView<float> y, ArrayView<float> x, PermuteArgs a)
    {
        int i = index;
        int row = i / a.Size;
        y[i] = x[(long)row * a.Size + a.Source(i % a.Size)];
    }

    private static void PermuteBackwardKernel(Index1D index, ArrayView<float> dx, ArrayView<float> dy, PermuteArgs a)
    {
        int i = index;
        int row = i / a.Size;
        dx[(long)row * a.Size + a.Source(i % a.Size)] += dy[i];
    }
}
