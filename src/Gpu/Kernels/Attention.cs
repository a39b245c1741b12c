using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of one attention call: B, T, H, D, the scale 1/√D, whether the mask and attention dropout apply,
/// the dropout probability and the Philox key and stream its mask is drawn under.</summary>
internal struct AttentionArgs
{
    public int Batch, Seq, Heads, HeadSize, Masked, Dropped, Stream;
    public float Scale, P;
    public ulong Key;
    public readonly int Embed => Heads * HeadSize;
}

// Multi-head self-attention as the CPU runtime's AttentionKernels (Hugging Face's BertSelfAttention): q, k, v and ctx are
// [B, T, E] with head h in columns [h·D, (h+1)·D); probs and the dropout mask are [B, H, T, T].
// Forward: S = scale·Q·Kᵀ + (1 − mask)·float.MinValue, P = softmax(S) over keys (saved), P̃ = P ⊙ dropout, ctx = P̃·V.
// Backward: dP = (dctx·Vᵀ) ⊙ dropout, dV = P̃ᵀ·dctx, dS = scale·P ⊙ (dP − Σ dP⊙P), dQ = dS·K, dK = dSᵀ·Q.
// Each product is one thread per output element (the scores, the context, dP, dV, and dQ with dK together), each
// softmax one thread per row; dropout draws its mask from Philox in the softmax kernel.
public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionArgs>? _attentionScores;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionSoftmax;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionContext;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionProbsGrad, _attentionValueGrad;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionSoftmaxGrad;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionQueryKeyGrad;

    /// <summary>Floats of scratch <see cref="AttentionBackward"/> needs: one [B, H, T, T] block.</summary>
    public static long AttentionScratch(int batch, int heads, int seq) => (long)batch * heads * seq * seq;

    /// <summary>
    /// ctx = softmax(scale·QKᵀ + mask)·V per head (3 launches), saving the probabilities before dropout in
    /// <paramref name="probs"/>. With <paramref name="masked"/> the keys whose <paramref name="mask"/> entry is 0 get
    /// float.MinValue added. With <paramref name="training"/> and <paramref name="p"/> &gt; 0 the probabilities are
    /// multiplied by a mask of 0 or 1/(1−p) drawn from Philox under (<paramref name="key"/>, <paramref name="stream"/>),
    /// stored in <paramref name="dropMask"/> for backward.
    /// </summary>
    public void AttentionForward(ArrayView<float> ctx, ArrayView<float> probs, ArrayView<float> dropMask, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<int> mask, bool masked, int batch, int seq, int heads, int headSize, float p, bool training, ulong key, int stream)
    {
        var a = AttentionChecked(batch, seq, heads, headSize, q, k, v, ctx, probs, masked ? mask : default, masked, training && p > 0 ? dropMask : default, training && p > 0, p, key, stream);
        _attentionScores ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionArgs>(AttentionScoresKernel);
        _attentionSoftmax ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionSoftmaxKernel);
        _attentionContext ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionContextKernel);
        long rows = (long)batch * heads * seq;
        Launched(); _attentionScores(checked((int)(rows * seq)), probs, q, k, mask, a); // an unmasked call's mask is never read
        Launched(); _attentionSoftmax(checked((int)rows), probs, a.Dropped != 0 ? dropMask : probs, a);
        Launched(); _attentionContext(checked(batch * seq * a.Embed), ctx, probs, a.Dropped != 0 ? dropMask : probs, v, a);
    }

    /// <summary>
    /// dq, dk, dv (overwritten) from dctx and what forward saved (4 launches); <paramref name="scratch"/> holds
    /// <see cref="AttentionScratch"/> floats. <paramref name="dropped"/>: forward applied <paramref name="dropMask"/>.
    /// </summary>
    public void AttentionBackward(ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> dctx, ArrayView<float> probs, ArrayView<float> dropMask,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> scratch, int batch, int seq, int heads, int headSize, bool dropped)
    {
        var a = AttentionChecked(batch, seq, heads, headSize, q, k, v, dctx, probs, default, false, dropped ? dropMask : default, dropped, 0f, 0, 0);
        long e = (long)batch * seq * a.Embed;
        Need(dq, e, nameof(dq)); Need(dk, e, nameof(dk)); Need(dv, e, nameof(dv));
        Need(scratch, AttentionScratch(batch, heads, seq), nameof(scratch));
        _attentionProbsGrad ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionProbsGradKernel);
        _attentionValueGrad ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionValueGradKernel);
        _attentionSoftmaxGrad ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionSoftmaxGradKernel);
        _attentionQueryKeyGrad ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionQueryKeyGradKernel);
        var drop = dropped ? dropMask : probs;
        long rows = (long)batch * heads * seq;
        Launched(); _attentionProbsGrad(checked((int)(rows * seq)), scratch, dctx, v, drop, a);
        Launched(); _attentionValueGrad(checked((int)e), dv, dctx, probs, drop, a);
        Launched(); _attentionSoftmaxGrad(checked((int)rows), scratch, probs, a);
        Launched(); _attentionQueryKeyGrad(checked((int)e), dq, dk, scratch, q, k, a);
    }

    private static AttentionArgs AttentionChecked(int batch, int seq, int heads, int headSize, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> ctx,
        ArrayView<float> probs, ArrayView<int> mask, bool masked, ArrayView<float> dropMask, bool dropped, float p, ulong key, int stream)
    {
        if (batch <= 0 || seq <= 0 || heads <= 0 || headSize <= 0)
            throw new ArgumentException($"Attention: batch {batch}, sequence {seq}, heads {heads} and head size {headSize} must be positive.");
        long e = (long)batch * seq * heads * headSize, pr = AttentionScratch(batch, heads, seq);
        Need(q, e, nameof(q)); Need(k, e, nameof(k)); Need(v, e, nameof(v)); Need(ctx, e, nameof(ctx)); Need(probs, pr, nameof(probs));
        if (masked) Need(mask, (long)batch * seq, nameof(mask));
        if (dropped) Need(dropMask, pr, nameof(dropMask));
        return new AttentionArgs
        {
            Batch = batch, Seq = seq, Heads = heads, HeadSize = headSize, Masked = masked ? 1 : 0, Dropped = dropped ? 1 : 0, Stream = stream,
            Scale = 1f / MathF.Sqrt(headSize), P = p, Key = key,
        };
    }

    /// <summary>probs[b,h,i,j] = scale·q[b,i,h,:]·k[b,j,h,:] (+ float.MinValue for a padded key).</summary>
    private static void AttentionScoresKernel(Index1D index, ArrayView<float> probs, ArrayView<float> q, ArrayView<float> k, ArrayView<int> mask, AttentionArgs a)
    {
        int at = index;
        int t = a.Seq, d = a.HeadSize, e = a.Embed;
        int j = at % t, row = at / t, i = row % t, bh = row / t, h = bh % a.Heads, b = bh / a.Heads;
        long qi = ((long)b * t + i) * e + h * d, kj = ((long)b * t + j) * e + h * d;
        float dot = 0f;
        for (int c = 0; c < d; c++) dot += q[qi + c] * k[kj + c];
        float s = dot * a.Scale;
        if (a.Masked != 0 && mask[b * t + j] == 0) s += float.MinValue;
        probs[at] = s;
    }

    /// <summary>One row of scores → probabilities in place; with dropout, its mask drawn per element.</summary>
    private static void AttentionSoftmaxKernel(Index1D index, ArrayView<float> probs, ArrayView<float> dropMask, AttentionArgs a)
    {
        int t = a.Seq;
        long o = (long)index.X * t;
        float max = float.NegativeInfinity;
        for (int j = 0; j < t; j++) max = XMath.Max(max, probs[o + j]);
        float sum = 0f;
        for (int j = 0; j < t; j++) sum += XMath.Exp(probs[o + j] - max);
        for (int j = 0; j < t; j++) probs[o + j] = XMath.Exp(probs[o + j] - max) / sum;
        if (a.Dropped == 0) return;
        float keep = 1f / (1f - a.P);
        for (int j = 0; j < t; j++) dropMask[o + j] = Philox.Uniform(a.Key, o + j, a.Stream) < a.P ? 0f : keep;
    }

    /// <summary>ctx[b,i,h,c] = Σ_j P̃[b,h,i,j]·v[b,j,h,c].</summary>
    private static void AttentionContextKernel(Index1D index, ArrayView<float> ctx, ArrayView<float> probs, ArrayView<float> dropMask, ArrayView<float> v, AttentionArgs a)
    {
        int at = index;
        int t = a.Seq, d = a.HeadSize, e = a.Embed;
        int col = at % e, bt = at / e, b = bt / t, i = bt % t, h = col / d, c = col % d;
        long prow = (((long)b * a.Heads + h) * t + i) * t, vj = (long)b * t * e + h * d + c;
        float sum = 0f;
        for (int j = 0; j < t; j++)
        {
            float pj = probs[prow + j];
            if (a.Dropped != 0) pj *= dropMask[prow + j];
            sum += pj * v[vj + (long)j * e];
        }
        ctx[at] = sum;
    }

    /// <summary>dP[b,h,i,j] = (dctx[b,i,h,:]·v[b,j,h,:]) ⊙ dropout, into scratch.</summary>
    private static void AttentionProbsGradKernel(Index1D index, ArrayView<float> dP, ArrayView<float> dctx, ArrayView<float> v, ArrayView<float> dropMask, AttentionArgs a)
    {
        int at = index;
        int t = a.Seq, d = a.HeadSize, e = a.Embed;
        int j = at % t, row = at / t, i = row % t, bh = row / t, h = bh % a.Heads, b = bh / a.Heads;
        long gi = ((long)b * t + i) * e + h * d, vj = ((long)b * t + j) * e + h * d;
        float dot = 0f;
        for (int c = 0; c < d; c++) dot += dctx[gi + c] * v[vj + c];
        dP[at] = a.Dropped != 0 ? dot * dropMask[at] : dot;
    }

    /// <summary>dv[b,j,h,c] = Σ_i P̃[b,h,i,j]·dctx[b,i,h,c].</summary>
    private static void AttentionValueGradKernel(Index1D index, ArrayView<float> dv, ArrayView<float> dctx, ArrayView<float> probs, ArrayView<float> dropMask, AttentionArgs a)
    {
        int at = index;
        int t = a.Seq, d = a.HeadSize, e = a.Embed;
        int col = at % e, bt = at / e, b = bt / t, j = bt % t, h = col / d, c = col % d;
        long head = ((long)b * a.Heads + h) * t * t, gi = (long)b * t * e + h * d + c;
        float sum = 0f;
        for (int i = 0; i < t; i++)
        {
            long pij = head + (long)i * t + j;
            float pi = probs[pij];
            if (a.Dropped != 0) pi *= dropMask[pij];
            sum += pi * dctx[gi + (long)i * e];
        }
        dv[at] = sum;
    }

    /// <summary>One row: dS = scale·P ⊙ (dP − Σ dP⊙P), in place over dP.</summary>
    private static void AttentionSoftmaxGradKernel(Index1D index, ArrayView<float> dP, ArrayView<float> probs, AttentionArgs a)
    {
        int t = a.Seq;
        long o = (long)index.X * t;
        float dot = 0f;
        for (int j = 0; j < t; j++) dot += dP[o + j] * probs[o + j];
        for (int j = 0; j < t; j++) dP[o + j] = probs[o + j] * (dP[o + j] - dot) * a.Scale;
    }

    /// <summary>dq[b,t,h,c] = Σ_j dS[b,h,t,j]·k[b,j,h,c] and dk[b,t,h,c] = Σ_i dS[b,h,i,t]·q[b,i,h,c].</summary>
    private static void AttentionQueryKeyGradKernel(Index1D index, ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dS, ArrayView<float> q, ArrayView<float> k, AttentionArgs a)
    {
        int at = index;
        int t = a.Seq, d = a.HeadSize, e = a.Embed;
        int col = at % e, bt = at / e, b = bt / t, r = bt % t, h = col / d, c = col % d;
        long head = ((long)b * a.Heads + h) * t * t, x0 = (long)b * t * e + h * d + c;
        float gq = 0f, gk = 0f;
        for (int j = 0; j < t; j++)
        {
            gq += dS[head + (long)r * t + j] * k[x0 + (long)j * e];
            gk += dS[head + (long)j * t + r] * q[x0 + (long)j * e];
        }
        dq[at] = gq;
        dk[at] = gk;
    }
}
