namespace Compiled.Nets.Data;

/// <summary>One named column of a <see cref="TensorDataset"/>: a tensor per sample of a fixed shape, as floats
/// (inputs, float targets) or as integers (token ids, class indices).</summary>
public sealed class TensorColumn
{
    internal TensorColumn(string name, int[] shape, float[]? floats, int[]? integers)
    {
        Name = name; Shape = shape; Floats = floats; Integers = integers;
        SampleSize = shape.Aggregate(1, (a, b) => a * b);
    }

    /// <summary>The column's name: a network's input name or its targets' name (see <see cref="IMultiNetwork"/>).</summary>
    public string Name { get; }
    /// <summary>Per-sample shape (empty for one value per sample, e.g. a class index).</summary>
    public int[] Shape { get; }
    /// <summary>Values per sample.</summary>
    public int SampleSize { get; }
    /// <summary>The values of a float column, flattened [N, ..Shape] (null for an integer column).</summary>
    public float[]? Floats { get; }
    /// <summary>The values of an integer column, flattened [N, ..Shape] (null for a float column).</summary>
    public int[]? Integers { get; }
    /// <summary>Whether the column holds integers (token ids, class indices).</summary>
    public bool IsInteger => Integers is not null;
}

/// <summary>
/// An in-memory dataset of named columns, one tensor of each per sample (PyTorch's <c>TensorDataset</c>, with names as
/// Keras keys several inputs and targets): the data of a network with several inputs or outputs
/// (<see cref="IMultiNetwork"/>), batched by <see cref="TensorDataLoader"/>.
/// <code>
/// var data = new TensorDataset(n)
///     .Add("image", images, 1, 8, 8)
///     .Add("meta", meta, 4)
///     .Add("digitLabels", labels)
///     .Add("boxTargets", boxes, 4);
/// </code>
/// </summary>
public sealed class TensorDataset
{
    private readonly List<TensorColumn> _columns = new();

    /// <summary>An empty dataset of <paramref name="count"/> samples; columns are added with <c>Add</c>.</summary>
    public TensorDataset(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        Count = count;
    }

    /// <summary>Number of samples.</summary>
    public int Count { get; }
    /// <summary>The columns, in the order they were added.</summary>
    public IReadOnlyList<TensorColumn> Columns => _columns;

    /// <summary>Adds a float column of <see cref="Count"/> samples shaped <paramref name="shape"/> (none: one value each).</summary>
    /// <exception cref="ArgumentException">When the name is taken, a dimension is not positive, the length is not
    /// Count × the shape's size, or a value is not finite.</exception>
    public TensorDataset Add(string name, float[] values, params int[] shape)
    {
        Check(name, values.Length, shape);
        int bad = Array.FindIndex(values, v => !float.IsFinite(v));
        if (bad >= 0) throw new ArgumentException($"Column '{name}': value {bad % Math.Max(1, Size(shape))} of sample {bad / Math.Max(1, Size(shape))} is {values[bad]}; values must be finite.", nameof(values));
        _columns.Add(new TensorColumn(name, shape.ToArray(), values, null));
        return this;
    }

    /// <summary>Adds an integer column (token ids, class indices) of <see cref="Count"/> samples shaped <paramref name="shape"/>.</summary>
    /// <exception cref="ArgumentException">When the name is taken, a dimension is not positive or the length is not
    /// Count × the shape's size. (The network checks each value's range when it reads it.)</exception>
    public TensorDataset Add(string name, int[] values, params int[] shape)
    {
        Check(name, values.Length, shape);
        _columns.Add(new TensorColumn(name, shape.ToArray(), null, values));
        return this;
    }

    /// <summary>The column named <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">When there is none (the message lists the columns).</exception>
    public TensorColumn this[string name] => _columns.Find(c => c.Name == name)
        ?? throw new KeyNotFoundException($"The dataset has no column '{name}'; it has {Names(_columns)}.");

    internal static string Names(IEnumerable<TensorColumn> columns)
    {
        var names = columns.Select(c => "'" + c.Name + "'").ToList();
        return names.Count == 0 ? "none" : string.Join(", ", names);
    }

