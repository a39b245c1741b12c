namespace Compiled.Nets.Kernels;

// Dims: B batch, C channels (features), S spatial size per channel (H·W; 1 for [B, C]); N rows, F features for LayerNorm.
public static class BatchNormKernels
{
    /// <summary>
    /// Training mode: normalise with the batch statistics over (B, S), save mean/invStd [C] for backward, and update
    /// running statistics: running = (1−momentum)·running + momentum·stat, with the unbiased variance, as PyTorch.
    /// </summary>
    public static void ForwardTraining(Span<float> y, Span<float> saveMean, Span<float> saveInvStd, Span<float> runningMean, Span<float> runningVar,
        ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, int batch, int channels, int spatial, float eps, float momentum)
        => throw new NotImplementedException();

    /// <summary>Evaluation mode: normalise with the running statistics.</summary>
    public static void ForwardInference(Span<float> y, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        ReadOnlySpan<float> runningMean, ReadOnlySpan<float> runningVar, int batch, int channels, int spatial, float eps)
        => throw new NotImplementedException();

    /// <summary>Accumulates dx, dgamma, dbeta (each may be empty to skip) for training-mode batch norm.</summary>
    public static void Backward(Span<float> dx, Span<float> dgamma, Span<float> dbeta, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> saveMean, ReadOnlySpan<float> saveInvStd, ReadOnlySpan<float> gamma, int batch, int channels, int spatial)
        => throw new NotImplementedException();
}

public static class LayerNormKernels
{
    /// <summary>y[N,F] = (x − mean)·rstd·gamma + beta per row; saves mean[N], rstd[N] (empty to skip, for inference).</summary>
    public static void Forward(Span<float> y, Span<float> mean, Span<float> rstd, ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta, int rows, int features, float eps)
        => throw new NotImplementedException();

    /// <summary>Accumulates dx, dgamma, dbeta (each may be empty to skip).</summary>
    public static void Backward(Span<float> dx, Span<float> dgamma, Span<float> dbeta, ReadOnlySpan<float> dy, ReadOnlySpan<float> x,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, ReadOnlySpan<float> gamma, int rows, int features)
        => throw new NotImplementedException();
}
