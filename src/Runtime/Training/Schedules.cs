namespace Compiled.Nets.Training;

/// <summary>A learning-rate schedule: the rate to use for step <c>step</c> (0-based, before the step is taken).</summary>
public abstract class LearningRateSchedule
{
    /// <summary>Checks a rate a schedule is given.</summary>
    private protected static float Rate(float lr, string name) =>
        float.IsFinite(lr) && lr >= 0 ? lr : throw new ArgumentOutOfRangeException(name, lr, $"The learning rate {name} must be finite and not negative.");

    /// <summary>Checks a number of steps a schedule is given.</summary>
    private protected static long Steps(long steps, long least, string name) =>
        steps >= least ? steps : throw new ArgumentOutOfRangeException(name, steps, $"{name} must be at least {least}.");

    /// <summary>The learning rate at <paramref name="step"/>.</summary>
    public abstract float At(long step);

    /// <summary>Sets the optimizer's learning rate for its next step.</summary>
    public void Apply(Optimizer optimizer) => optimizer.LearningRate = At(optimizer.StepCount);
}

/// <summary>A constant rate.</summary>
public sealed class ConstantSchedule(float lr) : LearningRateSchedule
{
    private readonly float _lr = Rate(lr, nameof(lr));

    /// <inheritdoc/>
    public override float At(long step) => _lr;
}

/// <summary><c>StepLR</c>: lr·gamma^(step / stepSize).</summary>
public sealed class StepSchedule(float lr, long stepSize, float gamma) : LearningRateSchedule
{
    private readonly float _lr = Rate(lr, nameof(lr)), _gamma = float.IsFinite(gamma) && gamma >= 0 ? gamma
        : throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "gamma must be finite and not negative.");
    private readonly long _stepSize = Steps(stepSize, 1, nameof(stepSize));

    /// <inheritdoc/>
    public override float At(long step) => _lr * MathF.Pow(_gamma, step / _stepSize);
}

/// <summary>Cosine annealing from lr to minLr over totalSteps, after an optional linear warm-up.</summary>
public sealed class CosineSchedule(float lr, long totalSteps, float minLr = 0, long warmupSteps = 0) : LearningRateSchedule
{
    private readonly float lr = Rate(lr, nameof(lr)), minLr = Rate(minLr, nameof(minLr));
    private readonly long totalSteps = Steps(totalSteps, 0, nameof(totalSteps)), warmupSteps = Steps(warmupSteps, 0, nameof(warmupSteps));

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
    private readonly float peakLr = Rate(peakLr, nameof(peakLr));
    private readonly long warmupSteps = Steps(warmupSteps, 0, nameof(warmupSteps)), totalSteps = Steps(totalSteps, 0, nameof(totalSteps));

    /// <inheritdoc/>
    public override float At(long step)
    {
        if (step < warmupSteps) return peakLr * step / Math.Max(1, warmupSteps);
        return peakLr * Math.Max(0f, (float)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));
    }
}
