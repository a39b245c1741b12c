using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Compiled.Nets.Serialization;

/// <summary>
/// The fields of a Hugging Face BERT <c>config.json</c> that define the network's shapes and training behaviour.
/// The five size fields are required; the others take the defaults of <c>transformers.BertConfig</c>.
/// </summary>
/// <example><code>var config = BertConfig.Load("bert-base-uncased/config.json"); // HiddenSize 768, NumHiddenLayers 12…</code></example>
public sealed record BertConfig
{
    /// <summary><c>vocab_size</c>: rows of the word-embedding table.</summary>
    public required int VocabSize { get; init; }
    /// <summary><c>hidden_size</c>: the model width.</summary>
    public required int HiddenSize { get; init; }
    /// <summary><c>num_hidden_layers</c>: encoder layers.</summary>
    public required int NumHiddenLayers { get; init; }
    /// <summary><c>num_attention_heads</c>: heads per attention layer (divides <see cref="HiddenSize"/>).</summary>
    public required int NumAttentionHeads { get; init; }
    /// <summary><c>intermediate_size</c>: width of the feed-forward layer.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary><c>hidden_act</c>: the feed-forward activation (<c>gelu</c> for BERT).</summary>
    public string HiddenAct { get; init; } = "gelu";
    /// <summary><c>hidden_dropout_prob</c>.</summary>
    public float HiddenDropoutProb { get; init; } = 0.1f;
    /// <summary><c>attention_probs_dropout_prob</c>.</summary>
    public float AttentionProbsDropoutProb { get; init; } = 0.1f;
    /// <summary><c>max_position_embeddings</c>: rows of the position-embedding table (longest sequence).</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;
    /// <summary><c>type_vocab_size</c>: rows of the token-type (segment) embedding table.</summary>
    public int TypeVocabSize { get; init; } = 2;
    /// <summary><c>layer_norm_eps</c>.</summary>
    public float LayerNormEps { get; init; } = 1e-12f;
    /// <summary><c>model_type</c>; always <c>bert</c> once loaded.</summary>
    public string ModelType { get; init; } = "bert";
    /// <summary><c>architectures</c>, e.g. <c>BertForSequenceClassification</c>; empty when absent.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];
    /// <summary><c>id2label</c> with integer keys, or null when the config has none.</summary>
    public IReadOnlyDictionary<int, string>? Id2Label { get; init; }
    /// <summary>Number of classifier labels: the size of <c>id2label</c>, else <c>num_labels</c>, else null.</summary>
    public int? NumLabels { get; init; }

    /// <summary>Width of one attention head.</summary>
    public int HeadSize => HiddenSize / NumAttentionHeads;

    /// <summary>Value equality, including the contents of <see cref="Architectures"/> and <see cref="Id2Label"/>
    /// (a record alone would compare those by reference, so two loads of one file would differ).</summary>
    public bool Equals(BertConfig? other) =>
        other is not null
        && (VocabSize, HiddenSize, NumHiddenLayers, NumAttentionHeads, IntermediateSize, HiddenAct, HiddenDropoutProb, AttentionProbsDropoutProb)
            == (other.VocabSize, other.HiddenSize, other.NumHiddenLayers, other.NumAttentionHeads, other.IntermediateSize, other.HiddenAct, other.HiddenDropoutProb, other.AttentionProbsDropoutProb)
        && (MaxPositionEmbeddings, TypeVocabSize, LayerNormEps, ModelType, NumLabels)
            == (other.MaxPositionEmbeddings, other.TypeVocabSize, other.LayerNormEps, other.ModelType, other.NumLabels)
        && Architectures.SequenceEqual(other.Architectures)
        && (Id2Label is null ? other.Id2Label is null
            : other.Id2Label is not null && Id2Label.Count == other.Id2Label.Count
              && Id2Label.All(kv => other.Id2Label.TryGetValue(kv.Key, out var v) && v == kv.Value));