    private static int Size(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    private void Check(string name, int length, int[] shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (_columns.Exists(c => c.Name == name)) throw new ArgumentException($"The dataset already has a column '{name}'.", nameof(name));
        if (Array.Exists(shape, d => d <= 0)) throw new ArgumentException($"Column '{name}': every dimension must be positive, got [{string.Join(", ", shape)}].", nameof(shape));
        long expected = (long)Count * shape.Aggregate(1L, (a, b) => a * b);
        if (length != expected)
            throw new ArgumentException($"Column '{name}': {Count} samples shaped [{string.Join(", ", shape)}] need {expected} values, got {length}.", nameof(shape));
    }

    /// <summary>The samples at <paramref name="indices"/>, every column copied.</summary>
    public TensorDataset Subset(IReadOnlyList<int> indices)
    {
        var d = new TensorDataset(indices.Count);
        foreach (var c in _columns)
        {
            if (c.Floats is { } f) d.Add(c.Name, Gather(f, c.SampleSize, indices), c.Shape);
            else d.Add(c.Name, Gather(c.Integers!, c.SampleSize, indices), c.Shape);
        }
        return d;
    }

    private static T[] Gather<T>(T[] source, int size, IReadOnlyList<int> indices)
    {
        var r = new T[indices.Count * size];
        for (int i = 0; i < indices.Count; i++) source.AsSpan(indices[i] * size, size).CopyTo(r.AsSpan(i * size));
        return r;
    }

    /// <summary>Splits into train/validation with a seeded shuffle; <paramref name="stratifyBy"/> names a column of one
    /// class index per sample whose proportions each part keeps (null: no stratification).</summary>
    public (TensorDataset Train, TensorDataset Validation) Split(double validationFraction, ulong seed, string? stratifyBy = null)
    {
        int[] groups = new int[Count];
        if (stratifyBy is not null)
        {
            var c = this[stratifyBy];
            if (c.Integers is null || c.SampleSize != 1) throw new ArgumentException($"Column '{stratifyBy}' is not one class index per sample.", nameof(stratifyBy));
            groups = c.Integers;
        }
        var (train, val) = Dataset.SplitIndices(groups, validationFraction, seed, stratifyBy is not null);
        return (Subset(train), Subset(val));
    }
}

/// <summary>One batch of a <see cref="TensorDataLoader"/>: each column's rows of the batch's samples, in reused buffers
/// (valid until the next batch is requested).</summary>
public sealed class TensorBatch
{
    private readonly TensorColumn[] _columns;
    private readonly float[]?[] _floats;
    private readonly int[]?[] _integers;
    private readonly float[]?[] _trimmedFloats;
    private readonly int[]?[] _trimmedIntegers;
    private readonly int _capacity;

    internal TensorBatch(IReadOnlyList<TensorColumn> columns, int capacity)
    {
        _columns = columns.ToArray();
        _floats = _columns.Select(c => c.Floats is null ? null : new float[capacity * c.SampleSize]).ToArray();
        _integers = _columns.Select(c => c.Integers is null ? null : new int[capacity * c.SampleSize]).ToArray();
        _trimmedFloats = new float[_columns.Length][];
        _trimmedIntegers = new int[_columns.Length][];
        _capacity = capacity;
    }

    /// <summary>The batch's sequence length: the longest row of the [N, positions] mask column <paramref name="maskColumn"/>
    /// (1 = a real token, 0 = padding, as Hugging Face's attention_mask), up to its last real token; at least 1.</summary>
    /// <exception cref="InvalidOperationException">When there is no such integer column of one value per position.</exception>
    public int SequenceLength(string maskColumn)
    {
        int i = Array.FindIndex(_columns, c => c.Name == maskColumn);
        if (i < 0 || !_columns[i].IsInteger || _columns[i].Shape.Length != 1)
            throw new InvalidOperationException($"The batch has no mask column '{maskColumn}' of one integer per position; it has {TensorDataset.Names(_columns)}.");
        int positions = _columns[i].Shape[0], longest = 1;
        var mask = _integers[i]!;
        for (int b = 0; b < Count; b++)
            for (int t = positions - 1; t >= longest; t--)
                if (mask[b * positions + t] != 0) { longest = t + 1; break; }
        return longest;
    }

