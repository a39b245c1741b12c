using System.Globalization;
using System.Text;

namespace Compiled.Nets.Training;

/// <summary>Counts (actual, predicted) pairs; accuracy is over samples.</summary>
public sealed class ConfusionMatrix
{
    private readonly long[] _counts;

    /// <summary>An empty matrix for <paramref name="classes"/> classes.</summary>
    public ConfusionMatrix(int classes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(classes);
        Classes = classes;
        _counts = new long[classes * classes];
    }

    /// <summary>Number of classes.</summary>
    public int Classes { get; }
    /// <summary>Samples counted.</summary>
    public long Total { get; private set; }
    /// <summary>Count of samples of class <paramref name="actual"/> predicted as <paramref name="predicted"/>.</summary>
    public long this[int actual, int predicted] => _counts[actual * Classes + predicted];

    /// <summary>Adds one sample.</summary>
    public void Add(int predicted, int actual)
    {
        if ((uint)actual >= (uint)Classes) throw new ArgumentOutOfRangeException(nameof(actual), actual, $"Label outside [0, {Classes}).");
        if ((uint)predicted >= (uint)Classes) throw new ArgumentOutOfRangeException(nameof(predicted), predicted, $"Prediction outside [0, {Classes}).");
        _counts[actual * Classes + predicted]++;
        Total++;
    }

    /// <summary>Adds a batch of logits [batch, Classes] (argmax) against labels.</summary>
    public void Add(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int batch)
    {
        for (int b = 0; b < batch; b++) Add(ArgMax(logits.Slice(b * Classes, Classes)), labels[b]);
    }

    /// <summary>Index of the largest value.</summary>
    public static int ArgMax(ReadOnlySpan<float> v)
    {
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    /// <summary>Correct predictions / samples.</summary>
    public double Accuracy
    {
        get
        {
            long correct = 0;
            for (int c = 0; c < Classes; c++) correct += this[c, c];
            return Total == 0 ? 0 : (double)correct / Total;
        }
    }

    /// <summary>Clears the counts.</summary>
    public void Reset() { Array.Clear(_counts); Total = 0; }
}

/// <summary>One row of a <see cref="ClassificationReport"/>.</summary>
public readonly record struct ClassMetrics(string Name, double Precision, double Recall, double F1, long Support);

/// <summary>Per-class precision, recall, F1 and support with macro and weighted averages, like sklearn's classification_report (zero division → 0).</summary>
public sealed class ClassificationReport
{
    /// <summary>Builds the report from a confusion matrix.</summary>
    public ClassificationReport(ConfusionMatrix m, IReadOnlyList<string>? classNames = null)
    {
        var rows = new List<ClassMetrics>();
        for (int c = 0; c < m.Classes; c++)
        {
            long tp = m[c, c], predicted = 0, actual = 0;
            for (int k = 0; k < m.Classes; k++) { predicted += m[k, c]; actual += m[c, k]; }
            double p = predicted == 0 ? 0 : (double)tp / predicted, r = actual == 0 ? 0 : (double)tp / actual;
            double f = p + r == 0 ? 0 : 2 * p * r / (p + r);
            rows.Add(new ClassMetrics(classNames?[c] ?? c.ToString(CultureInfo.InvariantCulture), p, r, f, actual));
        }
        Classes = rows;
        Accuracy = m.Accuracy;
        Total = m.Total;
        MacroAvg = new ClassMetrics("macro avg", rows.Average(x => x.Precision), rows.Average(x => x.Recall), rows.Average(x => x.F1), Total);
        double w(Func<ClassMetrics, double> f) => Total == 0 ? 0 : rows.Sum(x => f(x) * x.Support) / Total;
        WeightedAvg = new ClassMetrics("weighted avg", w(x => x.Precision), w(x => x.Recall), w(x => x.F1), Total);
    }

