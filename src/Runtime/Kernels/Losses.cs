using System.Numerics;
using System.Runtime.Intrinsics;

namespace Compiled.Nets.Kernels;

// Dims: N rows (batch), K classes.
public static unsafe class CrossEntropyKernels
{
    /// <summary>
    /// Mean over rows of −log softmax(logits)[label] (with label smoothing ε, PyTorch's definition:
    /// (1−ε)·nll + ε·mean_k(−log p_k)), saving probs[N,K] for backward. Throws <see cref="ArgumentOutOfRangeException"/>
    /// naming the row and label when a label is outside [0, K). Sums in double.
    /// </summary>
    public static float Forward(Span<float> probs, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int rows, int classes, float labelSmoothing = 0f)
    {
        Check(probs.Length, logits.Length, labels.Length, rows, classes);
        if (!Vector512.IsHardwareAccelerated) return Reference.Forward(probs, logits, labels, rows, classes, labelSmoothing);
        double total = 0, eps = labelSmoothing;
        fixed (float* pp = probs) fixed (float* pl = logits)
            for (int n = 0; n < rows; n++)
            {
                int label = labels[n];
                if ((uint)label >= (uint)classes)
                    throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label {label} in row {n} is outside [0, {classes}).");
                float* lr = pl + (long)n * classes, pr = pp + (long)n * classes;
                float max = RowOps.Max(lr, classes);
                float sum = RowOps.ExpShifted(pr, lr, classes, max);
                RowOps.Scale(pr, classes, 1f / sum);
                double logSum = Math.Log(sum) + max;
                double nll = logSum - lr[label];
                // mean_k(−log p_k) = logSum − mean_k(logit_k); only needed with smoothing.
                double smooth = eps == 0 ? 0 : logSum - (double)RowOps.Sum(lr, classes) / classes;
                total += (1 - eps) * nll + eps * smooth;
            }
        return (float)(total / rows);
    }

    /// <summary>dlogits += scale·(probs − target) with target the (smoothed) one-hot; scale is dLoss/N (1/N for a mean).</summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> probs, ReadOnlySpan<int> labels, int rows, int classes, float scale, float labelSmoothing = 0f)
    {
        Check(dlogits.Length, probs.Length, labels.Length, rows, classes);
        if (!Vector512.IsHardwareAccelerated) { Reference.Backward(dlogits, probs, labels, rows, classes, scale, labelSmoothing); return; }
        float off = labelSmoothing / classes, on = 1f - labelSmoothing + off;
        var sv = Vector512.Create(scale); var offv = Vector512.Create(scale * off);
        fixed (float* pd = dlogits) fixed (float* pp = probs)
            for (int n = 0; n < rows; n++)
            {
                float* d = pd + (long)n * classes, p = pp + (long)n * classes;
                int label = labels[n], k = 0;
                for (; k + 16 <= classes; k += 16)
                    Vector512.Store(Vector512.FusedMultiplyAdd(sv, Vector512.Load(p + k), Vector512.Load(d + k)) - offv, d + k);
                for (; k < classes; k++) d[k] += scale * (p[k] - off);
                // The label's target is `on`, not `off`.
                if ((uint)label < (uint)classes) d[label] -= scale * (on - off);
            }
    }

