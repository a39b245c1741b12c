namespace Compiled.Nets.Kernels;

// Dims: N ids, V vocabulary rows, D embedding width.
public static class EmbeddingKernels
{
    /// <summary>y[N,D] = table[ids[n], :]. Throws <see cref="ArgumentOutOfRangeException"/> naming the position and id when an id is outside [0, V).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> table, int count, int vocab, int dim)
        => throw new NotImplementedException();

    /// <summary>dtable[ids[n], :] += dy[n, :].</summary>
    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int count, int dim)
        => throw new NotImplementedException();
}
