using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: B batch (every sample permuted alike), per-sample shape s[0..r) and a permutation p of 0..r-1: the output's
// dimension i is the input's dimension p[i] (PyTorch's permute without the batch). Reshape needs no kernel (a view).
public static class ShapeKernels
{
    /// <summary>The largest per-sample rank <see cref="Permute"/> takes.</summary>
    public const int MaxRank = 8;

    /// <summary>y = x permuted per sample (overwrites y).</summary>
    /// <exception cref="ArgumentException">When the permutation is not one of the shape's dimensions or a span is too short.</exception>
    public static void Permute(Span<float> y, ReadOnlySpan<float> x, int batch, ReadOnlySpan<int> shape, ReadOnlySpan<int> permutation) =>
        Run(y, x, batch, shape, permutation, accumulate: false);

    /// <summary>dx += dy permuted back (the inverse permutation of <see cref="Permute"/>'s).</summary>
    public static void PermuteBackward(Span<float> dx, ReadOnlySpan<float> dy, int batch, ReadOnlySpan<int> shape, ReadOnlySpan<int> permutation) =>
        Run(dx, dy, batch, shape, permutation, accumulate: true, backward: true);

    private static void Run(Span<float> a, ReadOnlySpan<float> b, int batch, ReadOnlySpan<int> shape, ReadOnlySpan<int> permutation, bool accumulate, bool backward = false)
    {
        int rank = shape.Length;
        if (rank == 0 || rank > MaxRank || permutation.Length != rank) throw new ArgumentException($"Permute: a permutation of {rank} dimensions (at most {MaxRank}) is needed, got {permutation.Length}.");
        Span<int> seen = stackalloc int[rank];
        seen.Clear();
        foreach (int p in permutation)
        {
            if ((uint)p >= (uint)rank || seen[p]++ > 0) throw new ArgumentException($"Permute: ({string.Join(", ", permutation.ToArray())}) is not a permutation of {rank} dimensions.");
        }
        int size = 1;
        foreach (int d in shape) size *= d;
        if (a.Length < (long)batch * size || b.Length < (long)batch * size) throw new ArgumentException($"Permute: the spans hold {a.Length} and {b.Length} values; batch {batch} × {size} needed.");
        // Input strides, then for each output dimension the input stride it walks.
        Span<int> inStride = stackalloc int[rank];
        Span<int> walk = stackalloc int[rank];
        Span<int> outShape = stackalloc int[rank];
        inStride[rank - 1] = 1;
        for (int d = rank - 2; d >= 0; d--) inStride[d] = inStride[d + 1] * shape[d + 1];
        for (int i = 0; i < rank; i++) { walk[i] = inStride[permutation[i]]; outShape[i] = shape[permutation[i]]; }
        Span<int> index = stackalloc int[rank];
        for (int n = 0; n < batch; n++)
        {
            var y = n * size;
            index.Clear();
            int source = 0;
            // The output in order (contiguous), the input through the permuted strides.
            for (int o = 0; o < size; o++)
            {
                if (backward)
                {
                    if (accumulate) a[y + source] += b[y + o]; else a[y + source] = b[y + o];
                }
                else if (accumulate) a[y + o] += b[y + source];
                else a[y + o] = b[y + source];
                for (int d = rank - 1; d >= 0; d--)
                {
                    source += walk[d];
                    if (++index[d] < outShape[d]) break;
                    source -= walk[d] * outShape[d];
                    index[d] = 0;
                }
            }
        }
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        /// <summary>y[n, i0..] = x[n, j..] where j[p[k]] = i[k].</summary>
        public static void Permute<T>(Span<T> y, ReadOnlySpan<T> x, int batch, int[] shape, int[] permutation) where T : INumberBase<T>
        {
            int rank = shape.Length, size = shape.Aggregate(1, (a, b) => a * b);
            var outShape = permutation.Select(p => shape[p]).ToArray();
            var i = new int[rank];
            var j = new int[rank];
            for (int n = 0; n < batch; n++)
                for (int o = 0; o < size; o++)
                {
                    for (int d = rank - 1, rest = o; d >= 0; d--) { i[d] = rest % outShape[d]; rest /= outShape[d]; }
                    for (int k = 0; k < rank; k++) j[permutation[k]] = i[k];
                    int source = 0;
                    for (int d = 0; d < rank; d++) source = source * shape[d] + j[d];
                    y[n * size + o] = x[n * size + source];
                }
        }
    }
}
