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
// [B, T, E] with head h in columns [h·D, (h+1)·D); probs and the dropped probabilities are [B, H, T, T].
// Forward: S = scale·Q·Kᵀ + (1 − mask)·float.MinValue, P = softmax(S) over keys (saved), P̃ = P ⊙ dropout, ctx = P̃·V.
// Backward: dP = (dctx·Vᵀ) ⊙ dropout, dV = P̃ᵀ·dctx, dS = scale·P ⊙ (dP − Σ dP⊙P), dQ = dS·K, dK = dSᵀ·Q.
// Every product is one batched GEMM over (sample, head) reading the heads' column blocks in place (GemmPerHead: the
// tiled kernel on a GPU); each softmax is one group per row, which adds the padding mask and draws the dropout mask
// from Philox. Dropout keeps P̃, not its mask: the mask is 1/(1 − p) where P̃ is not zero and 0 where it is (where P
// itself is 0 the mask does not matter: every term it scales is multiplied by P).
public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionArgs>? _attentionSoftmax;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>? _attentionSoftmaxGrad;

    private Action<Index1D, ArrayView<float>, ArrayView<float>, long, int, long>? _addBiases;

    /// <summary>
    /// y_p = x·W_pᵀ + b_p for <paramref name="count"/> Linears of <paramref name="inFeatures"/> → <paramref name="outFeatures"/>
    /// that read one input (self-attention's query, key and value projections): weight p starts
    /// p·<paramref name="weightSpacing"/> floats into <paramref name="weights"/>, bias p p·<paramref name="biasSpacing"/>
    /// into <paramref name="biases"/>, and y_p is block p of rows·outFeatures floats of <paramref name="y"/>. Two launches
    /// whatever the count: one batched GEMM whose products share x, then every bias in one pass.
    /// </summary>
    public void ProjectionsForward(ArrayView<float> y, ArrayView<float> x, ArrayView<float> weights, long weightSpacing, ArrayView<float> biases, long biasSpacing,
        int count, int rows, int inFeatures, int outFeatures)
    {
        long block = ProjectionsChecked(y, x, weights, weightSpacing, biasSpacing, count, rows, inFeatures, outFeatures);
        Need(biases, (count - 1) * biasSpacing + outFeatures, nameof(biases));
        if (rows == 0) return;
        GemmBatched(false, true, count, rows, outFeatures, inFeatures, 1f, x, 0, weights, weightSpacing, 0f, y, block);
        _addBiases ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, long, int, long>(AddBiasesKernel);
        Launched(); _addBiases(checked((int)(count * block)), y, biases, block, outFeatures, biasSpacing);
    }

    /// <summary>
    /// The backward of <see cref="ProjectionsForward"/>: dW_p += dy_pᵀ·x and db_p += Σ_rows dy_p (a launch each, whatever
    /// the count), the gradients laid out as the parameters; unless <paramref name="dx"/> is default, dx += Σ_p dy_p·W_p
    /// (a GEMM per projection, each adding to dx). Bit p of <paramref name="trainedWeights"/> and
    /// <paramref name="trainedBiases"/> says whether projection p's weight and bias want a gradient: a frozen tensor's is
    /// left alone, so with some frozen the others take a launch each, with all frozen none.
    /// </summary>
    public void ProjectionsBackward(ArrayView<float> dx, ArrayView<float> dWeights, ArrayView<float> dBiases, ArrayView<float> dy, ArrayView<float> x, ArrayView<float> weights,
        long weightSpacing, long biasSpacing, int count, int rows, int inFeatures, int outFeatures, int trainedWeights = -1, int trainedBiases = -1)
    {
        long block = ProjectionsChecked(dy, x, weights, weightSpacing, biasSpacing, count, rows, inFeatures, outFeatures);
        long w = (long)outFeatures * inFeatures;
        int all = count >= 31 ? -1 : (1 << count) - 1;
        trainedWeights &= all; trainedBiases &= all;
        if (trainedWeights != 0) Need(dWeights, (count - 1) * weightSpacing + w, nameof(dWeights));
        if (trainedBiases != 0) Need(dBiases, (count - 1) * biasSpacing + outFeatures, nameof(dBiases));
        if (rows == 0) return;
        if (trainedWeights == all) GemmBatched(true, false, count, outFeatures, inFeatures, rows, 1f, dy, block, x, 0, 1f, dWeights, weightSpacing);
        else
            for (int p = 0; p < count; p++)
                if ((trainedWeights >> p & 1) != 0)
                    Gemm(true, false, outFeatures, inFeatures, rows, 1f, dy.SubView(p * block, block), outFeatures, x, inFeatures, 1f, dWeights.SubView(p * weightSpacing, w), inFeatures);
        if (trainedBiases == all) AddColumnSums(dBiases, biasSpacing, dy, count, rows, outFeatures);
        else
            for (int p = 0; p < count; p++)
                if ((trainedBiases >> p & 1) != 0) AddColumnSums(dBiases.SubView(p * biasSpacing, outFeatures), dy.SubView(p * block, block), rows, outFeatures);
        if (!dx.IsValid) return;
        Need(dx, (long)rows * inFeatures, nameof(dx));
        for (int p = 0; p < count; p++)
            Gemm(false, false, rows, inFeatures, outFeatures, 1f, dy.SubView(p * block, block), outFeatures, weights.SubView(p * weightSpacing, (long)outFeatures * inFeatures), inFeatures, 1f, dx, inFeatures);
    }

    private static long ProjectionsChecked(ArrayView<float> y, ArrayView<float> x, ArrayView<float> weights, long weightSpacing, long biasSpacing, int count, int rows, int inFeatures, int outFeatures)
    {
        if (count <= 0 || rows < 0 || inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Projections: count {count} and features {inFeatures} → {outFeatures} must be positive, rows {rows} not negative.");
        long w = (long)outFeatures * inFeatures;
        // Spacings below a tensor's size would make one projection's gradient overwrite another's.
        if (count > 1 && (weightSpacing < w || biasSpacing < outFeatures))
            throw new ArgumentException($"Projections: weights {weightSpacing} and biases {biasSpacing} floats apart overlap ({w} and {outFeatures} floats each).");
        long block = (long)rows * outFeatures;
        Need(y, count * block, nameof(y)); Need(x, (long)rows * inFeatures, nameof(x)); Need(weights, (count - 1) * weightSpacing + w, nameof(weights));
        return block;
    }

    /// <summary>y[i] += the bias of block i / blockSize at column i mod cols.</summary>
    private static void AddBiasesKernel(Index1D index, ArrayView<float> y, ArrayView<float> biases, long blockSize, int cols, long spacing)
    {
        long i = index;
        y[i] += biases[i / blockSize * spacing + i % cols];
    }

    /// <summary>Floats of scratch <see cref="AttentionBackward"/> needs: one [B, H, T, T] block.</summary>
    public static long AttentionScratch(int batch, int heads, int seq) => (long)batch * heads * seq * seq;

    /// <summary>
    /// ctx = softmax(scale·QKᵀ + mask)·V per head (3 launches), saving the probabilities before dropout in
    /// <paramref name="probs"/>. With <paramref name="masked"/> the keys whose <paramref name="mask"/> entry is 0 get
    /// float.MinValue added. With <paramref name="training"/> and <paramref name="p"/> &gt; 0 the probabilities are
    /// multiplied by a mask of 0 or 1/(1−p) drawn from Philox under (<paramref name="key"/>, <paramref name="stream"/>),
    /// and the products kept in <paramref name="dropped"/> for the context and backward.
    /// </summary>
    public void AttentionForward(ArrayView<float> ctx, ArrayView<float> probs, ArrayView<float> dropped, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<int> mask, bool masked, int batch, int seq, int heads, int headSize, float p, bool training, ulong key, int stream)
    {
        var a = AttentionChecked(batch, seq, heads, headSize, q, k, v, ctx, probs, masked ? mask : default, masked, training && p > 0 ? dropped : default, training && p > 0, p, key, stream);
        _attentionSoftmax ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, AttentionArgs>(AttentionSoftmaxKernel);
        int t = seq, d = headSize, e = a.Embed;
        long tt = (long)t * t, te = (long)t * e, htt = heads * tt;
        GemmPerHead(false, true, batch, heads, t, t, d, a.Scale, q, e, te, d, k, e, te, d, probs, t, htt, tt);
        Launched(); _attentionSoftmax(RowConfig(checked((int)(batch * htt / t)), t), probs, a.Dropped != 0 ? dropped : probs, a.Masked != 0 ? mask : default, a);
        GemmPerHead(false, false, batch, heads, t, d, t, 1f, a.Dropped != 0 ? dropped : probs, t, htt, tt, v, e, te, d, ctx, e, te, d);
    }

    /// <summary>
    /// dq, dk, dv (overwritten) from dctx and what forward saved (5 launches); <paramref name="scratch"/> holds
    /// <see cref="AttentionScratch"/> floats. <paramref name="p"/> &gt; 0: forward dropped with that probability and
    /// <paramref name="dropped"/> holds its P̃.
    /// </summary>
    public void AttentionBackward(ArrayView<float> dq, ArrayView<float> dk, ArrayView<float> dv, ArrayView<float> dctx, ArrayView<float> probs, ArrayView<float> dropped,
        ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> scratch, int batch, int seq, int heads, int headSize, float p)
    {
        var a = AttentionChecked(batch, seq, heads, headSize, q, k, v, dctx, probs, default, false, p > 0 ? dropped : default, p > 0, p, 0, 0);
        long e = (long)batch * seq * a.Embed;
        Need(dq, e, nameof(dq)); Need(dk, e, nameof(dk)); Need(dv, e, nameof(dv));
        Need(scratch, AttentionScratch(batch, heads, seq), nameof(scratch));
        _attentionSoftmaxGrad ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, AttentionArgs>(AttentionSoftmaxGradKernel);
        int t = seq, d = headSize, w = a.Embed;
        long tt = (long)t * t, te = (long)t * w, htt = heads * tt;
        var kept = a.Dropped != 0 ? dropped : probs;
        GemmPerHead(false, true, batch, heads, t, t, d, 1f, dctx, w, te, d, v, w, te, d, scratch, t, htt, tt);       // dP (before dropout)
        GemmPerHead(true, false, batch, heads, t, d, t, 1f, kept, t, htt, tt, dctx, w, te, d, dv, w, te, d);          // dV = P̃ᵀ·dctx
        Launched(); _attentionSoftmaxGrad(RowConfig(checked((int)(batch * htt / t)), t), scratch, probs, kept, a);                // dS over dP
        GemmPerHead(false, false, batch, heads, t, d, t, 1f, scratch, t, htt, tt, k, w, te, d, dq, w, te, d);         // dQ = dS·K
        GemmPerHead(true, false, batch, heads, t, d, t, 1f, scratch, t, htt, tt, q, w, te, d, dk, w, te, d);          // dK = dSᵀ·Q
    }

    private static AttentionArgs AttentionChecked(int batch, int seq, int heads, int headSize, ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> ctx,
        ArrayView<float> probs, ArrayView<int> mask, bool masked, ArrayView<float> dropped, bool dropping, float p, ulong key, int stream)
    {
        if (batch <= 0 || seq <= 0 || heads <= 0 || headSize <= 0)
            throw new ArgumentException($"Attention: batch {batch}, sequence {seq}, heads {heads} and head size {headSize} must be positive.");
        if (dropping && !(p < 1f)) throw new ArgumentException($"Attention: dropout probability {p} must be below 1.");
        long e = (long)batch * seq * heads * headSize, pr = AttentionScratch(batch, heads, seq);
        Need(q, e, nameof(q)); Need(k, e, nameof(k)); Need(v, e, nameof(v)); Need(ctx, e, nameof(ctx)); Need(probs, pr, nameof(probs));
        if (masked) Need(mask, (long)batch * seq, nameof(mask));
        if (dropping) Need(dropped, pr, nameof(dropped));
        return new AttentionArgs
        {
            Batch = batch, Seq = seq, Heads = heads, HeadSize = headSize, Masked = masked ? 1 : 0, Dropped = dropping ? 1 : 0, Stream = stream,
            Scale = 1f / MathF.Sqrt(headSize), P = p, Key = key,
        };
    }

    /// <summary>One row of scores (b, h, i) per group → probabilities in place, a padded key's score lowered by
    /// float.MinValue first; with dropout, P̃ = P ⊙ mask into <paramref name="dropped"/>, the mask drawn per element.</summary>
    private static void AttentionSoftmaxKernel(ArrayView<float> probs, ArrayView<float> dropped, ArrayView<int> mask, AttentionArgs a)
    {
        int t = a.Seq, first = Group.IdxX, step = Group.DimX;
        long o = (long)Grid.IdxX * t;
        long keys = (long)(Grid.IdxX / (a.Heads * t)) * t;   // this sample's mask row
        float max = float.NegativeInfinity;
        for (int j = first; j < t; j += step)
        {
            float s = probs[o + j];
            if (a.Masked != 0 && mask[keys + j] == 0) { s += float.MinValue; probs[o + j] = s; }
            max = XMath.Max(max, s);
        }
        max = GroupMax(max);
        float sum = 0f;
        for (int j = first; j < t; j += step) sum += XMath.Exp(probs[o + j] - max);
        sum = GroupSum(sum);
        for (int j = first; j < t; j += step) probs[o + j] = XMath.Exp(probs[o + j] - max) / sum;
        if (a.Dropped == 0) return;
        float keep = 1f / (1f - a.P);
        for (int j = first; j < t; j += step) dropped[o + j] = Philox.Uniform(a.Key, o + j, a.Stream) < a.P ? 0f : probs[o + j] * keep;
    }

    /// <summary>One row per group: dP ⊙ dropout (its mask read off P̃), then dS = scale·P ⊙ (dP − Σ dP⊙P), in place over dP.</summary>
    private static void AttentionSoftmaxGradKernel(ArrayView<float> dP, ArrayView<float> probs, ArrayView<float> dropped, AttentionArgs a)
    {
        int t = a.Seq, first = Group.IdxX, step = Group.DimX;
        long o = (long)Grid.IdxX * t;
        float keep = a.Dropped != 0 ? 1f / (1f - a.P) : 1f;
        float dot = 0f;
        for (int j = first; j < t; j += step)
        {
            float g = dP[o + j];
            if (a.Dropped != 0) { g = dropped[o + j] != 0f ? g * keep : 0f; dP[o + j] = g; }
            dot += g * probs[o + j];
        }
        dot = GroupSum(dot);
        for (int j = first; j < t; j += step) dP[o + j] = probs[o + j] * (dP[o + j] - dot) * a.Scale;
    }
}
