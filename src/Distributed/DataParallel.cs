using System.Numerics.Tensors;
using Compiled.Nets.Data;
using Compiled.Nets.Training;

namespace Compiled.Nets.Distributed;

/// <summary>
/// Data-parallel training as PyTorch's DistributedDataParallel does it: every rank starts from rank 0's weights, trains
/// on its own part of each global batch, and before each optimizer step the gradients are averaged over the ranks
/// (one allreduce per contiguous run of trainable tensors; frozen tensors are skipped). BatchNorm's running statistics
/// stay per rank, as in DDP; rank 0's are the ones its checkpoints hold.
/// </summary>
public sealed class DataParallel : IDataParallel
{
    private readonly DistributedContext _context;
    private readonly ParameterStore _store;

    /// <summary>Binds a network's parameters to the job.</summary>
    public DataParallel(DistributedContext context, ParameterStore store)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(store);
        _context = context; _store = store;
    }

    /// <summary>The job.</summary>
    public DistributedContext Context => _context;

    /// <inheritdoc/>
    public int Rank => _context.Rank;

    /// <inheritdoc/>
    public int Ranks => _context.Size;

    /// <inheritdoc/>
    public void Sum(Span<double> values) => _context.AllReduceSum(values);

    /// <summary>Gives every rank rank 0's parameters and buffers (call once before training, and after loading a checkpoint on rank 0 only).</summary>
    public void BroadcastParameters()
    {
        _context.Broadcast(_store.Values);
        if (_store.BufferValues.Length > 0) _context.Broadcast(_store.BufferValues);
    }

    /// <summary>
    /// Averages the gradients over the ranks: each rank's gradient (the mean over its <paramref name="localCount"/>
    /// samples, as TrainStep leaves it) weighs by its share of the <paramref name="globalCount"/> samples of the global
    /// batch, so the result is the gradient of the mean loss over the global batch, as one process would compute it.
    /// A rank with no samples in a short last batch takes part with zeros.
    /// </summary>
    public void AverageGradients(int localCount, int globalCount)
    {
        if (globalCount <= 0 || localCount < 0 || localCount > globalCount)
            throw new ArgumentOutOfRangeException(nameof(localCount), $"{localCount} samples of a global batch of {globalCount}.");
        var grads = _store.Gradients;
        float share = (float)localCount / globalCount;
        foreach (var (start, length) in TrainableRuns())
        {
            var run = grads.Slice(start, length);
            if (localCount == 0) run.Clear();
            else if (share != 1f) TensorPrimitives.Multiply(run, share, run);
            _context.AllReduceSum(run);
        }
    }

    /// <summary>The mean of a per-rank mean (a loss over <paramref name="localCount"/> samples) over the global batch.</summary>
    public double GlobalMean(double localMean, int localCount) =>
        _context.Sum(localCount == 0 ? 0 : localMean * localCount) / Math.Max(1, _context.Sum(localCount));

    /// <summary>This rank's part of a global batch of <paramref name="globalCount"/> samples: a contiguous range, the
    /// ranks' parts in rank order covering it exactly (sizes differ by at most one).</summary>
    public static (int Start, int Count) Shard(int globalCount, int rank, int ranks) => DataLoader.RankRange(globalCount, rank, ranks);

    /// <summary>The gradient buffer's ranges that hold trainable tensors: adjacent trainable tensors merge (the alignment
    /// gaps between them stay zero), a frozen one ends a range.</summary>
    private List<(int Start, int Length)> TrainableRuns()
    {
        var runs = new List<(int Start, int Length)>();
        int start = -1, end = 0;
        foreach (var p in _store.Parameters.OrderBy(p => p.Offset))
        {
            if (!p.RequiresGrad)
            {
                if (start >= 0) runs.Add((start, end - start));
                start = -1;
                continue;
            }
            if (start < 0) start = p.Offset;
            end = p.Offset + p.Length;
        }
        if (start >= 0) runs.Add((start, end - start));
        return runs;
    }
}
