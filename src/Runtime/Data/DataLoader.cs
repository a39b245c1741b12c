namespace Compiled.Nets.Data;

/// <summary>Per-batch augmentation applied to a copy of each sample as it is batched ([C, H, W] layout).</summary>
public sealed class Augmentation
{
    /// <summary>Zero padding for random crops (0 = no crop).</summary>
    public int CropPadding { get; init; }
    /// <summary>Whether to flip horizontally with probability 1/2.</summary>
    public bool HorizontalFlip { get; init; }

    internal void Apply(Span<float> sample, int[] shape, Span<float> scratch, Rng rng)
    {
        int c = shape[0], h = shape[1], w = shape[2];
        if (CropPadding > 0)
        {
            int dy = rng.NextInt(2 * CropPadding + 1) - CropPadding, dx = rng.NextInt(2 * CropPadding + 1) - CropPadding;
            sample.CopyTo(scratch);
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                    {
                        int sy = y + dy, sx = x + dx;
                        sample[(ch * h + y) * w + x] = (uint)sy < (uint)h && (uint)sx < (uint)w ? scratch[(ch * h + sy) * w + sx] : 0f;
                    }
        }
        if (HorizontalFlip && rng.NextInt(2) == 1)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++) sample.Slice((ch * h + y) * w, w).Reverse();
    }
}

/// <summary>One batch: inputs [Count, ..SampleShape], labels [Count] and, for a regression dataset, targets
/// [Count, ..TargetShape], in reused buffers.</summary>
public sealed class Batch
{
    internal Batch(int capacity, int sampleSize, int targetSize)
    {
        Inputs = new float[capacity * sampleSize]; Labels = new int[capacity]; SampleSize = sampleSize;
        Targets = new float[capacity * targetSize]; TargetSize = targetSize;
    }
    /// <summary>Input buffer (only the first Count × SampleSize floats are valid).</summary>
    public float[] Inputs { get; }
    /// <summary>Label buffer (first Count valid).</summary>
    public int[] Labels { get; }
    /// <summary>Floats per sample.</summary>
    public int SampleSize { get; }
    /// <summary>Samples in this batch.</summary>
    public int Count { get; internal set; }
    /// <summary>Samples in the global batch this one is a rank's part of (<see cref="DataLoader.ForRank"/>); else <see cref="Count"/>.</summary>
    public int GlobalCount { get; internal set; }
    /// <summary>The valid inputs.</summary>
    public ReadOnlySpan<float> InputSpan => Inputs.AsSpan(0, Count * SampleSize);
    /// <summary>The valid labels.</summary>
    public ReadOnlySpan<int> LabelSpan => Labels.AsSpan(0, Count);
    /// <summary>Regression target buffer (empty for a labelled dataset).</summary>
    public float[] Targets { get; }
    /// <summary>Floats of target per sample (0 for a labelled dataset).</summary>
    public int TargetSize { get; }
    /// <summary>The valid targets.</summary>
    public ReadOnlySpan<float> TargetSpan => Targets.AsSpan(0, Count * TargetSize);
}

/// <summary>
/// Batches a dataset: seeded shuffling (the order of epoch e is a function of (seed, e), so a resumed run sees the
/// same batches), drop-last, optional augmentation, and background prefetch of the next batch into a second buffer.
/// </summary>
public sealed class DataLoader
{
    private readonly Dataset _data;
    private readonly Batch[] _buffers;
    private int _rank, _ranks = 1;