    /// <summary>
    /// Cross-entropy with class weights and an ignored label, as PyTorch defines them (<c>weight</c>,
    /// <c>ignore_index</c>, <c>label_smoothing</c>, mean reduction): (1−ε)·Σₙ w[yₙ]·nllₙ / W + ε/K·Σₙ Σₖ w[k]·(−log pₙₖ) / W
    /// over the rows whose label is not <paramref name="ignoreIndex"/>, W = Σ w[yₙ] over those rows (their count without
    /// weights). Empty <paramref name="weights"/> weighs every class 1. Saves probs for backward. A batch whose every label
    /// is ignored has loss 0 (PyTorch gives NaN). Sums in double.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A label outside [0, K) that is not the ignored one, naming its row.</exception>
    public static float Forward(Span<float> probs, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int rows, int classes, float labelSmoothing, ReadOnlySpan<float> weights, int ignoreIndex)
    {
        Check(probs.Length, logits.Length, labels.Length, rows, classes);
        CheckWeights(weights, classes);
        double eps = labelSmoothing, nllSum = 0, smoothSum = 0;
        double total = Denominator(labels, rows, classes, weights, ignoreIndex);
        for (int n = 0; n < rows; n++)
        {
            var lr = logits.Slice(n * classes, classes);
            var pr = probs.Slice(n * classes, classes);
            int label = labels[n];
            // Ignored rows still get their probabilities (the logits' softmax) but add nothing.
            double max = double.NegativeInfinity;
            foreach (var v in lr) max = Math.Max(max, v);
            double sum = 0;
            for (int k = 0; k < classes; k++) { double e = Math.Exp(lr[k] - max); pr[k] = (float)e; sum += e; }
            double logSum = Math.Log(sum) + max;
            for (int k = 0; k < classes; k++) pr[k] = (float)(pr[k] / sum);
            if (label == ignoreIndex) continue;
            nllSum += Weight(weights, label) * (logSum - lr[label]);
            if (eps != 0)
                for (int k = 0; k < classes; k++) smoothSum += Weight(weights, k) * (logSum - lr[k]);
        }
        if (total == 0) return 0f;
        return (float)(((1 - eps) * nllSum + eps / classes * smoothSum) / total);
    }

    /// <summary>dlogits += scale/W·((1−ε)·w[yₙ]·(p − onehot) + ε/K·(Σw·p − w)) for the rows not ignored: the gradient of
    /// the weighted <see cref="Forward(Span{float}, ReadOnlySpan{float}, ReadOnlySpan{int}, int, int, float, ReadOnlySpan{float}, int)"/>
    /// (scale 1 for the loss itself).</summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> probs, ReadOnlySpan<int> labels, int rows, int classes, float labelSmoothing, ReadOnlySpan<float> weights, int ignoreIndex, float scale = 1f)
    {
        Check(dlogits.Length, probs.Length, labels.Length, rows, classes);
        CheckWeights(weights, classes);
        double total = Denominator(labels, rows, classes, weights, ignoreIndex);
        if (total == 0) return;
        double eps = labelSmoothing, weightSum = 0;
        for (int k = 0; k < classes; k++) weightSum += Weight(weights, k);
        for (int n = 0; n < rows; n++)
        {
            int label = labels[n];
            if (label == ignoreIndex) continue;
            var d = dlogits.Slice(n * classes, classes);
            var p = probs.Slice(n * classes, classes);
            double wy = (1 - eps) * Weight(weights, label), s = scale / total;
            for (int k = 0; k < classes; k++)
                d[k] += (float)(s * (wy * (p[k] - (k == label ? 1 : 0)) + eps / classes * (weightSum * p[k] - Weight(weights, k))));
        }
    }

    private static double Weight(ReadOnlySpan<float> weights, int k) => ClassWeights.Of(weights, k);

    private static double Denominator(ReadOnlySpan<int> labels, int rows, int classes, ReadOnlySpan<float> weights, int ignoreIndex) =>
        ClassWeights.Denominator(labels, rows, classes, weights, ignoreIndex);

    private static void CheckWeights(ReadOnlySpan<float> weights, int classes) => ClassWeights.Check(weights, classes, "Cross-entropy");

    private static void Check(int a, int b, int labels, int rows, int classes)
    {
        long need = (long)rows * classes;
        if (a < need || b < need) throw new ArgumentException($"Cross-entropy over [{rows}, {classes}] needs {need} floats per span; got {a} and {b}.");
        if (labels < rows) throw new ArgumentException($"Cross-entropy over {rows} rows needs {rows} labels; got {labels}.");
    }