    /// <summary>A sequence column's rows cut to the batch's first <paramref name="sequence"/> positions, [Count, sequence,
    /// <paramref name="perPosition"/>] (the column holds [positions, …] per sample, padded).</summary>
    /// <exception cref="InvalidOperationException">When there is no such float column, or its positions hold another size or are fewer.</exception>
    public ReadOnlySpan<float> Floats(string name, int perPosition, int sequence)
    {
        int i = FindSequence(name, perPosition, sequence, integer: false);
        var trimmed = _trimmedFloats[i] ??= new float[_capacity * _columns[i].SampleSize];
        return Trim(_floats[i]!, trimmed, _columns[i], perPosition, sequence);
    }

    /// <summary>An integer sequence column's rows cut to <paramref name="sequence"/> positions (see the float overload).</summary>
    /// <exception cref="InvalidOperationException">When there is no such integer column, or its positions hold another size or are fewer.</exception>
    public ReadOnlySpan<int> Integers(string name, int perPosition, int sequence)
    {
        int i = FindSequence(name, perPosition, sequence, integer: true);
        var trimmed = _trimmedIntegers[i] ??= new int[_capacity * _columns[i].SampleSize];
        return Trim(_integers[i]!, trimmed, _columns[i], perPosition, sequence);
    }

    private int FindSequence(string name, int perPosition, int sequence, bool integer)
    {
        int i = Array.FindIndex(_columns, c => c.Name == name);
        if (i < 0) throw new InvalidOperationException($"The batch has no column '{name}'; it has {TensorDataset.Names(_columns)}.");
        var c = _columns[i];
        if (c.IsInteger != integer)
            throw new InvalidOperationException($"Column '{name}' holds {(c.IsInteger ? "integers" : "floats")}, but {(integer ? "integers (token ids or class indices)" : "floats")} are read from it.");
        if (c.Shape.Length == 0 || c.SampleSize != c.Shape[0] * perPosition || c.Shape[0] < sequence)
            throw new InvalidOperationException($"Column '{name}' is [{string.Join(", ", c.Shape)}] per sample, but {sequence} positions of {perPosition} values are read from it.");
        return i;
    }

    private ReadOnlySpan<T> Trim<T>(T[] rows, T[] trimmed, TensorColumn c, int perPosition, int sequence)
    {
        int stored = c.Shape[0] * perPosition, kept = sequence * perPosition;
        if (stored == kept) return rows.AsSpan(0, Count * stored);
        for (int b = 0; b < Count; b++) rows.AsSpan(b * stored, kept).CopyTo(trimmed.AsSpan(b * kept));
        return trimmed.AsSpan(0, Count * kept);
    }

    /// <summary>Samples in this batch (this rank's part of it, in a data-parallel job).</summary>
    public int Count { get; internal set; }
    /// <summary>Samples in the global batch this one is a rank's part of; else <see cref="Count"/>.</summary>
    public int GlobalCount { get; internal set; }

    /// <summary>The float column <paramref name="name"/>'s rows of this batch, checked to hold
    /// <paramref name="sampleSize"/> values per sample.</summary>
    /// <exception cref="InvalidOperationException">When there is no such float column or its samples are another size.</exception>
    public ReadOnlySpan<float> Floats(string name, int sampleSize)
    {
        int i = Find(name, sampleSize, integer: false);
        return _floats[i].AsSpan(0, Count * sampleSize);
    }

    /// <summary>The integer column <paramref name="name"/>'s rows of this batch (see <see cref="Floats(string, int)"/>).</summary>
    /// <exception cref="InvalidOperationException">When there is no such integer column or its samples are another size.</exception>
    public ReadOnlySpan<int> Integers(string name, int sampleSize)
    {
        int i = Find(name, sampleSize, integer: true);
        return _integers[i].AsSpan(0, Count * sampleSize);
    }

