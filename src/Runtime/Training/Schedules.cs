namespace Compiled.Nets.Training;

/// <summary>A learning-rate schedule: the rate to use for step <c>step</c> (0-based, before the step is taken).</summary>
public abstract class LearningRateSchedule
{
    /// <summary>The learning rate at <paramref name="step"/>.</summary>
    public abstract float At(long step);

    /// <summary>Sets the optimizer's learning rate for its next step.</summary>
    public void Apply(Optimizer optimizer) => optimizer.LearningRate = At(optimizer.StepCount);
}

/// <summary>A constant rate.</summary>
public sealed class ConstantSchedule(float lr) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override float At(long step) => lr;
}

/// <summary><c>StepLR</c>: lr·gamma^(step / stepSize).</summary>
public sealed class StepSchedule(float lr, long stepSize, float gamma) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override float At(long step) => lr * MathF.Pow(gamma, step / stepSize);
}

/// <summary>Cosine annealing from lr to minLr over totalSteps, after an optional linear warm-up.</summary>
public sealed class CosineSchedule(float lr, long totalSteps, float minLr = 0, long warmupSteps = 0) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override float At(long step)
    {
        if (step < warmupSteps) return lr * (step + 1) / warmupSteps;
        double t = Math.Min(1.0, (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps));
        return (float)(minLr + 0.5 * (lr - minLr) * (1 + Math.Cos(Math.PI * t)));
    }
}

/// <summary>HF's <c>get_linear_schedule_with_warmup</c>: 0 → peak over warmupSteps, then linearly to 0 at totalSteps.</summary>
public sealed class LinearWarmupDecaySchedule(float peakLr, long warmupSteps, long totalSteps) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override float At(long step)
    {
        if (step < warmupSteps) return peakLr * step / Math.Max(1, warmupSteps);
        return peakLr * Math.Max(0f, (float)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));
    }
}