    /// <summary>Generic loops shared by the float kernels and the double-precision tests.</summary>
    public static class Reference
    {
        public static float Forward<T>(Span<T> probs, ReadOnlySpan<T> logits, ReadOnlySpan<int> labels, int rows, int classes, T labelSmoothing) where T : IFloatingPointIeee754<T>
        {
            double total = 0, eps = double.CreateChecked(labelSmoothing);
            for (int n = 0; n < rows; n++)
            {
                int label = labels[n];
                if ((uint)label >= (uint)classes)
                    throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label {label} in row {n} is outside [0, {classes}).");
                var lr = logits.Slice(n * classes, classes);
                double max = double.NegativeInfinity;
                foreach (var v in lr) max = Math.Max(max, double.CreateChecked(v));
                double sum = 0;
                foreach (var v in lr) sum += Math.Exp(double.CreateChecked(v) - max);
                double logSum = Math.Log(sum) + max, meanNegLogP = 0;
                for (int k = 0; k < classes; k++)
                {
                    double lp = double.CreateChecked(lr[k]) - logSum;
                    probs[n * classes + k] = T.CreateChecked(Math.Exp(lp));
                    meanNegLogP -= lp;
                }
                double nll = logSum - double.CreateChecked(lr[label]);
                total += (1 - eps) * nll + eps * meanNegLogP / classes;
            }
            return (float)(total / rows);
        }

        public static void Backward<T>(Span<T> dlogits, ReadOnlySpan<T> probs, ReadOnlySpan<int> labels, int rows, int classes, T scale, T labelSmoothing) where T : IFloatingPointIeee754<T>
        {
            T off = labelSmoothing / T.CreateChecked(classes), on = T.One - labelSmoothing + off;
            for (int n = 0; n < rows; n++)
                for (int k = 0; k < classes; k++)
                    dlogits[n * classes + k] += scale * (probs[n * classes + k] - (k == labels[n] ? on : off));
        }
    }
}

public static class MseKernels
{
    /// <summary>Mean over all n elements of (pred − target)².</summary>
    public static float Forward(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) { double d = (double)pred[i] - target[i]; s += d * d; }
        return (float)(s / n);
    }

    /// <summary>dpred += scale·2·(pred − target); scale is dLoss/n.</summary>
    public static void Backward(Span<float> dpred, ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float scale)
    {
        for (int i = 0; i < n; i++) dpred[i] += scale * 2f * (pred[i] - target[i]);
    }
}

/// <summary>Mean absolute error (<c>nn.L1Loss</c>): mean over all n elements of |pred − target|.</summary>
/// <summary>
/// Kullback–Leibler divergence (<c>nn.KLDivLoss</c>, log_target=False) of target probabilities from the network's
/// log-probabilities: Σ t·(log t − input) over the n elements (0 where t = 0), divided by <c>divisor</c> (n for
/// PyTorch's default 'mean', the batch for 'batchmean', the true KL per sample).
/// </summary>
public static class KlDivKernels
{
    /// <summary>The divergence, summed in double.</summary>
    /// <exception cref="ArgumentException">A target that is negative or not finite, naming its index.</exception>
    public static float Forward(ReadOnlySpan<float> logProbs, ReadOnlySpan<float> target, int n, float divisor)
    {
        if (logProbs.Length < n || target.Length < n) throw new ArgumentException($"KL divergence over {n} values; got {logProbs.Length} and {target.Length}.");
        double s = 0;
        for (int i = 0; i < n; i++)
        {
            float t = target[i];
            if (!(t >= 0) || float.IsInfinity(t)) throw new ArgumentException($"KL divergence: target {i} is {t}; targets are probabilities (finite, not negative).", nameof(target));
            if (t > 0) s += t * (Math.Log(t) - logProbs[i]);
        }
        return (float)(s / divisor);
    }

    /// <summary>dinput += −scale·t (scale is dLoss/divisor).</summary>
    public static void Backward(Span<float> dLogProbs, ReadOnlySpan<float> target, int n, float scale)
    {
        for (int i = 0; i < n; i++) dLogProbs[i] -= scale * target[i];
    }
}