    private int Find(string name, int sampleSize, bool integer)
    {
        int i = Array.FindIndex(_columns, c => c.Name == name);
        if (i < 0) throw new InvalidOperationException($"The batch has no column '{name}'; it has {TensorDataset.Names(_columns)}.");
        var c = _columns[i];
        if (c.IsInteger != integer)
            throw new InvalidOperationException($"Column '{name}' holds {(c.IsInteger ? "integers" : "floats")}, but {(integer ? "integers (token ids or class indices)" : "floats")} are read from it.");
        if (c.SampleSize != sampleSize)
            throw new InvalidOperationException($"Column '{name}' has {c.SampleSize} values per sample (shape [{string.Join(", ", c.Shape)}]), but {sampleSize} are read from it.");
        return i;
    }

    internal void Fill(int[] order, int start, int count)
    {
        Count = count;
        for (int k = 0; k < _columns.Length; k++)
        {
            var c = _columns[k];
            int size = c.SampleSize;
            for (int i = 0; i < count; i++)
            {
                int idx = order[start + i];
                if (c.Floats is { } f) f.AsSpan(idx * size, size).CopyTo(_floats[k].AsSpan(i * size));
                else c.Integers.AsSpan(idx * size, size).CopyTo(_integers[k].AsSpan(i * size));
            }
        }
    }
}

/// <summary>
/// Batches a <see cref="TensorDataset"/> as <see cref="DataLoader"/> batches a <see cref="Dataset"/>: the same seeded
/// order (epoch e's order is a function of (seed, e), so a resumed run sees the same batches), drop-last, and rank parts
/// for data-parallel jobs. Batches are assembled on the caller's thread: copying rows costs far less than a step.
/// </summary>
public sealed class TensorDataLoader
{
    private readonly TensorBatch _batch;
    private int _rank, _ranks = 1;

    /// <summary>Creates a loader.</summary>
    public TensorDataLoader(TensorDataset data, int batchSize, bool shuffle = true, bool dropLast = false, ulong seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        Dataset = data; BatchSize = batchSize; Shuffle = shuffle; DropLast = dropLast; Seed = seed;
        _batch = new TensorBatch(data.Columns, batchSize);
    }

    /// <summary>The dataset.</summary>
    public TensorDataset Dataset { get; }
    /// <summary>Samples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether each epoch is shuffled.</summary>
    public bool Shuffle { get; }
    /// <summary>Whether an incomplete last batch is dropped.</summary>
    public bool DropLast { get; }
    /// <summary>Seed of the shuffling.</summary>
    public ulong Seed { get; }
    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;
    /// <summary>This loader's rank in a data-parallel job (0 when it is not a rank's part).</summary>
    public int Rank => _rank;
    /// <summary>The ranks that share each global batch (1: the whole batch is this loader's).</summary>
    public int Ranks => _ranks;

    /// <summary>The loader of one rank of a data-parallel job (see <see cref="DataLoader.ForRank"/>).</summary>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="rank"/> is not in [0, <paramref name="ranks"/>).</exception>
    public TensorDataLoader ForRank(int rank, int ranks)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ranks);
        if ((uint)rank >= (uint)ranks) throw new ArgumentOutOfRangeException(nameof(rank), rank, $"A rank of a job of {ranks} is in [0, {ranks}).");
        return new TensorDataLoader(Dataset, BatchSize, Shuffle, DropLast, Seed) { _rank = rank, _ranks = ranks };
    }

    /// <summary>The sample order of an epoch (the same as a <see cref="DataLoader"/>'s with this seed and size).</summary>
    public int[] Order(int epoch) => DataLoader.SampleOrder(Dataset.Count, Shuffle, Seed, epoch);

    /// <summary>The batches of an epoch; each is valid until the next one is requested.</summary>
    public IEnumerable<TensorBatch> Epoch(int epoch)
    {
        var order = Order(epoch);
        int batches = BatchesPerEpoch;
        for (int b = 0; b < batches; b++)
        {
            int start = b * BatchSize, count = Math.Min(BatchSize, order.Length - start);
            _batch.GlobalCount = count;
            if (_ranks > 1)
            {
                var (first, part) = DataLoader.RankRange(count, _rank, _ranks);
                start += first; count = part;
            }
            _batch.Fill(order, start, count);
            yield return _batch;
        }
    }
}