    /// <summary>Per-class rows.</summary>
    public IReadOnlyList<ClassMetrics> Classes { get; }
    /// <summary>Unweighted mean over classes.</summary>
    public ClassMetrics MacroAvg { get; }
    /// <summary>Support-weighted mean over classes.</summary>
    public ClassMetrics WeightedAvg { get; }
    /// <summary>Accuracy over samples.</summary>
    public double Accuracy { get; }
    /// <summary>Samples.</summary>
    public long Total { get; }

    /// <inheritdoc/>
    public override string ToString()
    {
        int width = Math.Max(12, Classes.Max(c => c.Name.Length) + 2);
        var sb = new StringBuilder();
        sb.Append(' ', width).AppendLine("  precision    recall  f1-score   support");
        sb.AppendLine();
        foreach (var c in Classes) Row(sb, c, width);
        sb.AppendLine();
        sb.Append("accuracy".PadLeft(width)).Append(' ', 22).Append(Accuracy.ToString("F4", CultureInfo.InvariantCulture).PadLeft(10)).Append(Total.ToString(CultureInfo.InvariantCulture).PadLeft(10)).AppendLine();
        Row(sb, MacroAvg, width);
        Row(sb, WeightedAvg, width);
        return sb.ToString();
    }

    private static void Row(StringBuilder sb, ClassMetrics c, int width) =>
        sb.Append(c.Name.PadLeft(width))
          .Append(c.Precision.ToString("F4", CultureInfo.InvariantCulture).PadLeft(11))
          .Append(c.Recall.ToString("F4", CultureInfo.InvariantCulture).PadLeft(10))
          .Append(c.F1.ToString("F4", CultureInfo.InvariantCulture).PadLeft(10))
          .Append(c.Support.ToString(CultureInfo.InvariantCulture).PadLeft(10)).AppendLine();

    /// <summary>Writes <c>test_report.txt</c>, <c>.csv</c> and <c>.json</c> (or another stem) into <paramref name="dir"/>, atomically.</summary>
    public void WriteFiles(string dir, string stem = "test_report")
    {
        Directory.CreateDirectory(dir);
        Serialization.AtomicFile.Write(Path.Combine(dir, stem + ".txt"), System.Text.Encoding.UTF8.GetBytes(ToString()));
        Serialization.AtomicFile.Write(Path.Combine(dir, stem + ".csv"), System.Text.Encoding.UTF8.GetBytes(ToCsv()));
        Serialization.AtomicFile.Write(Path.Combine(dir, stem + ".json"), System.Text.Encoding.UTF8.GetBytes(ToJson()));
    }

    /// <summary>CSV: class,precision,recall,f1,support (plus the averages and accuracy).</summary>
    public string ToCsv()
    {
        var sb = new StringBuilder("class,precision,recall,f1,support\n");
        foreach (var c in Classes.Append(MacroAvg).Append(WeightedAvg))
            sb.Append(CultureInfo.InvariantCulture, $"{c.Name},{c.Precision:R},{c.Recall:R},{c.F1:R},{c.Support}\n");
        sb.Append(CultureInfo.InvariantCulture, $"accuracy,,,{Accuracy:R},{Total}\n");
        return sb.ToString();
    }

    /// <summary>JSON with the same content (written without reflection, so trimming-safe).</summary>
    public string ToJson()
    {
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("accuracy", Accuracy);
            w.WriteNumber("support", Total);
            w.WriteStartArray("classes");
            foreach (var c in Classes) Write(w, c);
            w.WriteEndArray();
            w.WritePropertyName("macro_avg"); Write(w, MacroAvg);
            w.WritePropertyName("weighted_avg"); Write(w, WeightedAvg);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void Write(System.Text.Json.Utf8JsonWriter w, ClassMetrics c)
    {
        w.WriteStartObject();
        w.WriteString("class", c.Name); w.WriteNumber("precision", c.Precision); w.WriteNumber("recall", c.Recall);
        w.WriteNumber("f1", c.F1); w.WriteNumber("support", c.Support);
        w.WriteEndObject();
    }
}
