using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: N ids, V vocabulary rows, D embedding width.
public static class EmbeddingKernels
{
    /// <summary>y[N,D] = table[ids[n], :]. Throws <see cref="ArgumentOutOfRangeException"/> naming the position and id when an id is outside [0, V).</summary>
    public static void Forward(Span<float> y, ReadOnlySpan<int> ids, ReadOnlySpan<float> table, int count, int vocab, int dim) => Reference.Forward(y, ids, table, count, vocab, dim);

    /// <summary>dtable[ids[n], :] += dy[n, :].</summary>
    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int count, int dim) => Reference.Backward(dtable, dy, ids, count, dim);

    /// <summary>As above, leaving the row <paramref name="paddingIdx"/> out (<c>nn.Embedding(padding_idx=…)</c>: the padding
    /// vector gets no gradient, so it stays what it was, zeros from the initialisation).</summary>
    public static void Backward(Span<float> dtable, ReadOnlySpan<float> dy, ReadOnlySpan<int> ids, int count, int dim, int paddingIdx)
    {
        for (int n = 0; n < count; n++)
        {
            if (ids[n] == paddingIdx) continue;
            Elementwise.AddInPlace(dtable.Slice(ids[n] * dim, dim), dy.Slice(n * dim, dim));
        }
    }

    /// <summary>y[N, K] = one-hot rows of <paramref name="ids"/> (<c>F.one_hot(ids, K)</c>, as floats): an embedding by the
    /// identity. Throws <see cref="ArgumentOutOfRangeException"/> naming the position and value when one is outside [0, K).</summary>
    public static void OneHot(Span<float> y, ReadOnlySpan<int> ids, int count, int classes)
    {
        if (ids.Length < count || y.Length < (long)count * classes) throw new ArgumentException($"OneHot: {count} values need {count} ids and {(long)count * classes} outputs; got {ids.Length} and {y.Length}.");
        y.Slice(0, count * classes).Clear();
        for (int n = 0; n < count; n++)
        {
            int id = ids[n];
            if ((uint)id >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(ids), id, $"OneHot: value {id} at position {n} is outside [0, {classes}).");
            y[n * classes + id] = 1f;
        }
    }

    /// <summary>y[b, t, :] = x[b, t, :] + table[t, :] for t &lt; seq (absolute position embeddings; table has ≥ seq rows).</summary>
    public static void AddPositions(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> table, int batch, int seq, int dim)
    {
        if (table.Length < seq * dim) throw new ArgumentException($"Position embeddings: the table has {table.Length / Math.Max(1, dim)} rows, but the sequence has {seq} positions.");
        Elementwise.AddToEachRow(y, x, table, batch, seq * dim);   // each sample's [T, D] block is one "row"
    }

    /// <summary>dtable[t, :] += Σ_b dy[b, t, :].</summary>
    public static void AddPositionsBackward(Span<float> dtable, ReadOnlySpan<float> dy, int batch, int seq, int dim)
    {
        if (!dtable.IsEmpty) Elementwise.AddRowsInto(dtable, dy, batch, seq * dim);
    }

    /// <summary>Generic loops shared by the float kernels and the double-precision tests.</summary>
    public static class Reference
    {
        public static void Forward<T>(Span<T> y, ReadOnlySpan<int> ids, ReadOnlySpan<T> table, int count, int vocab, int dim) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < count; n++)
            {
                int id = ids[n];
                if ((uint)id >= (uint)vocab)
                    throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} at position {n} is outside the embedding table's {vocab} rows.");
                table.Slice(id * dim, dim).CopyTo(y.Slice(n * dim, dim));
            }
        }

        public static void Backward<T>(Span<T> dtable, ReadOnlySpan<T> dy, ReadOnlySpan<int> ids, int count, int dim) where T : IFloatingPointIeee754<T>
        {
            for (int n = 0; n < count; n++)
            {
                var dst = dtable.Slice(ids[n] * dim, dim);
                var src = dy.Slice(n * dim, dim);
                for (int d = 0; d < dim; d++) dst[d] += src[d];
            }
        }
    }
}