public static class L1Kernels
{
    /// <summary>The mean of |pred − target|, summed in double.</summary>
    public static float Forward(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++) s += Math.Abs((double)pred[i] - target[i]);
        return (float)(s / n);
    }

    /// <summary>dpred += scale·sign(pred − target) (0 where they are equal, as PyTorch); scale is dLoss/n.</summary>
    public static void Backward(Span<float> dpred, ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float scale)
    {
        for (int i = 0; i < n; i++) dpred[i] += scale * MathF.Sign(pred[i] - target[i]);
    }
}

/// <summary>Smooth L1 (<c>nn.SmoothL1Loss</c>): ½d²/β where |d| &lt; β, else |d| − ½β, with d = pred − target, averaged.</summary>
public static class SmoothL1Kernels
{
    /// <summary>The mean smooth-L1 loss, summed in double.</summary>
    public static float Forward(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float beta)
    {
        double s = 0;
        for (int i = 0; i < n; i++)
        {
            double d = Math.Abs((double)pred[i] - target[i]);
            s += d < beta ? 0.5 * d * d / beta : d - 0.5 * beta;
        }
        return (float)(s / n);
    }

    /// <summary>dpred += scale·(d/β where |d| &lt; β, else sign(d)); scale is dLoss/n.</summary>
    public static void Backward(Span<float> dpred, ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float scale, float beta)
    {
        for (int i = 0; i < n; i++)
        {
            float d = pred[i] - target[i];
            dpred[i] += scale * (MathF.Abs(d) < beta ? d / beta : MathF.Sign(d));
        }
    }
}

/// <summary>
/// Binary cross-entropy on logits (<c>nn.BCEWithLogitsLoss</c>): for each of n logits x and targets t in [0, 1],
/// max(x, 0) − x·t + log(1 + e^−|x|) (the stable form), averaged; the gradient is σ(x) − t.
/// </summary>
public static class BceWithLogitsKernels
{
    /// <summary>The mean loss, summed in double.</summary>
    public static float Forward(ReadOnlySpan<float> logits, ReadOnlySpan<float> target, int n)
    {
        double s = 0;
        for (int i = 0; i < n; i++)
        {
            double x = logits[i];
            s += Math.Max(x, 0) - x * target[i] + Math.Log(1 + Math.Exp(-Math.Abs(x)));
        }
        return (float)(s / n);
    }

    /// <summary>dlogits += scale·(σ(x) − t); scale is dLoss/n.</summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> logits, ReadOnlySpan<float> target, int n, float scale)
    {
        for (int i = 0; i < n; i++) dlogits[i] += scale * (Elementwise.Sigmoid(logits[i]) - target[i]);
    }
}

/// <summary>Negative log-likelihood (<c>nn.NLLLoss</c>) of log-probabilities [N, K] (a log-softmax's output) against class indices.</summary>
public static class NllKernels
{
    /// <summary>The mean over rows of −logProbs[row, label]; a label outside [0, K) is an <see cref="ArgumentOutOfRangeException"/> naming the row.</summary>
    public static float Forward(ReadOnlySpan<float> logProbs, ReadOnlySpan<int> labels, int rows, int classes)
    {
        if (logProbs.Length < (long)rows * classes || labels.Length < rows)
            throw new ArgumentException($"NLL over [{rows}, {classes}] needs {(long)rows * classes} values and {rows} labels; got {logProbs.Length} and {labels.Length}.");
        double total = 0;
        for (int n = 0; n < rows; n++)
        {
            int label = labels[n];
            if ((uint)label >= (uint)classes) throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label {label} in row {n} is outside [0, {classes}).");
            total -= logProbs[n * classes + label];
        }
        return (float)(total / rows);
    }

    /// <summary>dlogProbs[row, label] −= scale; scale is dLoss/N.</summary>
    public static void Backward(Span<float> dlogProbs, ReadOnlySpan<int> labels, int rows, int classes, float scale)
    {
        for (int n = 0; n < rows; n++) dlogProbs[n * classes + labels[n]] -= scale;
    }