    /// <summary>A hash of the size fields (consistent with <see cref="Equals(BertConfig?)"/>).</summary>
    public override int GetHashCode() => HashCode.Combine(VocabSize, HiddenSize, NumHiddenLayers, NumAttentionHeads, IntermediateSize, NumLabels);

    /// <summary>Reads and validates a <c>config.json</c>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Invalid JSON, a field of the wrong type or value, a missing size field, or not a BERT config.</exception>
    public static BertConfig Load(string path)
    {
        return Parse(BoundedFile.Read(path, 16L << 20, "a config.json"), path);
    }

    /// <summary>Parses <c>config.json</c> bytes; <paramref name="source"/> names them in errors.</summary>
    /// <exception cref="InvalidDataException">As for <see cref="Load"/>.</exception>
    public static BertConfig Parse(ReadOnlySpan<byte> json, string source = "config.json")
    {
        InvalidDataException Error(string message) => new($"{source}: {message}");
        // The JSON reader checks UTF-8 only when a string is read, and then throws InvalidOperationException.
        if (!System.Text.Unicode.Utf8.IsValid(json)) throw Error("not UTF-8 text.");
        BertConfigJson raw;
        try
        {
            using (var doc = JsonDocument.Parse(json.ToArray()))
                if (doc.RootElement.ValueKind != JsonValueKind.Object) throw Error($"expected a JSON object, found {doc.RootElement.ValueKind}.");
            raw = JsonSerializer.Deserialize(json, HuggingFaceJsonContext.Default.BertConfigJson)!;
        }
        catch (JsonException e) when (e.Path is null or "$")
        { throw Error($"not valid JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine}): {e.Message}"); }
        catch (JsonException e)
        { throw Error(WrongType(json, e.Path!)); }
        // An escaped lone surrogate ("\ud800") cannot become a .NET string.
        catch (InvalidOperationException e) { throw Error($"holds a string that is not valid Unicode ({e.Message})."); }

        var missing = new List<string>();
        int Required(int? v, string name) { if (v is null) missing.Add(name); return v ?? 0; }
        var config = new BertConfig
        {
            VocabSize = Required(raw.VocabSize, "vocab_size"),
            HiddenSize = Required(raw.HiddenSize, "hidden_size"),
            NumHiddenLayers = Required(raw.NumHiddenLayers, "num_hidden_layers"),
            NumAttentionHeads = Required(raw.NumAttentionHeads, "num_attention_heads"),
            IntermediateSize = Required(raw.IntermediateSize, "intermediate_size"),
            HiddenAct = raw.HiddenAct ?? "gelu",
            HiddenDropoutProb = raw.HiddenDropoutProb ?? 0.1f,
            AttentionProbsDropoutProb = raw.AttentionProbsDropoutProb ?? 0.1f,
            MaxPositionEmbeddings = raw.MaxPositionEmbeddings ?? 512,
            TypeVocabSize = raw.TypeVocabSize ?? 2,
            LayerNormEps = raw.LayerNormEps ?? 1e-12f,
            ModelType = raw.ModelType ?? "bert",
            Architectures = raw.Architectures ?? [],
        };
        if (missing.Count > 0) throw Error($"lacks {string.Join(", ", missing)}, which a BERT config must give.");
        if (config.ModelType != "bert") throw Error($"model_type is '{config.ModelType}'; only BERT ('bert') checkpoints are supported.");
        foreach (var (name, value) in new[] { ("vocab_size", config.VocabSize), ("hidden_size", config.HiddenSize), ("num_hidden_layers", config.NumHiddenLayers),
            ("num_attention_heads", config.NumAttentionHeads), ("intermediate_size", config.IntermediateSize),
            ("max_position_embeddings", config.MaxPositionEmbeddings), ("type_vocab_size", config.TypeVocabSize) })
            if (value <= 0) throw Error($"{name} is {value}; it must be positive.");
        if (config.HiddenSize % config.NumAttentionHeads != 0)
            throw Error($"hidden_size {config.HiddenSize} is not a multiple of num_attention_heads {config.NumAttentionHeads}.");
        foreach (var (name, p) in new[] { ("hidden_dropout_prob", config.HiddenDropoutProb), ("attention_probs_dropout_prob", config.AttentionProbsDropoutProb) })
            if (!(p is >= 0 and < 1)) throw Error($"{name} is {p.ToString(CultureInfo.InvariantCulture)}; it must be in [0, 1).");

        if (raw.Id2Label is { } labels)
        {
            var map = new Dictionary<int, string>();
            foreach (var (k, v) in labels)
                map[int.TryParse(k, NumberStyles.None, CultureInfo.InvariantCulture, out int id) && id < labels.Count ? id
                    : throw Error($"id2label key '{k}' is not a label index in 0…{labels.Count - 1}.")] = v;
            if (raw.NumLabels is { } n && n != map.Count) throw Error($"num_labels is {n} but id2label has {map.Count} entries.");
            config = config with { Id2Label = map, NumLabels = map.Count };
        }
        else if (raw.NumLabels is { } n)
            config = config with { NumLabels = n > 0 ? n : throw Error($"num_labels is {n}; it must be positive.") };
        return config;
    }

