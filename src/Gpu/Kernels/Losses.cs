using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

public sealed partial class GpuKernels
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>? _crossEntropy;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float, float>? _crossEntropyBackward;

    /// <summary>
    /// Softmax cross-entropy per row: probs = softmax(logits), rowLoss[r] = (1 − ε)·(−log p[label]) + ε·mean(−log p),
    /// as nn.CrossEntropyLoss(label_smoothing: ε). Labels must already be checked to lie in [0, classes).
    /// </summary>
    public void CrossEntropyForward(ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, int rows, int classes, float labelSmoothing)
    {
        if (rows == 0) return;
        Need(rowLoss, rows, nameof(rowLoss)); Need(probs, (long)rows * classes, nameof(probs)); Need(logits, (long)rows * classes, nameof(logits)); Need(labels, rows, nameof(labels));
        _crossEntropy ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>(CrossEntropyKernel);
        Launched();
        _crossEntropy(rows, rowLoss, probs, logits, labels, classes, labelSmoothing);
    }

    /// <summary>dlogits += scale·(probs − target), the target being the (smoothed) one-hot label.</summary>
    public void CrossEntropyBackward(ArrayView<float> dlogits, ArrayView<float> probs, ArrayView<int> labels, int rows, int classes, float scale, float labelSmoothing)
    {
        if (rows == 0) return;
        Need(dlogits, (long)rows * classes, nameof(dlogits)); Need(probs, (long)rows * classes, nameof(probs)); Need(labels, rows, nameof(labels));
        _crossEntropyBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float, float>(CrossEntropyBackwardKernel);
        Launched();
        _crossEntropyBackward(checked(rows * classes), dlogits, probs, labels, classes, scale, labelSmoothing);
    }

    private static void CrossEntropyKernel(Index1D r, ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, int classes, float eps)
    {
        long row = (long)r.X * classes;
        float max = float.NegativeInfinity;
        for (int k = 0; k < classes; k++) max = XMath.Max(max, logits[row + k]);
        float sum = 0f;
        for (int k = 0; k < classes; k++) sum += XMath.Exp(logits[row + k] - max);
        float logSum = XMath.Log(sum) + max, meanNegLogP = 0f;
        for (int k = 0; k < classes; k++)
        {
            float lp = logits[row + k] - logSum;
            probs[row + k] = XMath.Exp(lp);
            meanNegLogP -= lp;
        }
        rowLoss[r] = (1f - eps) * (logSum - logits[row + labels[r]]) + eps * meanNegLogP / classes;
    }

    private static void CrossEntropyBackwardKernel(Index1D i, ArrayView<float> dlogits, ArrayView<float> probs, ArrayView<int> labels, int classes, float scale, float eps)
    {
        int r = i / classes, k = i % classes;
        float off = eps / classes, on = 1f - eps + off;
        dlogits[i] += scale * (probs[i] - (k == labels[r] ? on : off));
    }
}
