namespace Compiled.Nets.Training;

/// <summary>
/// A data-parallel job as <see cref="Trainer"/> uses it: every rank trains on its part of each global batch and the
/// gradients are averaged before each step, as PyTorch's DistributedDataParallel does. Compiled.Nets.Distributed
/// implements it over MPI; the runtime itself carries no MPI.
/// </summary>
public interface IDataParallel
{
    /// <summary>This process's rank, 0 … <see cref="Ranks"/> − 1 (rank 0 writes checkpoints and reports).</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Ranks { get; }

    /// <summary>Gives every rank rank 0's parameters and buffers.</summary>
    void BroadcastParameters();

    /// <summary>Turns this rank's gradient (the mean over its <paramref name="localCount"/> samples) into the mean
    /// gradient over the <paramref name="globalCount"/> samples of the global batch, on every rank.</summary>
    void AverageGradients(int localCount, int globalCount);

    /// <summary>Sums each value over the ranks, in place (metrics: loss sums, counts).</summary>
    void Sum(Span<double> values);
}