    /// <summary>"field 'x' is "768" (a string), expected an integer" from the failing JSON path.</summary>
    private static string WrongType(ReadOnlySpan<byte> json, string path)
    {
        // Path is "$.field", "$.field[0]" or "$.field.key"; the top-level field is what the user has to fix.
        string field = path.TrimStart('$', '.').Split('.', '[')[0].Trim('\'', ']');
        var prop = HuggingFaceJsonContext.Default.BertConfigJson.Properties.FirstOrDefault(p => p.Name == field);
        string expected = prop?.PropertyType switch
        {
            var t when t == typeof(int?) => "an integer",
            var t when t == typeof(float?) => "a number",
            var t when t == typeof(string) => "a string",
            var t when t == typeof(string[]) => "a list of strings",
            var t when t == typeof(Dictionary<string, string>) => "an object of strings",
            _ => "another type",
        };
        using var doc = JsonDocument.Parse(json.ToArray());
        string found = doc.RootElement.TryGetProperty(field, out var v)
            ? $"{(v.GetRawText() is { Length: > 40 } r ? r[..40] + "…" : v.GetRawText())} ({v.ValueKind.ToString().ToLowerInvariant()})" : "present";
        return $"field '{field}' is {found}, expected {expected}.";
    }
}

/// <summary>config.json as written, every field optional so that missing ones can be reported together.</summary>
internal sealed class BertConfigJson
{
    public int? VocabSize { get; set; }
    public int? HiddenSize { get; set; }
    public int? NumHiddenLayers { get; set; }
    public int? NumAttentionHeads { get; set; }
    public int? IntermediateSize { get; set; }
    public string? HiddenAct { get; set; }
    public float? HiddenDropoutProb { get; set; }
    public float? AttentionProbsDropoutProb { get; set; }
    public int? MaxPositionEmbeddings { get; set; }
    public int? TypeVocabSize { get; set; }
    public float? LayerNormEps { get; set; }
    public string? ModelType { get; set; }
    public string[]? Architectures { get; set; }
    [JsonPropertyName("id2label")] public Dictionary<string, string>? Id2Label { get; set; }
    public int? NumLabels { get; set; }
}

/// <summary><c>*.index.json</c> of a sharded checkpoint: which file holds each tensor.</summary>
internal sealed class ShardIndexJson
{
    public Dictionary<string, string>? WeightMap { get; set; }
}

// Source-generated metadata keeps JSON reading free of reflection (trimming and NativeAOT).
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(BertConfigJson))]
[JsonSerializable(typeof(ShardIndexJson))]
internal sealed partial class HuggingFaceJsonContext : JsonSerializerContext;