    /// <summary>
    /// With class <paramref name="weights"/> (empty: all 1) and an <paramref name="ignoreIndex"/> label that adds nothing,
    /// as <c>F.nll_loss(weight=…, ignore_index=…)</c>: Σ w[yₙ]·(−logProbs[n, yₙ]) / Σ w[yₙ] over the rows not ignored (0
    /// when all are, where PyTorch gives NaN).
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">A label outside [0, K) that is not the ignored one, naming its row.</exception>
    public static float Forward(ReadOnlySpan<float> logProbs, ReadOnlySpan<int> labels, int rows, int classes, ReadOnlySpan<float> weights, int ignoreIndex)
    {
        if (logProbs.Length < (long)rows * classes || labels.Length < rows)
            throw new ArgumentException($"NLL over [{rows}, {classes}] needs {(long)rows * classes} values and {rows} labels; got {logProbs.Length} and {labels.Length}.");
        double total = Denominator(labels, rows, classes, weights, ignoreIndex), sum = 0;
        for (int n = 0; n < rows; n++)
            if (labels[n] != ignoreIndex) sum -= Weight(weights, labels[n]) * logProbs[n * classes + labels[n]];
        return total == 0 ? 0f : (float)(sum / total);
    }

    /// <summary>dlogProbs[row, label] −= scale·w[label] / Σ w[yₙ] for the rows not ignored (scale 1 for the loss itself).</summary>
    public static void Backward(Span<float> dlogProbs, ReadOnlySpan<int> labels, int rows, int classes, ReadOnlySpan<float> weights, int ignoreIndex, float scale = 1f)
    {
        double total = Denominator(labels, rows, classes, weights, ignoreIndex);
        if (total == 0) return;
        for (int n = 0; n < rows; n++)
            if (labels[n] != ignoreIndex) dlogProbs[n * classes + labels[n]] -= (float)(scale * Weight(weights, labels[n]) / total);
    }

    private static double Weight(ReadOnlySpan<float> weights, int k) => ClassWeights.Of(weights, k);

    private static double Denominator(ReadOnlySpan<int> labels, int rows, int classes, ReadOnlySpan<float> weights, int ignoreIndex)
    {
        ClassWeights.Check(weights, classes, "NLL");
        return ClassWeights.Denominator(labels, rows, classes, weights, ignoreIndex);
    }
}

/// <summary>Several losses summed with weights (a network with several outputs): each loss's gradient is scaled by its weight.</summary>
public static class WeightedLoss
{
    /// <summary>gradient *= weight, for the gradient one loss wrote into its output's gradient.</summary>
    public static void Scale(Span<float> gradient, float weight) => System.Numerics.Tensors.TensorPrimitives.Multiply(gradient, weight, gradient);
}

/// <summary>
/// Cosine embedding loss (<c>nn.CosineEmbeddingLoss</c>) of two embeddings per sample, a [batch, dim] and b [batch, dim],
/// against y = 1 (alike: 1 − cos) or −1 (unlike: max(0, cos − margin)); other labels add nothing, as in PyTorch. cos is
/// a·b / √((|a|² + ε)(|b|² + ε)) with ATen's ε = 1e-12. The mean over the batch.
/// </summary>
public static class CosineEmbeddingKernels
{
    private const double Eps = 1e-12;

