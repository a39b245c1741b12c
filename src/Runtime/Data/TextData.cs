namespace Compiled.Nets.Data;

/// <summary>
/// Tokenised, labelled texts for a sequence classifier: each sample is its token ids as the tokenizer produced them
/// (e.g. [CLS] … [SEP], already truncated to the model's maximum length). Padding happens per batch in
/// <see cref="TextDataLoader"/>.
/// </summary>
public sealed class TextDataset
{
    /// <summary>Creates a dataset.</summary>
    /// <exception cref="ArgumentException">When counts differ, a sample is empty, or a label is outside [0, classes).</exception>
    public TextDataset(IReadOnlyList<int[]> ids, int[] labels, int classes, IReadOnlyList<string>? classNames = null)
    {
        if (ids.Count != labels.Length) throw new ArgumentException($"{ids.Count} token sequences but {labels.Length} labels.");
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes) throw new ArgumentException($"Label {labels[i]} of sample {i} is outside [0, {classes}).");
            if (ids[i].Length == 0) throw new ArgumentException($"Sample {i} has no tokens.");
        }
        if (classNames is not null && classNames.Count != classes) throw new ArgumentException($"{classNames.Count} class names for {classes} classes.");
        Ids = ids; Labels = labels; Classes = classes; ClassNames = classNames;
    }

    /// <summary>Token ids per sample.</summary>
    public IReadOnlyList<int[]> Ids { get; }
    /// <summary>Class per sample.</summary>
    public int[] Labels { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>Class names, if known.</summary>
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>Number of samples.</summary>
    public int Count => Labels.Length;
    /// <summary>The longest sample, in tokens.</summary>
    public int MaxLength => Ids.Count == 0 ? 0 : Ids.Max(x => x.Length);

    /// <summary>The samples at <paramref name="indices"/>, in that order.</summary>
    public TextDataset Subset(IReadOnlyList<int> indices) =>
        new(indices.Select(i => Ids[i]).ToArray(), indices.Select(i => Labels[i]).ToArray(), Classes, ClassNames);

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public TextDataset Take(int count) => Subset(Enumerable.Range(0, Math.Min(count, Count)).ToArray());

    /// <summary>Splits into train/validation with a seeded shuffle; stratified keeps each class's proportion.</summary>
    public (TextDataset Train, TextDataset Validation) Split(double validationFraction, ulong seed, bool stratified = true)
    {
        var (train, val) = Dataset.SplitIndices(Labels, validationFraction, seed, stratified);
        return (Subset(train), Subset(val));
    }
}

/// <summary>One batch of token ids padded to its longest sample, with the HF attention mask, in reused buffers.</summary>
public sealed class TextBatch
{
    internal TextBatch(int capacity, int maxLength)
    {
        Ids = new int[capacity * maxLength]; Mask = new int[capacity * maxLength]; Labels = new int[capacity];
    }
    /// <summary>[Count, Sequence] ids (valid prefix).</summary>
    public int[] Ids { get; }
    /// <summary>[Count, Sequence] mask: 1 for a token, 0 for padding.</summary>
    public int[] Mask { get; }
    /// <summary>Labels (first Count valid).</summary>
    public int[] Labels { get; }
    /// <summary>Samples in the global batch this one is a rank's part of (<see cref="TextDataLoader.ForRank"/>); else <see cref="Count"/>.</summary>
    public int GlobalCount { get; internal set; }
    /// <summary>Samples in this batch.</summary>
    public int Count { get; internal set; }
    /// <summary>Padded length of this batch (its longest sample).</summary>
    public int Sequence { get; internal set; }
    /// <summary>The valid ids.</summary>
    public ReadOnlySpan<int> IdSpan => Ids.AsSpan(0, Count * Sequence);
    /// <summary>The valid mask.</summary>
    public ReadOnlySpan<int> MaskSpan => Mask.AsSpan(0, Count * Sequence);
    /// <summary>The valid labels.</summary>
    public ReadOnlySpan<int> LabelSpan => Labels.AsSpan(0, Count);
}

