namespace Compiled.Nets.Kernels;

// Dims: N rows (batch), K classes.
public static class CrossEntropyKernels
{
    /// <summary>
    /// Mean over rows of −log softmax(logits)[label] (with label smoothing ε: (1−ε)·nll + ε·mean(−log p)), saving
    /// probs[N,K] for backward. Throws <see cref="ArgumentOutOfRangeException"/> naming the row and label when a label
    /// is outside [0, K). Sums in double.
    /// </summary>
    public static float Forward(Span<float> probs, ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int rows, int classes, float labelSmoothing = 0f)
        => throw new NotImplementedException();

    /// <summary>dlogits += scale·(probs − target) with target the (smoothed) one-hot; scale is dLoss/N (1/N for a mean).</summary>
    public static void Backward(Span<float> dlogits, ReadOnlySpan<float> probs, ReadOnlySpan<int> labels, int rows, int classes, float scale, float labelSmoothing = 0f)
        => throw new NotImplementedException();
}

public static class MseKernels
{
    /// <summary>Mean over all n elements of (pred − target)².</summary>
    public static float Forward(ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n) => throw new NotImplementedException();

    /// <summary>dpred += scale·2·(pred − target); scale is dLoss/n.</summary>
    public static void Backward(Span<float> dpred, ReadOnlySpan<float> pred, ReadOnlySpan<float> target, int n, float scale) => throw new NotImplementedException();
}
