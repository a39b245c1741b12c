using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: B batch, T sequence length, H heads, D head size, E = H·D. q, k, v and ctx are [B, T, E] with head h in
// columns [h·D, (h+1)·D) (the layout of a Linear's output, so no transposes are materialised); mask is [B, T] of 0/1
// (HF's attention mask, empty = every position real); probs and the dropout mask are [B, H, T, T].
//
// Per (b, h): S = scale·Q·Kᵀ + (1 − mask)·min, P = softmax(S) over keys, P̃ = P ⊙ dropout, ctx = P̃·V.
// Backward: dV = P̃ᵀ·dctx, dP̃ = dctx·Vᵀ, dP = dP̃ ⊙ dropout, dS = P ⊙ (dP − Σ dP⊙P), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
// The masked keys get float.MinValue added, as HF's BERT does, so a padded key has probability 0 when any key is
// real; a row whose keys are all padding averages them uniformly instead of producing NaN.
public static unsafe class AttentionKernels
{
    /// <summary>Floats of scratch Forward and Backward need (two T×T blocks per core).</summary>
    public static long ScratchSize(int seq) => 4L * seq * seq;

    /// <summary>
    /// ctx = softmax(scale·QKᵀ + mask)·V per head, saving the probabilities (before dropout) for backward. With a
    /// non-empty <paramref name="dropMask"/> ([B, H, T, T] of 0 or 1/(1−p), from <see cref="DropoutKernels.FillMask"/>)
    /// the probabilities are multiplied by it before V (attention dropout, training only).
    /// </summary>
    public static void Forward(Span<float> ctx, Span<float> probs, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v,
        ReadOnlySpan<int> mask, ReadOnlySpan<float> dropMask, int batch, int seq, int heads, int headSize, Span<float> scratch)
    {
        Check(batch, seq, heads, headSize, q.Length, k.Length, v.Length, ctx.Length, probs.Length, mask.Length, dropMask.Length);
        if (!dropMask.IsEmpty && scratch.Length < ScratchSize(seq)) throw new ArgumentException($"Attention: scratch needs {ScratchSize(seq)} floats; got {scratch.Length}.");
        fixed (float* pc = ctx) fixed (float* pp = probs) fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v)
        fixed (int* pm = mask) fixed (float* pd = dropMask) fixed (float* ps = scratch)
        {
            var a = new Args
            {
                Ctx = pc, Probs = pp, Q = pq, K = pk, V = pv, Mask = mask.IsEmpty ? null : pm, Drop = dropMask.IsEmpty ? null : pd, Scratch = ps,
                Batch = batch, Seq = seq, Heads = heads, HeadSize = headSize,
            };
            if (batch * heads > 1 && (long)batch * heads * seq * seq * headSize >= 1 << 16) HelperThread.ForBlocks(&ForwardBlock, &a, batch * heads, 1);
            else ForwardRange(ref a, 0, batch * heads, ps);
        }
    }

    /// <summary>Accumulates dq, dk, dv (+=) from dctx; <paramref name="scratch"/> holds <see cref="ScratchSize"/> floats
    /// (for the forward, only when a dropout mask is given).</summary>
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> dctx, ReadOnlySpan<float> probs,
        ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dropMask,
        int batch, int seq, int heads, int headSize, Span<float> scratch) =>
        Backward(dq, dk, dv, dctx, probs, q, k, v, dropMask, batch, seq, heads, headSize, scratch, accumulate: true);

    /// <summary>As above; with <paramref name="accumulate"/> false dq, dk and dv are overwritten (every element belongs to
    /// exactly one (batch, head) problem, whose GEMMs write it with beta 0), so the caller need not clear them.</summary>
    public static void Backward(Span<float> dq, Span<float> dk, Span<float> dv, ReadOnlySpan<float> dctx, ReadOnlySpan<float> probs,
        ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, ReadOnlySpan<float> dropMask,
        int batch, int seq, int heads, int headSize, Span<float> scratch, bool accumulate)
    {
        Check(batch, seq, heads, headSize, q.Length, k.Length, v.Length, dctx.Length, probs.Length, -1, dropMask.Length);
        long e = (long)batch * seq * heads * headSize;
        if (dq.Length < e || dk.Length < e || dv.Length < e) throw new ArgumentException($"Attention backward: dq/dk/dv need {e} floats; got {dq.Length}, {dk.Length}, {dv.Length}.");
        if (scratch.Length < ScratchSize(seq)) throw new ArgumentException($"Attention backward: scratch needs {ScratchSize(seq)} floats; got {scratch.Length}.");
        fixed (float* pdq = dq) fixed (float* pdk = dk) fixed (float* pdv = dv) fixed (float* pdc = dctx) fixed (float* pp = probs)
        fixed (float* pq = q) fixed (float* pk = k) fixed (float* pv = v) fixed (float* pd = dropMask) fixed (float* ps = scratch)
        {
            var a = new Args
            {
                Dq = pdq, Dk = pdk, Dv = pdv, Ctx = pdc, Probs = pp, Q = pq, K = pk, V = pv, Drop = dropMask.IsEmpty ? null : pd, Scratch = ps,
                Batch = batch, Seq = seq, Heads = heads, HeadSize = headSize, Beta = accumulate ? 1f : 0f,
            };
            if (batch * heads > 1 && (long)batch * heads * seq * seq * headSize >= 1 << 16) HelperThread.ForBlocks(&BackwardBlock, &a, batch * heads, 1);
            else BackwardRange(ref a, 0, batch * heads, ps);
        }
    }

    private struct Args
    {
        public float* Ctx, Probs, Q, K, V, Drop, Dq, Dk, Dv, Scratch;
        public int* Mask;
        public int Batch, Seq, Heads, HeadSize;
        public float Beta;   // backward: 1 accumulates into dq/dk/dv, 0 overwrites
    }

    // The (b, h) problems are independent: each core takes half of them (their GEMMs then run on that core alone).
    // (batch, head) pairs to whichever core is free; each core has its own T×T scratch (2·T² floats apart).
    private static void ForwardBlock(void* state, int half, int bh0, int bh1)
    {
        ref var a = ref *(Args*)state;
        ForwardRange(ref a, bh0, bh1, a.Scratch == null ? null : a.Scratch + half * 2L * a.Seq * a.Seq);
    }

    private static void BackwardBlock(void* state, int half, int bh0, int bh1)
    {
        ref var a = ref *(Args*)state;
        BackwardRange(ref a, bh0, bh1, a.Scratch + half * 2L * a.Seq * a.Seq);
    }

    private static void ForwardRange(ref Args a, int bh0, int bh1, float* dropped)
    {
        int t = a.Seq, d = a.HeadSize, e = a.Heads * d;
        float scale = 1f / MathF.Sqrt(d);
        long tt = (long)t * t;
        for (int bh = bh0; bh < bh1; bh++)
        {
            int b = bh / a.Heads, h = bh % a.Heads;
            long head = (long)b * t * e + h * d;
            float* p = a.Probs + bh * tt;
            var ps = new Span<float>(p, (int)tt);
            Gemm.Sgemm(false, true, t, t, d, scale, new ReadOnlySpan<float>(a.Q + head, (t - 1) * e + d), e,
                new ReadOnlySpan<float>(a.K + head, (t - 1) * e + d), e, 0f, ps, t);
            if (a.Mask != null)
                for (int j = 0; j < t; j++)
                    if (a.Mask[b * t + j] == 0)
                        for (int i = 0; i < t; i++) p[(long)i * t + j] += float.MinValue;
            SoftmaxKernels.Forward(ps, ps, t, t);
            float* pv = p;
            if (a.Drop != null)
            {
                // P̃ = P ⊙ m goes to scratch: probs keep P (softmax backward needs it), the mask stays the mask.
                pv = dropped;
                System.Numerics.Tensors.TensorPrimitives.Multiply(ps, new ReadOnlySpan<float>(a.Drop + bh * tt, (int)tt), new Span<float>(pv, (int)tt));
            }
            Gemm.Sgemm(false, false, t, d, t, 1f, new ReadOnlySpan<float>(pv, (int)tt), t, new ReadOnlySpan<float>(a.V + head, (t - 1) * e + d), e,
                0f, new Span<float>(a.Ctx + head, (t - 1) * e + d), e);
        }
    }

    private static void BackwardRange(ref Args a, int bh0, int bh1, float* dP)
    {
        int t = a.Seq, d = a.HeadSize, e = a.Heads * d;
        float scale = 1f / MathF.Sqrt(d);
        long tt = (long)t * t;
        int span = (t - 1) * e + d;
        for (int bh = bh0; bh < bh1; bh++)
        {
            int b = bh / a.Heads, h = bh % a.Heads;
            long head = (long)b * t * e + h * d;
            var p = new ReadOnlySpan<float>(a.Probs + bh * tt, (int)tt);
            var m = a.Drop != null ? new ReadOnlySpan<float>(a.Drop + bh * tt, (int)tt) : default;
            var pd = p;
            if (a.Drop != null)
            {
                var dropped = new Span<float>(dP + tt, (int)tt);
                System.Numerics.Tensors.TensorPrimitives.Multiply(p, m, dropped);
                pd = dropped;
            }
            var dctx = new ReadOnlySpan<float>(a.Ctx + head, span);
            var dPs = new Span<float>(dP, (int)tt);
            // dV (+)= P̃ᵀ·dctx
            Gemm.Sgemm(true, false, t, d, t, 1f, pd, t, dctx, e, a.Beta, new Span<float>(a.Dv + head, span), e);
            // dP = (dctx·Vᵀ) ⊙ m
            Gemm.Sgemm(false, true, t, t, d, 1f, dctx, e, new ReadOnlySpan<float>(a.V + head, span), e, 0f, dPs, t);
            if (a.Drop != null) System.Numerics.Tensors.TensorPrimitives.Multiply(dPs, m, dPs);
            // dS = P ⊙ (dP − Σ dP⊙P), in place (vectorised rows: T² per problem, 3 M values per bert-base layer and batch).
            for (int i = 0; i < t; i++)
            {
                var row = new Span<float>(dP + (long)i * t, t);
                var prow = p.Slice(i * t, t);
                float dot = System.Numerics.Tensors.TensorPrimitives.Dot(row, prow);
                System.Numerics.Tensors.TensorPrimitives.Subtract(row, dot, row);
                System.Numerics.Tensors.TensorPrimitives.Multiply(row, prow, row);
            }
            // dQ (+)= scale·dS·K, dK (+)= scale·dSᵀ·Q
            Gemm.Sgemm(false, false, t, d, t, scale, dPs, t, new ReadOnlySpan<float>(a.K + head, span), e, a.Beta, new Span<float>(a.Dq + head, span), e);
            Gemm.Sgemm(true, false, t, d, t, scale, dPs, t, new ReadOnlySpan<float>(a.Q + head, span), e, a.Beta, new Span<float>(a.Dk + head, span), e);
        }
    }

    private static void Check(int batch, int seq, int heads, int headSize, int q, int k, int v, int ctx, int probs, int mask, int drop)
    {
        if (batch <= 0 || seq <= 0 || heads <= 0 || headSize <= 0)
            throw new ArgumentException($"Attention: batch {batch}, sequence {seq}, heads {heads} and head size {headSize} must be positive.");
        long e = (long)batch * seq * heads * headSize, pr = (long)batch * heads * seq * seq;
        if (q < e || k < e || v < e || ctx < e)
            throw new ArgumentException($"Attention over [{batch}, {seq}, {heads}×{headSize}] needs {e} floats for q, k, v and ctx; got {q}, {k}, {v}, {ctx}.");
        if (probs < pr) throw new ArgumentException($"Attention: probs need [B, H, T, T] = {pr} floats; got {probs}.");
        if (mask > 0 && mask < batch * seq) throw new ArgumentException($"Attention: the mask needs [B, T] = {batch * seq} values; got {mask}.");
        if (drop > 0 && drop < pr) throw new ArgumentException($"Attention: the dropout mask needs [B, H, T, T] = {pr} floats; got {drop}.");
    }

    /// <summary>The definition, generic for double-precision tests: loops over every index, no GEMM.</summary>
    public static class Reference
    {
        public static void Forward<T>(Span<T> ctx, Span<T> probs, ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v,
            ReadOnlySpan<int> mask, ReadOnlySpan<T> dropMask, int batch, int seq, int heads, int headSize) where T : IFloatingPointIeee754<T>
        {
            int t = seq, d = headSize, e = heads * d;
            T scale = T.One / T.Sqrt(T.CreateChecked(d)), min = T.CreateChecked(float.MinValue);
            var s = new T[t];
            for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            for (int i = 0; i < t; i++)
            {
                T max = T.NegativeInfinity;
                for (int j = 0; j < t; j++)
                {
                    T dot = T.Zero;
                    for (int c = 0; c < d; c++) dot += q[(b * t + i) * e + h * d + c] * k[(b * t + j) * e + h * d + c];
                    s[j] = dot * scale + (mask.IsEmpty || mask[b * t + j] != 0 ? T.Zero : min);
                    max = T.Max(max, s[j]);
                }
                T sum = T.Zero;
                for (int j = 0; j < t; j++) { s[j] = T.Exp(s[j] - max); sum += s[j]; }
                long row = (((long)b * heads + h) * t + i) * t;
                for (int j = 0; j < t; j++) probs[(int)(row + j)] = s[j] / sum;
                for (int c = 0; c < d; c++)
                {
                    T acc = T.Zero;
                    for (int j = 0; j < t; j++)
                        acc += probs[(int)(row + j)] * (dropMask.IsEmpty ? T.One : dropMask[(int)(row + j)]) * v[(b * t + j) * e + h * d + c];
                    ctx[(b * t + i) * e + h * d + c] = acc;
                }
            }
        }

        public static void Backward<T>(Span<T> dq, Span<T> dk, Span<T> dv, ReadOnlySpan<T> dctx, ReadOnlySpan<T> probs,
            ReadOnlySpan<T> q, ReadOnlySpan<T> k, ReadOnlySpan<T> v, ReadOnlySpan<T> dropMask, int batch, int seq, int heads, int headSize) where T : IFloatingPointIeee754<T>
        {
            int t = seq, d = headSize, e = heads * d;
            T scale = T.One / T.Sqrt(T.CreateChecked(d));
            var dp = new T[t];
            for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            for (int i = 0; i < t; i++)
            {
                long row = (((long)b * heads + h) * t + i) * t;
                T dot = T.Zero;
                for (int j = 0; j < t; j++)
                {
                    T m = dropMask.IsEmpty ? T.One : dropMask[(int)(row + j)];
                    T g = T.Zero;
                    for (int c = 0; c < d; c++)
                    {
                        T dc = dctx[(b * t + i) * e + h * d + c];
                        g += dc * v[(b * t + j) * e + h * d + c];
                        dv[(b * t + j) * e + h * d + c] += probs[(int)(row + j)] * m * dc;
                    }
                    dp[j] = g * m;
                    dot += dp[j] * probs[(int)(row + j)];
                }
                for (int j = 0; j < t; j++)
                {
                    T ds = probs[(int)(row + j)] * (dp[j] - dot) * scale;
                    for (int c = 0; c < d; c++)
                    {
                        dq[(b * t + i) * e + h * d + c] += ds * k[(b * t + j) * e + h * d + c];
                        dk[(b * t + j) * e + h * d + c] += ds * q[(b * t + i) * e + h * d + c];
                    }
                }
            }
        }
    }
}
