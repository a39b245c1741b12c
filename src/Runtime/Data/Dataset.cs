namespace Compiled.Nets.Data;

/// <summary>An in-memory dataset: N samples of a fixed per-sample shape, as floats, with class labels (a classifier's)
/// or float targets of a fixed shape (a regressor's).</summary>
public sealed class Dataset
{
    /// <summary>Wraps samples [N, ..SampleShape] and labels [N].</summary>
    /// <exception cref="ArgumentException">When sizes disagree or a label is outside [0, classes).</exception>
    public Dataset(float[] samples, int[] labels, int[] sampleShape, int classes, IReadOnlyList<string>? classNames = null)
    {
        if (sampleShape.Length == 0 || sampleShape.Any(d => d <= 0)) throw new ArgumentException($"The sample shape [{string.Join(", ", sampleShape)}] needs positive dimensions.", nameof(sampleShape));
        SampleSize = Size(sampleShape);
        if (samples.Length != (long)labels.Length * SampleSize)
            throw new ArgumentException($"{labels.Length} labels need {(long)labels.Length * SampleSize} floats of samples shaped [{string.Join(", ", sampleShape)}], got {samples.Length}.");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classes) throw new ArgumentException($"Label {labels[i]} of sample {i} is outside [0, {classes}).");
        Samples = samples; Labels = labels; SampleShape = sampleShape; Classes = classes; ClassNames = classNames;
    }

    /// <summary>Wraps samples [N, ..SampleShape] and float targets [N, ..TargetShape] for a regressor (MSE, L1, smooth L1,
    /// BCE with logits); <see cref="Labels"/> are then all 0 and <see cref="Classes"/> is 0.</summary>
    /// <exception cref="ArgumentException">When sizes disagree or a target is not finite.</exception>
    public Dataset(float[] samples, float[] targets, int[] sampleShape, int[] targetShape)
    {
        if (sampleShape.Length == 0 || sampleShape.Any(d => d <= 0) || targetShape.Any(d => d <= 0))
            throw new ArgumentException($"Sample and target shapes need positive dimensions, got [{string.Join(", ", sampleShape)}] and [{string.Join(", ", targetShape)}].");
        SampleSize = Size(sampleShape);
        TargetSize = Size(targetShape);
        if (samples.Length % SampleSize != 0 || targets.Length != (long)(samples.Length / SampleSize) * TargetSize)
            throw new ArgumentException($"{samples.Length} floats of samples shaped [{string.Join(", ", sampleShape)}] need {(long)(samples.Length / SampleSize) * TargetSize} floats of targets shaped [{string.Join(", ", targetShape)}], got {targets.Length}.");
        int bad = Array.FindIndex(targets, t => !float.IsFinite(t));
        if (bad >= 0) throw new ArgumentException($"Target {bad % TargetSize} of sample {bad / TargetSize} is {targets[bad]}; targets must be finite.");
        Samples = samples; Labels = new int[samples.Length / SampleSize]; SampleShape = sampleShape; Targets = targets; TargetShape = targetShape;
    }

    /// <summary>Floats of one sample or target of <paramref name="shape"/> (positive dimensions), at most int.MaxValue.</summary>
    private static int Size(int[] shape)
    {
        long size = 1;
        foreach (int d in shape)
            if ((size *= d) > int.MaxValue) throw new ArgumentException($"A sample or target shaped [{string.Join(", ", shape)}] holds more than {int.MaxValue} floats.");
        return (int)size;
    }

    /// <summary>The regression targets, flattened (null for a labelled dataset).</summary>
    public float[]? Targets { get; }
    /// <summary>Per-sample target shape (empty for a labelled dataset).</summary>
    public int[] TargetShape { get; } = [];
    /// <summary>Floats of target per sample (0 for a labelled dataset).</summary>
    public int TargetSize { get; }

    /// <summary>All samples, flattened.</summary>
    public float[] Samples { get; }
    /// <summary>Labels.</summary>
    public int[] Labels { get; }
    /// <summary>Per-sample shape, e.g. [1, 28, 28].</summary>
    public int[] SampleShape { get; }
    /// <summary>Floats per sample.</summary>
    public int SampleSize { get; }
    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>Optional class names.</summary>
    public IReadOnlyList<string>? ClassNames { get; }
    /// <summary>Number of samples.</summary>
    public int Count => Labels.Length;

    /// <summary>A sample's values.</summary>
    public ReadOnlySpan<float> Sample(int index) => Samples.AsSpan(index * SampleSize, SampleSize);

    /// <summary>The samples at <paramref name="indices"/>, copied.</summary>
    public Dataset Subset(IReadOnlyList<int> indices)
    {
        var s = new float[indices.Count * SampleSize];
        if (Targets is not null)
        {
            var t = new float[indices.Count * TargetSize];
            for (int i = 0; i < indices.Count; i++)
            {
                Sample(indices[i]).CopyTo(s.AsSpan(i * SampleSize));
                Targets.AsSpan(indices[i] * TargetSize, TargetSize).CopyTo(t.AsSpan(i * TargetSize));
            }
            return new Dataset(s, t, SampleShape, TargetShape);
        }
        var l = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++) { Sample(indices[i]).CopyTo(s.AsSpan(i * SampleSize)); l[i] = Labels[indices[i]]; }
        return new Dataset(s, l, SampleShape, Classes, ClassNames);
    }

    /// <summary>The first <paramref name="count"/> samples.</summary>
    public Dataset Take(int count) => Subset(Enumerable.Range(0, Math.Min(count, Count)).ToArray());

    /// <summary>Splits into train/validation with a seeded shuffle; stratified keeps each class's proportion (a regression
    /// dataset has one class).</summary>
    public (Dataset Train, Dataset Validation) Split(double validationFraction, ulong seed, bool stratified = true)
    {
        var (train, val) = SplitIndices(Labels, validationFraction, seed, stratified);
        return (Subset(train), Subset(val));
    }

    /// <summary>Train/validation sample indices (each sorted) for a seeded, optionally stratified split of <paramref name="labels"/>.</summary>
    internal static (List<int> Train, List<int> Validation) SplitIndices(int[] labels, double validationFraction, ulong seed, bool stratified)
    {
        if (validationFraction <= 0 || validationFraction >= 1) throw new ArgumentOutOfRangeException(nameof(validationFraction), validationFraction, "Must be in (0, 1).");
        var rng = new Rng(seed);
        var train = new List<int>(); var val = new List<int>();
        int count = labels.Length;
        var groups = stratified ? Enumerable.Range(0, count).GroupBy(i => labels[i]).Select(g => g.ToArray()) : new[] { Enumerable.Range(0, count).ToArray() };
        foreach (var g in groups)
        {
            rng.Shuffle(g.AsSpan());
            int nVal = (int)Math.Round(g.Length * validationFraction);
            val.AddRange(g.Take(nVal)); train.AddRange(g.Skip(nVal));
        }
        train.Sort(); val.Sort();
        return (train, val);
    }

    /// <summary>Per-channel mean and standard deviation over all samples ([C, H, W] layout).</summary>
    /// <exception cref="InvalidOperationException">On an empty dataset (there are no statistics to take).</exception>
    public (float[] Mean, float[] Std) ChannelStatistics()
    {
        if (Count == 0) throw new InvalidOperationException("Channel statistics of an empty dataset: there are no samples to average.");
        int c = SampleShape[0], plane = SampleSize / c;
        var mean = new double[c]; var sq = new double[c];
        for (int n = 0; n < Count; n++)
            for (int ch = 0; ch < c; ch++)
                foreach (var v in Samples.AsSpan(n * SampleSize + ch * plane, plane)) { mean[ch] += v; sq[ch] += (double)v * v; }
        long per = (long)Count * plane;
        return (mean.Select(m => (float)(m / per)).ToArray(), mean.Select((m, i) => (float)Math.Sqrt(Math.Max(0, sq[i] / per - (m / per) * (m / per)))).ToArray());
    }

    /// <summary>Normalises in place: (x − mean[c]) / std[c] per channel.</summary>
    /// <exception cref="ArgumentException">A count other than the channels', a mean that is not finite, or a standard
    /// deviation that is not finite and positive (a constant channel has std 0: every value would become NaN or
    /// infinity; torchvision's Normalize refuses it too).</exception>
    public void Normalize(float[] mean, float[] std)
    {
        int c = SampleShape[0], plane = SampleSize / c;
        if (mean.Length != c || std.Length != c) throw new ArgumentException($"Normalisation needs {c} means and stds.");
        for (int ch = 0; ch < c; ch++)
            if (!float.IsFinite(mean[ch]) || !(float.IsFinite(std[ch]) && std[ch] > 0))
                throw new ArgumentException($"Channel {ch}: mean {mean[ch]} and standard deviation {std[ch]}; normalising needs a finite mean and a finite, positive deviation (a constant channel has none).");
        for (int n = 0; n < Count; n++)
            for (int ch = 0; ch < c; ch++)
            {
                var span = Samples.AsSpan(n * SampleSize + ch * plane, plane);
                float inv = 1f / std[ch];
                for (int i = 0; i < span.Length; i++) span[i] = (span[i] - mean[ch]) * inv;
            }
    }
}
