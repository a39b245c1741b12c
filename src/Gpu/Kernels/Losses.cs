using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;

namespace Compiled.Nets.Gpu;

/// <summary>Scalars of a class-weighted loss: classes, NLL or cross-entropy, label smoothing, the ignored label, the scale 1/W.</summary>
internal struct ClassWeighting
{
    public int Classes, Nll, Ignore;
    public float Smoothing, Scale;
}

/// <summary>The loss a device twin trains with: its network's loss attribute.</summary>
public enum DeviceLoss
{
    /// <summary><c>[CrossEntropyLoss]</c> on class indices (its parameter: label smoothing).</summary>
    CrossEntropy,
    /// <summary><c>[MSELoss]</c>: the mean of (output − target)².</summary>
    Mse,
    /// <summary><c>[L1Loss]</c>: the mean of |output − target|.</summary>
    L1,
    /// <summary><c>[SmoothL1Loss]</c> (its parameter: β).</summary>
    SmoothL1,
    /// <summary><c>[BCEWithLogitsLoss]</c>: binary cross-entropy on logits, targets in [0, 1].</summary>
    BceWithLogits,
    /// <summary><c>[NLLLoss]</c> on class indices: the output is log-probabilities (a LogSoftmax's).</summary>
    Nll,
    /// <summary><c>[KLDivLoss]</c>: target probabilities against the output's log-probabilities (its parameter: 1 for
    /// BatchMean, dividing by the batch rather than by every element).</summary>
    KlDiv,
    /// <summary><c>[CosineEmbeddingLoss]</c> of two outputs: one float per pair, 1 alike and −1 unlike (its parameter: the margin).</summary>
    CosineEmbedding,
    /// <summary><c>[CustomLoss]</c>: a loss written as a method, its ops part of the twin's passes; the loss is the mean of
    /// the value it ends in, over float targets shaped like the output.</summary>
    Method,
    /// <summary>No loss (a <c>[Network]</c> without a loss attribute): the twin runs inference only.</summary>
    None,
}

public sealed partial class GpuKernels
{
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>? _floatLoss;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float>? _floatLossBackward;

    /// <summary>rowLoss[r] = Σ over the row's <paramref name="cols"/> elements of a float-target loss (MSE, L1, smooth L1
    /// with β = <paramref name="parameter"/>, BCE on logits in its stable form, KL divergence t·(log t − x) where t &gt; 0),
    /// as the CPU kernels; one group per row.</summary>
    public void FloatLossForward(DeviceLoss loss, ArrayView<float> rowLoss, ArrayView<float> pred, ArrayView<float> targets, int rows, int cols, float parameter)
    {
        if (rows == 0) return;
        if (loss is DeviceLoss.CrossEntropy or DeviceLoss.Nll) throw new ArgumentException($"{loss} takes class indices: call {loss}Forward.", nameof(loss));
        Need(rowLoss, rows, nameof(rowLoss)); Need(pred, (long)rows * cols, nameof(pred)); Need(targets, (long)rows * cols, nameof(targets));
        _floatLoss ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(FloatLossKernel);
        Launched();
        _floatLoss(RowConfig(rows, cols), rowLoss, pred, targets, cols, (int)loss, parameter);
    }

    /// <summary>dpred += scale·∂loss/∂pred elementwise (2d, sign d, d/β or sign d, σ(x) − t, −t); scale is dLoss/n.</summary>
    public void FloatLossBackward(DeviceLoss loss, ArrayView<float> dpred, ArrayView<float> pred, ArrayView<float> targets, long n, float scale, float parameter)
    {
        if (n == 0) return;
        if (loss is DeviceLoss.CrossEntropy or DeviceLoss.Nll) throw new ArgumentException($"{loss} takes class indices: call {loss}Backward.", nameof(loss));
        Need(dpred, n, nameof(dpred)); Need(pred, n, nameof(pred)); Need(targets, n, nameof(targets));
        _floatLossBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float>(FloatLossBackwardKernel);
        Launched();
        _floatLossBackward(checked((int)n), dpred, pred, targets, (int)loss, scale, parameter);
    }