/// <summary>
/// Batches a <see cref="TextDataset"/>: seeded shuffling (epoch e's order is a function of (seed, e), as
/// <see cref="DataLoader"/>), each batch right-padded with <see cref="PadId"/> only to its own longest sample
/// (dynamic padding: short batches run a short T through the same compiled code).
/// </summary>
public sealed class TextDataLoader
{
    private readonly TextBatch _batch;
    private int _rank, _ranks = 1;

    /// <summary>Creates a loader.</summary>
    /// <exception cref="ArgumentException">When a sample is longer than <paramref name="maxLength"/>.</exception>
    public TextDataLoader(TextDataset data, int batchSize, int maxLength, bool shuffle = true, ulong seed = 0, int padId = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        for (int i = 0; i < data.Count; i++)
            if (data.Ids[i].Length > maxLength) throw new ArgumentException($"Sample {i} has {data.Ids[i].Length} tokens, more than the maximum length {maxLength}; truncate when tokenizing.");
        Dataset = data; BatchSize = batchSize; MaxLength = maxLength; Shuffle = shuffle; Seed = seed; PadId = padId;
        _batch = new TextBatch(batchSize, maxLength);
    }

    /// <summary>The dataset.</summary>
    public TextDataset Dataset { get; }
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>The longest padded length a batch can have.</summary>
    public int MaxLength { get; }
    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }
    /// <summary>Seed of the shuffling.</summary>
    public ulong Seed { get; }
    /// <summary>The id written into padding positions ([PAD] = 0 in BERT vocabularies).</summary>
    public int PadId { get; }
    /// <summary>Batches per epoch (the last may be smaller).</summary>
    public int BatchesPerEpoch => (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>This loader's rank in a data-parallel job (0 when it is not a rank's part).</summary>
    public int Rank => _rank;
    /// <summary>The ranks that share each global batch (1: the whole batch is this loader's).</summary>
    public int Ranks => _ranks;

    /// <summary>The loader of one rank of a data-parallel job: the same epochs and global batches, of which this rank
    /// gets its contiguous part (<see cref="DataLoader.RankRange"/>), padded to its own longest sample.</summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="rank"/> is not in [0, <paramref name="ranks"/>).</exception>
    public TextDataLoader ForRank(int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ranks);
        if ((uint)rank >= (uint)ranks) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"A rank of a job of {ranks} is in [0, {ranks}).");
        return new TextDataLoader(Dataset, BatchSize, MaxLength, Shuffle, Seed, PadId) { _rank = rank, _ranks = ranks };
    }

    /// <summary>The batches of an epoch; each yielded batch is valid until the next is requested.</summary>
    public IEnumerable<TextBatch> Epoch(int epoch)
    {
        var order = Enumerable.Range(0, Dataset.Count).ToArray();
        if (Shuffle) new Rng(Seed * 1_000_003UL + (ulong)epoch).Shuffle(order.AsSpan());
        for (int globalStart = 0; globalStart < order.Length; globalStart += BatchSize)
        {
            int global = Math.Min(BatchSize, order.Length - globalStart);
            var (first, count) = _ranks > 1 ? DataLoader.RankRange(global, _rank, _ranks) : (0, global);
            int start = globalStart + first, seq = 0;
            _batch.GlobalCount = global;
            for (int i = 0; i < count; i++) seq = Math.Max(seq, Dataset.Ids[order[start + i]].Length);
            _batch.Count = count; _batch.Sequence = seq;
            for (int i = 0; i < count; i++)
            {
                int idx = order[start + i];
                var src = Dataset.Ids[idx];
                var ids = _batch.Ids.AsSpan(i * seq, seq); var mask = _batch.Mask.AsSpan(i * seq, seq);
                src.CopyTo(ids); ids[src.Length..].Fill(PadId);
                mask[..src.Length].Fill(1); mask[src.Length..].Clear();
                _batch.Labels[i] = Dataset.Labels[idx];
            }
            yield return _batch;
        }
    }
}