    /// <summary>The sample's cosine, and its squared norms with ε (for the gradient).</summary>
    private static (double Cos, double A2, double B2, double Dot) Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double dot = 0, a2 = Eps, b2 = Eps;
        for (int i = 0; i < a.Length; i++) { dot += (double)a[i] * b[i]; a2 += (double)a[i] * a[i]; b2 += (double)b[i] * b[i]; }
        return (dot / Math.Sqrt(a2 * b2), a2, b2, dot);
    }

    /// <summary>The mean loss over the batch.</summary>
    /// <exception cref="ArgumentException">When a span is shorter than batch × dim (or batch labels).</exception>
    public static float Forward(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> y, int batch, int dim, float margin)
    {
        Check(a.Length, b.Length, y.Length, batch, dim);
        double sum = 0;
        for (int s = 0; s < batch; s++)
        {
            double cos = Cosine(a.Slice(s * dim, dim), b.Slice(s * dim, dim)).Cos;
            sum += y[s] == 1f ? 1 - cos : y[s] == -1f ? Math.Max(0, cos - margin) : 0;
        }
        return (float)(sum / batch);
    }

    /// <summary>da += scale·∂loss/∂a and db += scale·∂loss/∂b per sample (scale: dLoss/batch): ∂cos/∂a = b/√(..) − cos·a/(|a|²+ε).</summary>
    public static void Backward(Span<float> da, Span<float> db, ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> y, int batch, int dim, float margin, float scale)
    {
        Check(a.Length, b.Length, y.Length, batch, dim);
        if (da.Length < batch * dim || db.Length < batch * dim) throw new ArgumentException($"CosineEmbedding: gradients of {da.Length} and {db.Length} floats for {batch} × {dim}.");
        for (int s = 0; s < batch; s++)
        {
            var sa = a.Slice(s * dim, dim);
            var sb = b.Slice(s * dim, dim);
            var (cos, a2, b2, _) = Cosine(sa, sb);
            double dcos = y[s] == 1f ? -1 : y[s] == -1f && cos - margin > 0 ? 1 : 0;
            if (dcos == 0) continue;
            double g = dcos * scale, inv = 1 / Math.Sqrt(a2 * b2);
            for (int i = 0; i < dim; i++)
            {
                da[s * dim + i] += (float)(g * (sb[i] * inv - cos * sa[i] / a2));
                db[s * dim + i] += (float)(g * (sa[i] * inv - cos * sb[i] / b2));
            }
        }
    }

    private static void Check(int a, int b, int y, int batch, int dim)
    {
        if (batch <= 0 || dim <= 0 || a < (long)batch * dim || b < (long)batch * dim || y < batch)
            throw new ArgumentException($"CosineEmbedding: {batch} samples of {dim} need {(long)batch * dim} floats per embedding and {batch} labels; got {a}, {b} and {y}.");
    }
}

/// <summary>PyTorch's class weights and ignored label, shared by cross-entropy and NLL: a label's weight, and W, the
/// weighted count the mean divides by.</summary>
internal static class ClassWeights
{
    /// <summary>Class k's weight (1 without weights).</summary>
    public static double Of(ReadOnlySpan<float> weights, int k) => weights.IsEmpty ? 1 : weights[k];

    /// <summary>W: the weights of the rows' labels (their count without weights), ignored rows left out.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A label outside [0, K) that is not the ignored one, naming its row.</exception>
    public static double Denominator(ReadOnlySpan<int> labels, int rows, int classes, ReadOnlySpan<float> weights, int ignoreIndex)
    {
        double total = 0;
        for (int n = 0; n < rows; n++)
        {
            int label = labels[n];
            if (label == ignoreIndex) continue;
            if ((uint)label >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(labels), label, $"Label {label} in row {n} is outside [0, {classes}) and is not the ignored label {ignoreIndex}.");
            total += Of(weights, label);
        }
        return total;
    }

    /// <summary>One weight per class, or none.</summary>
    public static void Check(ReadOnlySpan<float> weights, int classes, string loss)
    {
        if (!weights.IsEmpty && weights.Length != classes) throw new ArgumentException($"{loss} over {classes} classes needs {classes} class weights; got {weights.Length}.");
    }
}

/// <summary>A loss written as a method ([CustomLoss]): its compiled result's mean is the loss, and backward starts from
/// the mean's gradient, 1/n on every element.</summary>
public static class CustomLossKernels
{
    /// <summary>The mean of the first <paramref name="n"/> values, summed in double.</summary>
    public static float Mean(ReadOnlySpan<float> values, int n)
    {
        if (n <= 0 || values.Length < n) throw new ArgumentException($"The loss's mean needs {n} values; got {values.Length}.");
        double sum = 0;
        for (int i = 0; i < n; i++) sum += values[i];
        return (float)(sum / n);
    }

    /// <summary>gradient[..n] = 1/n: the gradient of the mean.</summary>
    public static void Seed(Span<float> gradient, int n) => gradient[..n].Fill(1f / n);
}