    private static void FloatLossKernel(ArrayView<float> rowLoss, ArrayView<float> pred, ArrayView<float> targets, int cols, int loss, float beta)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long row = (long)r * cols;
        float s = 0f;
        for (int k = first; k < cols; k += step)
        {
            float x = pred[row + k], t = targets[row + k], d = x - t, a = XMath.Abs(d);
            s += loss == (int)DeviceLoss.Mse ? d * d
                : loss == (int)DeviceLoss.L1 ? a
                : loss == (int)DeviceLoss.SmoothL1 ? (a < beta ? 0.5f * d * d / beta : a - 0.5f * beta)
                : loss == (int)DeviceLoss.KlDiv ? (t > 0f ? t * (XMath.Log(t) - x) : 0f)
                : XMath.Max(x, 0f) - x * t + XMath.Log(1f + XMath.Exp(-XMath.Abs(x)));
        }
        s = GroupSum(s);
        if (first == 0) rowLoss[r] = s;
    }

    private static void FloatLossBackwardKernel(Index1D i, ArrayView<float> dpred, ArrayView<float> pred, ArrayView<float> targets, int loss, float scale, float beta)
    {
        float x = pred[i], d = x - targets[i];
        float sign = d > 0f ? 1f : d < 0f ? -1f : 0f;
        dpred[i] += scale * (loss == (int)DeviceLoss.Mse ? 2f * d
            : loss == (int)DeviceLoss.L1 ? sign
            : loss == (int)DeviceLoss.SmoothL1 ? (XMath.Abs(d) < beta ? d / beta : sign)
            : loss == (int)DeviceLoss.KlDiv ? -targets[i]
            : 1f / (1f + XMath.Exp(-x)) - targets[i]);
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _cosineEmbedding;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float>? _cosineEmbeddingBackward;

    /// <summary>rowLoss[r] = 1 − cos(a_r, b_r) where y = 1, max(0, cos − margin) where y = −1, else 0 (nn.CosineEmbeddingLoss
    /// per pair; the norms get ε = 1e-12 as on the CPU); one group per pair.</summary>
    public void CosineEmbeddingForward(ArrayView<float> rowLoss, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int rows, int dim, float margin)
    {
        if (rows == 0) return;
        Need(rowLoss, rows, nameof(rowLoss)); Need(a, (long)rows * dim, nameof(a)); Need(b, (long)rows * dim, nameof(b)); Need(y, rows, nameof(y));
        _cosineEmbedding ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>(CosineEmbeddingKernel);
        Launched(); _cosineEmbedding(RowConfig(rows, dim), rowLoss, a, b, y, dim, margin);
    }

    /// <summary>da, db += scale·∂loss/∂a, ∂loss/∂b per pair: ∂cos/∂a = b/√(|a|²|b|²) − cos·a/|a|².</summary>
    public void CosineEmbeddingBackward(ArrayView<float> da, ArrayView<float> db, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int rows, int dim, float margin, float scale)
    {
        if (rows == 0) return;
        Need(da, (long)rows * dim, nameof(da)); Need(db, (long)rows * dim, nameof(db)); Need(a, (long)rows * dim, nameof(a)); Need(b, (long)rows * dim, nameof(b));
        _cosineEmbeddingBackward ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, float>(CosineEmbeddingBackwardKernel);
        Launched(); _cosineEmbeddingBackward(RowConfig(rows, dim), da, db, a, b, y, dim, margin, scale);
    }

    /// <summary>Pair Grid.IdxX's a·b, |a|² + ε and |b|² + ε, its threads taking every Group.DimX-th value.</summary>
    private static void CosineParts(ArrayView<float> a, ArrayView<float> b, long row, int dim, out float dot, out float a2, out float b2)
    {
        dot = 0f; a2 = 0f; b2 = 0f;
        for (int i = Group.IdxX; i < dim; i += Group.DimX) { float x = a[row + i], z = b[row + i]; dot += x * z; a2 += x * x; b2 += z * z; }
        dot = GroupSum(dot); a2 = GroupSum(a2) + 1e-12f; b2 = GroupSum(b2) + 1e-12f;
    }

    private static void CosineEmbeddingKernel(ArrayView<float> rowLoss, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int dim, float margin)
    {
        int r = Grid.IdxX;
        CosineParts(a, b, (long)r * dim, dim, out float dot, out float a2, out float b2);
        float cos = dot / XMath.Sqrt(a2 * b2), label = y[r];
        if (Group.IdxX == 0) rowLoss[r] = label == 1f ? 1f - cos : label == -1f ? XMath.Max(0f, cos - margin) : 0f;
    }

    private static void CosineEmbeddingBackwardKernel(ArrayView<float> da, ArrayView<float> db, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y, int dim, float margin, float scale)
    {
        int r = Grid.IdxX;
        long row = (long)r * dim;
        CosineParts(a, b, row, dim, out float dot, out float a2, out float b2);
        float inv = 1f / XMath.Sqrt(a2 * b2), cos = dot * inv, label = y[r];
        float dcos = label == 1f ? -1f : label == -1f && cos - margin > 0f ? 1f : 0f;
        if (dcos == 0f) return; // the whole group: the pair is one label's
        float g = dcos * scale;
        for (int i = Group.IdxX; i < dim; i += Group.DimX)
        {
            float x = a[row + i], z = b[row + i];
            da[row + i] += g * (z * inv - cos * x / a2);
            db[row + i] += g * (x * inv - cos * z / b2);
        }
    }

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>? _crossEntropy;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float, float>? _crossEntropyBackward;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>? _nll;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, int, float>? _nllBackward;

    /// <summary>rowLoss[r] = −logProbs[r, labels[r]] (nn.NLLLoss per row; labels already checked to lie in [0, classes)).</summary>
    public void NllForward(ArrayView<float> rowLoss, ArrayView<float> logProbs, ArrayView<int> labels, int rows, int classes)
    {
        if (rows == 0) return;
        Need(rowLoss, rows, nameof(rowLoss)); Need(logProbs, (long)rows * classes, nameof(logProbs)); Need(labels, rows, nameof(labels));
        _nll ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<int>, int>(NllKernel);
        Launched(); _nll(rows, rowLoss, logProbs, labels, classes);
    }

    /// <summary>dlogProbs[r, labels[r]] −= scale, one thread per row.</summary>
    public void NllBackward(ArrayView<float> dlogProbs, ArrayView<int> labels, int rows, int classes, float scale)
    {
        if (rows == 0) return;
        Need(dlogProbs, (long)rows * classes, nameof(dlogProbs)); Need(labels, rows, nameof(labels));
        _nllBackward ??= Accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, float>(NllBackwardKernel);
        Launched(); _nllBackward(rows, dlogProbs, labels, classes, scale);
    }

    private static void NllKernel(Index1D r, ArrayView<float> rowLoss, ArrayView<float> logProbs, ArrayView<int> labels, int classes) =>
        rowLoss[r] = -logProbs[(long)r.X * classes + labels[r]];

    private static void NllBackwardKernel(Index1D r, ArrayView<float> dlogProbs, ArrayView<int> labels, int classes, float scale) =>
        dlogProbs[(long)r.X * classes + labels[r]] -= scale;

    /// <summary>
    /// Softmax cross-entropy per row: probs = softmax(logits), rowLoss[r] = (1 − ε)·(−log p[label]) + ε·mean(−log p),
    /// as nn.CrossEntropyLoss(label_smoothing: ε). Labels must already be checked to lie in [0, classes).
    /// </summary>
    public void CrossEntropyForward(ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, int rows, int classes, float labelSmoothing)
    {
        if (rows == 0) return;
        Need(rowLoss, rows, nameof(rowLoss)); Need(probs, (long)rows * classes, nameof(probs)); Need(logits, (long)rows * classes, nameof(logits)); Need(labels, rows, nameof(labels));
        _crossEntropy ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, int, float>(CrossEntropyKernel);
        Launched();
        _crossEntropy(RowConfig(rows, classes), rowLoss, probs, logits, labels, classes, labelSmoothing);
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

    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ClassWeighting>? _weightedLoss;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ClassWeighting>? _weightedLossBackward;

    /// <summary>
    /// Cross-entropy (or, with <paramref name="nll"/>, NLL on log-probabilities) per row with class weights and an
    /// ignored label, as nn.CrossEntropyLoss(weight, ignore_index, label_smoothing): rowLoss[r] = (1 − ε)·w[y]·nll +
    /// ε/K·Σₖ w[k]·(−log pₖ), 0 for a row whose label is <paramref name="ignoreIndex"/>; the caller divides the sum by
    /// W = Σ w[y] over the rows kept. probs gets the softmax (cross-entropy). Labels other than the ignored one must
    /// already lie in [0, classes).
    /// </summary>
    public void WeightedClassLossForward(bool nll, ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> weights,
        int rows, int classes, float labelSmoothing, int ignoreIndex)
    {
        if (rows == 0) return;
        Need(rowLoss, rows, nameof(rowLoss)); Need(logits, (long)rows * classes, nameof(logits)); Need(labels, rows, nameof(labels)); Need(weights, classes, nameof(weights));
        if (!nll) Need(probs, (long)rows * classes, nameof(probs));
        _weightedLoss ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ClassWeighting>(WeightedClassLossKernel);
        Launched();
        _weightedLoss(RowConfig(rows, classes), rowLoss, nll ? logits : probs, logits, labels, weights, new ClassWeighting { Classes = classes, Nll = nll ? 1 : 0, Smoothing = labelSmoothing, Ignore = ignoreIndex });
    }

    /// <summary>The gradient of <see cref="WeightedClassLossForward"/>'s mean, <paramref name="scale"/> = 1/W: for the rows
    /// kept, dlogits += scale·((1−ε)·w[y]·(p − onehot) + ε/K·(Σw·p − w)); for NLL dlogProbs[y] −= scale·w[y].</summary>
    public void WeightedClassLossBackward(bool nll, ArrayView<float> dlogits, ArrayView<float> probs, ArrayView<int> labels, ArrayView<float> weights,
        int rows, int classes, float scale, float labelSmoothing, int ignoreIndex)
    {
        if (rows == 0) return;
        Need(dlogits, (long)rows * classes, nameof(dlogits)); Need(labels, rows, nameof(labels)); Need(weights, classes, nameof(weights));
        if (!nll) Need(probs, (long)rows * classes, nameof(probs));
        _weightedLossBackward ??= Accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<int>, ArrayView<float>, ClassWeighting>(WeightedClassLossBackwardKernel);
        Launched();
        _weightedLossBackward(RowConfig(rows, classes), dlogits, nll ? dlogits : probs, labels, weights, new ClassWeighting { Classes = classes, Nll = nll ? 1 : 0, Smoothing = labelSmoothing, Ignore = ignoreIndex, Scale = scale });
    }

    /// <summary>Row Grid.IdxX per group, its threads taking every Group.DimX-th class.</summary>
    private static void WeightedClassLossKernel(ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, ArrayView<float> weights, ClassWeighting a)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long row = (long)r * a.Classes;
        int label = labels[r];
        if (a.Nll != 0)
        {
            if (first == 0) rowLoss[r] = label == a.Ignore ? 0f : -weights[label] * logits[row + label];
            return;
        }
        float max = float.NegativeInfinity;
        for (int k = first; k < a.Classes; k += step) max = XMath.Max(max, logits[row + k]);
        max = GroupMax(max);
        float sum = 0f;
        for (int k = first; k < a.Classes; k += step) sum += XMath.Exp(logits[row + k] - max);
        float logSum = XMath.Log(GroupSum(sum)) + max, smooth = 0f;
        for (int k = first; k < a.Classes; k += step)
        {
            probs[row + k] = XMath.Exp(logits[row + k] - logSum);
            smooth += weights[k] * (logSum - logits[row + k]);
        }
        smooth = GroupSum(smooth);
        if (first == 0)
            rowLoss[r] = label == a.Ignore ? 0f : (1f - a.Smoothing) * weights[label] * (logSum - logits[row + label]) + a.Smoothing / a.Classes * smooth;
    }

    private static void WeightedClassLossBackwardKernel(ArrayView<float> dlogits, ArrayView<float> probs, ArrayView<int> labels, ArrayView<float> weights, ClassWeighting a)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        int label = labels[r];
        if (label == a.Ignore) return; // the whole group leaves: the row is one label's
        long row = (long)r * a.Classes;
        if (a.Nll != 0)
        {
            if (first == 0) dlogits[row + label] -= a.Scale * weights[label];
            return;
        }
        float weightSum = 0f;
        for (int k = first; k < a.Classes; k += step) weightSum += weights[k];
        weightSum = GroupSum(weightSum);
        float wy = (1f - a.Smoothing) * weights[label];
        for (int k = first; k < a.Classes; k += step)
            dlogits[row + k] += a.Scale * (wy * (probs[row + k] - (k == label ? 1f : 0f)) + a.Smoothing / a.Classes * (weightSum * probs[row + k] - weights[k]));
    }

    private static void CrossEntropyKernel(ArrayView<float> rowLoss, ArrayView<float> probs, ArrayView<float> logits, ArrayView<int> labels, int classes, float eps)
    {
        int r = Grid.IdxX, first = Group.IdxX, step = Group.DimX;
        long row = (long)r * classes;
        float max = float.NegativeInfinity;
        for (int k = first; k < classes; k += step) max = XMath.Max(max, logits[row + k]);
        max = GroupMax(max);
        float sum = 0f;
        for (int k = first; k < classes; k += step) sum += XMath.Exp(logits[row + k] - max);
        float logSum = XMath.Log(GroupSum(sum)) + max, meanNegLogP = 0f;
        for (int k = first; k < classes; k += step)
        {
            float lp = logits[row + k] - logSum;
            probs[row + k] = XMath.Exp(lp);
            meanNegLogP -= lp;
        }
        meanNegLogP = GroupSum(meanNegLogP);
        if (first == 0) rowLoss[r] = (1f - eps) * (logSum - logits[row + labels[r]]) + eps * meanNegLogP / classes;
    }

    private static void CrossEntropyBackwardKernel(Index1D i, ArrayView<float> dlogits, ArrayView<float> probs, ArrayView<int> labels, int classes, float scale, float eps)
    {
        int r = i / classes, k = i % classes;
        float off = eps / classes, on = 1f - eps + off;
        dlogits[i] += scale * (probs[i] - (k == labels[r] ? on : off));
    }
}