    /// <summary>Creates a loader.</summary>
    public DataLoader(Dataset data, int batchSize, bool shuffle = true, bool dropLast = false, ulong seed = 0, Augmentation? augmentation = null, bool prefetch = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        _data = data; BatchSize = batchSize; Shuffle = shuffle; DropLast = dropLast; Seed = seed; Augmentation = augmentation; Prefetch = prefetch;
        _buffers = [new Batch(batchSize, data.SampleSize, data.TargetSize), new Batch(batchSize, data.SampleSize, data.TargetSize)];
    }

    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }
    /// <summary>Whether an incomplete last batch is dropped.</summary>
    public bool DropLast { get; }
    /// <summary>Seed of the shuffling and augmentation.</summary>
    public ulong Seed { get; }
    /// <summary>Augmentation, if any.</summary>
    public Augmentation? Augmentation { get; }
    /// <summary>Whether the next batch is assembled on a background thread.</summary>
    public bool Prefetch { get; }
    /// <summary>The dataset.</summary>
    public Dataset Dataset => _data;
    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch => DropLast ? _data.Count / BatchSize : (_data.Count + BatchSize - 1) / BatchSize;

    /// <summary>This loader's rank in a data-parallel job (0 when it is not a rank's part).</summary>
    public int Rank => _rank;
    /// <summary>The ranks that share each global batch (1: the whole batch is this loader's).</summary>
    public int Ranks => _ranks;

    /// <summary>
    /// The loader of one rank of a data-parallel job: the same epochs and global batches of <see cref="BatchSize"/>,
    /// of which this rank gets its contiguous part (<see cref="RankRange"/>), so the ranks' parts together are exactly
    /// what one process would train on. Augmentation draws from a stream of the rank's own.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="rank"/> is not in [0, <paramref name="ranks"/>).</exception>
    public DataLoader ForRank(int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ranks);
        if ((uint)rank >= (uint)ranks) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"A rank of a job of {ranks} is in [0, {ranks}).");
        return new DataLoader(_data, BatchSize, Shuffle, DropLast, Seed, Augmentation, Prefetch) { _rank = rank, _ranks = ranks };
    }

    /// <summary>A rank's part of a global batch of <paramref name="count"/> samples: a contiguous range; the ranks' parts
    /// in rank order cover it exactly, their sizes differing by at most one.</summary>
    public static (int Start, int Count) RankRange(int count, int rank, int ranks)
    {
        int start = (int)((long)count * rank / ranks), end = (int)((long)count * (rank + 1) / ranks);
        return (start, end - start);
    }

    /// <summary>The sample order of an epoch.</summary>
    public int[] Order(int epoch) => SampleOrder(_data.Count, Shuffle, Seed, epoch);

    /// <summary>The order of <paramref name="count"/> samples in an epoch: a function of (seed, epoch) alone.</summary>
    internal static int[] SampleOrder(int count, bool shuffle, ulong seed, int epoch)
    {
        var order = Enumerable.Range(0, count).ToArray();
        if (shuffle) new Rng(seed * 1_000_003UL + (ulong)epoch).Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>
    /// The batches of an epoch. Each yielded <see cref="Batch"/> is valid until the next one is requested (two
    /// buffers alternate, the other being filled in the background).
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        var order = Order(epoch);
        var rng = new Rng(Seed ^ (0xA5A5A5A5UL + (ulong)epoch * 7919UL) ^ ((ulong)_rank * 0x9E3779B97F4A7C15UL));
        var scratch = new float[_data.SampleSize];
        int batches = BatchesPerEpoch;
        Task? pending = null;
        try
        {
            for (int b = 0; b < batches; b++)
            {
                var current = _buffers[b % 2];
                if (pending is not null) pending.Wait();
                else Fill(current, order, b, rng, scratch);
                pending = null;
                if (Prefetch && b + 1 < batches)
                {
                    // Fills run one at a time, in batch order, so the augmentation stream stays deterministic.
                    var next = _buffers[(b + 1) % 2]; int nb = b + 1;
                    pending = Task.Run(() => Fill(next, order, nb, rng, scratch));
                }
                yield return current;
            }
        }
        finally
        {
            // Also when the caller stops early (a break, First(), an exception): no fill outlives the epoch and writes
            // a buffer the next epoch is filling.
            pending?.Wait();
        }
    }

    private void Fill(Batch batch, int[] order, int b, Rng rng, float[] scratch)
    {
        int start = b * BatchSize, count = Math.Min(BatchSize, order.Length - start);
        batch.GlobalCount = count;
        if (_ranks > 1)
        {
            var (first, part) = RankRange(count, _rank, _ranks);
            start += first; count = part;
        }
        batch.Count = count;
        for (int i = 0; i < count; i++)
        {
            int idx = order[start + i];
            var dst = batch.Inputs.AsSpan(i * _data.SampleSize, _data.SampleSize);
            _data.Sample(idx).CopyTo(dst);
            batch.Labels[i] = _data.Labels[idx];
            if (_data.Targets is { } targets) targets.AsSpan(idx * _data.TargetSize, _data.TargetSize).CopyTo(batch.Targets.AsSpan(i * _data.TargetSize));
            Augmentation?.Apply(dst, _data.SampleShape, scratch, rng);
        }
    }
}
