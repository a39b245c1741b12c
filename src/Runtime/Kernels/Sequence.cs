using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: B batch, T sequence length, D features per position. x is [B, T, D], y is [B, D].
// mask is [B, T] of 0/1 (empty = all positions real), as HF tokenizers produce it.
public static class SequenceKernels
{
    /// <summary>
    /// Checks an attention mask ([batch, seq], as Hugging Face tokenizers produce it): every value 0 or 1 and every
    /// row with at least one real token. Anything else would be used silently (a 2 as a heavier token, an empty row
    /// as a mean over nothing).
    /// </summary>
    /// <exception cref="ArgumentException">Names the network and method, the position and the value.</exception>
    public static void CheckMask(ReadOnlySpan<int> mask, int batch, int seq, string network, string method)
    {
        if (mask.IsEmpty) return;
        for (int b = 0; b < batch; b++)
        {
            var row = mask.Slice(b * seq, seq);
            int bad = row.IndexOfAnyExcept(0, 1);
            if (bad >= 0) throw new ArgumentException($"{network}.{method}: the attention mask holds {row[bad]} at [{b}, {bad}]; it must be 1 for a token and 0 for padding.", "mask");
            if (!row.Contains(1)) throw new ArgumentException($"{network}.{method}: row {b} of the attention mask has no 1: a sample needs at least one real token.", "mask");
        }
    }

    /// <summary>y[b, :] = x[b, position, :] (BERT's [CLS] pooling when position is 0).</summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="position"/> is not below the sequence length.</exception>
    public static void SelectForward(Span<float> y, ReadOnlySpan<float> x, int batch, int seq, int dim, int position)
    {
        CheckPosition(seq, position);
        for (int b = 0; b < batch; b++) x.Slice((b * seq + position) * dim, dim).CopyTo(y.Slice(b * dim, dim));
    }

    /// <summary>dx[b, position, :] += dy[b, :].</summary>
    public static void SelectBackward(Span<float> dx, ReadOnlySpan<float> dy, int batch, int seq, int dim, int position)
    {
        CheckPosition(seq, position);
        for (int b = 0; b < batch; b++) Elementwise.AddInPlace(dx.Slice((b * seq + position) * dim, dim), dy.Slice(b * dim, dim));
    }

    /// <summary>y[b, :] = Σₜ mask[b,t]·x[b,t,:] / Σₜ mask[b,t] (a sample with no real position gives zeros).</summary>
    public static void MeanForward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<int> mask, int batch, int seq, int dim)
    {
        y.Slice(0, batch * dim).Clear();
        for (int b = 0; b < batch; b++)
        {
            var row = y.Slice(b * dim, dim);
            int count = Count(mask, b, seq);
            if (count == 0) continue;
            for (int t = 0; t < seq; t++)
                if (mask.IsEmpty || mask[b * seq + t] != 0) Elementwise.AddInPlace(row, x.Slice((b * seq + t) * dim, dim));
            System.Numerics.Tensors.TensorPrimitives.Multiply(row, 1f / count, row);
        }
    }

    /// <summary>y[b,:] = Σₜ mask[b,t]·x[b,t,:] (<c>x.Sum(1)</c> over T: padding adds nothing; empty mask = all valid).</summary>
    public static void SumForward(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<int> mask, int batch, int seq, int dim)
    {
        y.Slice(0, batch * dim).Clear();
        for (int b = 0; b < batch; b++)
        {
            var row = y.Slice(b * dim, dim);
            for (int t = 0; t < seq; t++)
                if (mask.IsEmpty || mask[b * seq + t] != 0) Elementwise.AddInPlace(row, x.Slice((b * seq + t) * dim, dim));
        }
    }

    /// <summary>dx[b,t,:] += mask[b,t]·dy[b,:].</summary>
    public static void SumBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> mask, int batch, int seq, int dim)
    {
        for (int b = 0; b < batch; b++)
            for (int t = 0; t < seq; t++)
                if (mask.IsEmpty || mask[b * seq + t] != 0) Elementwise.AddInPlace(dx.Slice((b * seq + t) * dim, dim), dy.Slice(b * dim, dim));
    }

    /// <summary>dx[b,t,:] += mask[b,t]·dy[b,:] / Σₜ mask[b,t].</summary>
    public static void MeanBackward(Span<float> dx, ReadOnlySpan<float> dy, ReadOnlySpan<int> mask, int batch, int seq, int dim)
    {
        for (int b = 0; b < batch; b++)
        {
            int count = Count(mask, b, seq);
            if (count == 0) continue;
            float scale = 1f / count;
            var g = dy.Slice(b * dim, dim);
            for (int t = 0; t < seq; t++)
            {
                if (!mask.IsEmpty && mask[b * seq + t] == 0) continue;
                var d = dx.Slice((b * seq + t) * dim, dim);
                for (int i = 0; i < dim; i++) d[i] += scale * g[i];
            }
        }
    }

    private static int Count(ReadOnlySpan<int> mask, int b, int seq)
    {
        if (mask.IsEmpty) return seq;
        int n = 0;
        foreach (int m in mask.Slice(b * seq, seq)) if (m != 0) n++;
        return n;
    }

    private static void CheckPosition(int seq, int position)
    {
        if ((uint)position >= (uint)seq)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"SelectToken({position}) needs a sequence longer than {position}, but this batch has length {seq}.");
    }

    /// <summary>Definition loops, generic for double-precision tests.</summary>
    public static class Reference
    {
        public static void MeanForward<T>(Span<T> y, ReadOnlySpan<T> x, ReadOnlySpan<int> mask, int batch, int seq, int dim) where T : IFloatingPointIeee754<T>
        {
            for (int b = 0; b < batch; b++)
            {
                int count = 0;
                for (int t = 0; t < seq; t++) if (mask.IsEmpty || mask[b * seq + t] != 0) count++;
                for (int i = 0; i < dim; i++)
                {
                    T sum = T.Zero;
                    for (int t = 0; t < seq; t++) if (mask.IsEmpty || mask[b * seq + t] != 0) sum += x[(b * seq + t) * dim + i];
                    y[b * dim + i] = count == 0 ? T.Zero : sum / T.CreateChecked(count);
                }
            }
        }
    }
}
