using System.Numerics;

namespace Compiled.Nets.Kernels;

// Dims: N rows (batch), K classes.
public static class CrossEntropyKernels
{
    /// <summary>
    /// Mean over rows of −log softmax(logits)[label] (with label smoothing ε, PyTorch's definition:
    /// (1−ε)·nll + ε·mean_k(−log p_k)), saving probs[N,K] for backward. Throws <see cref="ArgumentOutOfRangeException"/>
    /// naming the row and label when a label is outside [0, K). Sums in double.
    /// </summary>
    public static float Forward(Span<float> probs, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int rows, int classes, float labelSmoothing = 0f)
        => Reference.Forward(probs, logits, labels, rows, classes, labelSmoothing);

    /// <summary>dlogits += scale·(probs − target) with target the (smoothed) one-hot; scale is dLoss/N (1/N for a mean).</summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> probs, ReadOnlySpan<int> labels, int rows, int classes, float scale, float labelSmoothing = 0f)
        => Reference.Backward(dlogits, probs, labels, rows, classes, scale, labelSmoothing);

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
