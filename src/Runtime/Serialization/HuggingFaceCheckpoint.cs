using System.Text;
using System.Text.Json;

namespace Compiled.Nets.Serialization;

/// <summary>
/// A Hugging Face BERT checkpoint directory, as <c>save_pretrained</c> writes it: <c>config.json</c>, the weights
/// (<c>model.safetensors</c>, else <c>pytorch_model.bin</c>, or either sharded with its <c>*.index.json</c>) and
/// <c>vocab.txt</c>. Tensor names are normalised (<see cref="NormalizeName"/>) and every standard BERT parameter is
/// checked against the config on load, so a checkpoint that loads has the shapes its config promises.
/// </summary>
/// <example><code>
/// var ckpt = HuggingFaceCheckpoint.Load("bert-base-uncased");
/// float[] wordEmbeddings = ckpt.GetFloats("bert.embeddings.word_embeddings.weight"); // [30522, 768]
/// </code></example>
public sealed class HuggingFaceCheckpoint
{
    /// <summary>Weight files in the order they are looked for.</summary>
    public static IReadOnlyList<string> WeightFileNames { get; } =
        ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

    private readonly Dictionary<string, SafeTensor> _tensors;

    private HuggingFaceCheckpoint(string directory, BertConfig config, IReadOnlyList<string> weightFiles, Dictionary<string, SafeTensor> tensors, IReadOnlyList<string> vocabulary)
    {
        Directory = directory; Config = config; WeightFiles = weightFiles; _tensors = tensors; Vocabulary = vocabulary;
    }

    /// <summary>The directory it was loaded from.</summary>
    public string Directory { get; }
    /// <summary>The parsed <c>config.json</c>.</summary>
    public BertConfig Config { get; }
    /// <summary>The weight files read, relative to <see cref="Directory"/> (several for a sharded checkpoint).</summary>
    public IReadOnlyList<string> WeightFiles { get; }
    /// <summary>Every tensor under its normalised name, in its stored dtype.</summary>
    public IReadOnlyDictionary<string, SafeTensor> Tensors => _tensors;
    /// <summary>The WordPiece tokens of <c>vocab.txt</c>; a token's id is its index.</summary>
    public IReadOnlyList<string> Vocabulary { get; }
    /// <summary>Number of tokens in <c>vocab.txt</c> (at most <see cref="BertConfig.VocabSize"/>).</summary>
    public int VocabularySize => Vocabulary.Count;

    /// <summary>Loads and validates a checkpoint directory.</summary>
    /// <exception cref="DirectoryNotFoundException">The directory does not exist.</exception>
    /// <exception cref="FileNotFoundException">config.json, the weights or vocab.txt are missing; the message lists what the directory holds.</exception>
    /// <exception cref="InvalidDataException">A malformed file, a config field of the wrong type, or tensors whose shapes contradict the config (all listed).</exception>
    public static HuggingFaceCheckpoint Load(string directory)
    {
        if (!System.IO.Directory.Exists(directory)) throw new DirectoryNotFoundException($"checkpoint directory '{directory}' does not exist.");
        string configPath = Required(directory, "config.json", "the model's configuration");
        var config = BertConfig.Load(configPath);
        string vocabPath = Required(directory, "vocab.txt", "BERT's WordPiece vocabulary");

        string weights = WeightFileNames.FirstOrDefault(f => File.Exists(Path.Combine(directory, f)))
            ?? throw Missing(directory, $"no weights: expected {string.Join(", ", WeightFileNames.SkipLast(1))} or {WeightFileNames[^1]}");
        var shardMap = weights.EndsWith(".index.json", StringComparison.Ordinal) ? ReadShardMap(directory, weights) : null;
        var files = shardMap is null ? [weights] : ShardFiles(directory, weights, shardMap);
        var tensors = new Dictionary<string, SafeTensor>(StringComparer.Ordinal);
        var stored = new Dictionary<string, string>(StringComparer.Ordinal); // normalised → stored name, for messages
        foreach (string file in files)
        {
            string path = Path.Combine(directory, file);
            var list = file.EndsWith(".safetensors", StringComparison.Ordinal) ? SafeTensorsFile.Read(path).Tensors : PyTorchFile.Read(path);
            foreach (var t in list)
            {
                string name = NormalizeName(t.Name);
                if (stored.TryGetValue(name, out string? other))
                    throw new InvalidDataException($"{path}: '{t.Name}' and '{other}' both name {name}.");
                stored[name] = t.Name;
                tensors[name] = name == t.Name ? t : new SafeTensor(name, t.DType, t.Shape, t.Memory);
            }
        }
        if (shardMap is not null)
        {
            var absent = shardMap.Keys.Where(k => !tensors.ContainsKey(NormalizeName(k))).ToList();
            if (absent.Count > 0)
                throw new InvalidDataException($"{Path.Combine(directory, weights)} lists tensors its shards do not hold: {string.Join(", ", absent.Take(10))}{(absent.Count > 10 ? ", …" : "")}.");
        }
        Validate(config, tensors, stored, Path.Combine(directory, files.Count == 1 ? files[0] : weights), configPath);

        var vocabulary = ReadVocabulary(vocabPath);
        if (vocabulary.Count > config.VocabSize)
            throw new InvalidDataException($"{vocabPath} has {vocabulary.Count} tokens, more than vocab_size {config.VocabSize} in {configPath}: token ids past {config.VocabSize - 1} would have no embedding.");
        return new HuggingFaceCheckpoint(directory, config, files, tensors, vocabulary);
    }

    /// <summary>
    /// The canonical Hugging Face name of a BERT tensor: a bare <c>BertModel</c> name (<c>embeddings.</c>,
    /// <c>encoder.</c>, <c>pooler.</c>) gains the <c>bert.</c> prefix, and TensorFlow-era <c>LayerNorm.gamma</c>/<c>beta</c>
    /// become <c>LayerNorm.weight</c>/<c>bias</c>. Other names are returned unchanged.
    /// </summary>
    /// <example><code>NormalizeName("encoder.layer.0.output.LayerNorm.gamma") == "bert.encoder.layer.0.output.LayerNorm.weight"</code></example>
    public static string NormalizeName(string name)
    {
        if (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal) || name.StartsWith("pooler.", StringComparison.Ordinal))
            name = "bert." + name;
        if (name.EndsWith("LayerNorm.gamma", StringComparison.Ordinal)) return name[..^"gamma".Length] + "weight";
        if (name.EndsWith("LayerNorm.beta", StringComparison.Ordinal)) return name[..^"beta".Length] + "bias";
        return name;
    }

    /// <summary>Looks a tensor up by any of its name variants.</summary>
    public bool TryGetTensor(string name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out SafeTensor? tensor) =>
        _tensors.TryGetValue(NormalizeName(name), out tensor);

    /// <summary>A tensor by any of its name variants.</summary>
    /// <exception cref="KeyNotFoundException">Names the tensor and the checkpoint.</exception>
    public SafeTensor GetTensor(string name) =>
        TryGetTensor(name, out var t) ? t : throw new KeyNotFoundException($"checkpoint '{Directory}' has no tensor '{NormalizeName(name)}'.");

    /// <summary>A tensor's values as float32 (F16, BF16 and F64 converted), by any of its name variants.</summary>
    /// <exception cref="KeyNotFoundException">Names the tensor and the checkpoint.</exception>
    public float[] GetFloats(string name) => GetTensor(name).ToFloats();

    /// <summary>
    /// Copies the checkpoint's tensors into a network's parameters by state-dict name (any of the name variants
    /// <see cref="NormalizeName"/> accepts, so a network named with or without the <c>bert.</c> prefix loads), like
    /// PyTorch's <c>load_state_dict</c>: parameters the checkpoint lacks keep their initialisation and are reported as
    /// missing (a new task head), checkpoint tensors the network has no place for are reported as unexpected (an
    /// MLM head, the <c>position_ids</c> buffer). With <paramref name="strict"/> either is an error.
    /// </summary>
    /// <exception cref="InvalidDataException">When a tensor's shape differs from the parameter's (all such tensors named,
    /// with both shapes), or, when strict, anything is missing or unexpected.</exception>
    public PretrainedLoadReport LoadInto(ParameterStore store, bool strict = false)
    {
        var used = new HashSet<string>(StringComparer.Ordinal);
        var loaded = new List<string>(); var missing = new List<string>(); var problems = new List<string>();
        foreach (var p in store.All)
        {
            if (!TryGetTensor(p.Name, out var t)) { missing.Add(p.Name); continue; }
            used.Add(NormalizeName(p.Name));
            if (!t.Shape.SequenceEqual(p.Shape)) { problems.Add($"{p.Name}: checkpoint [{string.Join(", ", t.Shape)}] vs network {p.ShapeText}"); continue; }
            loaded.Add(p.Name);
        }
        var unexpected = _tensors.Keys.Where(k => !used.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (problems.Count > 0)
            throw new InvalidDataException($"The checkpoint in '{Directory}' does not fit this network: {string.Join("; ", problems)}.");
        if (strict && (missing.Count > 0 || unexpected.Count > 0))
            throw new InvalidDataException($"The checkpoint in '{Directory}' does not match this network exactly: " +
                $"{(missing.Count > 0 ? "missing " + string.Join(", ", missing) : "")}{(missing.Count > 0 && unexpected.Count > 0 ? "; " : "")}{(unexpected.Count > 0 ? "unexpected " + string.Join(", ", unexpected) : "")}.");
        foreach (var name in loaded) GetTensor(name).CopyTo(store.Value(store[name]));
        return new PretrainedLoadReport(loaded, missing, unexpected);
    }

    // ---- files ----

    private static string Required(string directory, string file, string what)
    {
        string path = Path.Combine(directory, file);
        return File.Exists(path) ? path : throw Missing(directory, $"no {file} ({what})");
    }

    /// <summary>The one shape of a missing-file error: what is missing, where, and what is there instead.</summary>
    private static FileNotFoundException Missing(string directory, string what)
    {
        var found = System.IO.Directory.EnumerateFileSystemEntries(directory).Select(p => Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();
        string list = found.Count == 0 ? "it is empty" : "found: " + string.Join(", ", found.Take(20)) + (found.Count > 20 ? $", … ({found.Count} entries)" : "");
        return new FileNotFoundException($"checkpoint '{directory}' has {what}; {list}.");
    }

    /// <summary>A shard index's weight_map (tensor → shard file), bounded and validated.</summary>
    internal static Dictionary<string, string> ReadShardMap(string directory, string index)
    {
        string path = Path.Combine(directory, index);
        try
        {
            var map = JsonSerializer.Deserialize(BoundedFile.Read(path, 64L << 20, "a shard index"), HuggingFaceJsonContext.Default.ShardIndexJson)?.WeightMap;
            return map ?? throw new InvalidDataException($"{path}: no weight_map.");
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not a valid index ({e.Message}).", e); }
    }

    /// <summary>The shards a weight_map names, each once, checked to be existing files beside the index.</summary>
    internal static List<string> ShardFiles(string directory, string index, Dictionary<string, string> map)
    {
        var files = new List<string>();
        foreach (var (tensor, file) in map)
        {
            // Shards are siblings of the index; a path would let a crafted index read files elsewhere.
            if (file.Length == 0 || file != Path.GetFileName(file) || file is "." or "..")
                throw new InvalidDataException($"{Path.Combine(directory, index)}: '{tensor}' maps to '{file}', which is not a file name in the checkpoint directory.");
            if (!files.Contains(file))
            {
                if (!File.Exists(Path.Combine(directory, file))) throw Missing(directory, $"no {file} (a shard {index} lists for '{tensor}')");
                files.Add(file);
            }
        }
        return files.Count > 0 ? files : throw new InvalidDataException($"{Path.Combine(directory, index)}: the weight_map is empty.");
    }

    private static IReadOnlyList<string> ReadVocabulary(string path)
    {
        var tokens = Text.BertVocabulary.Read(path);
        // What BERT's input is built from: a vocabulary without them cannot feed the model.
        foreach (var special in new[] { "[UNK]", "[CLS]", "[SEP]", "[PAD]" })
            if (!tokens.Contains(special)) throw new InvalidDataException($"{path} has no {special} token, which BERT's input needs.");
        return tokens;
    }

    // ---- validation against the config ----

    /// <summary>The standard BERT parameters and their shapes, with the config fields that give each dimension.</summary>
    internal static IEnumerable<(string Name, int[] Shape, string Dims, bool Required)> ExpectedShapes(BertConfig c)
    {
        int h = c.HiddenSize, i = c.IntermediateSize;
        (string, int[], string, bool) Vector(string name, bool required = true) => (name, [h], "[hidden_size]", required);
        (string, int[], string, bool) Square(string name, bool required = true) => (name, [h, h], "[hidden_size, hidden_size]", required);
        yield return ("bert.embeddings.word_embeddings.weight", [c.VocabSize, h], "[vocab_size, hidden_size]", true);
        yield return ("bert.embeddings.position_embeddings.weight", [c.MaxPositionEmbeddings, h], "[max_position_embeddings, hidden_size]", true);
        yield return ("bert.embeddings.token_type_embeddings.weight", [c.TypeVocabSize, h], "[type_vocab_size, hidden_size]", true);
        yield return Vector("bert.embeddings.LayerNorm.weight");
        yield return Vector("bert.embeddings.LayerNorm.bias");
        for (int l = 0; l < c.NumHiddenLayers; l++)
        {
            string p = $"bert.encoder.layer.{l}.";
            foreach (string m in (string[])["attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"])
            {
                yield return Square(p + m + ".weight");
                yield return Vector(p + m + ".bias");
            }
            yield return Vector(p + "attention.output.LayerNorm.weight");
            yield return Vector(p + "attention.output.LayerNorm.bias");
            yield return (p + "intermediate.dense.weight", [i, h], "[intermediate_size, hidden_size]", true);
            yield return (p + "intermediate.dense.bias", [i], "[intermediate_size]", true);
            yield return (p + "output.dense.weight", [h, i], "[hidden_size, intermediate_size]", true);
            yield return Vector(p + "output.dense.bias");
            yield return Vector(p + "output.LayerNorm.weight");
            yield return Vector(p + "output.LayerNorm.bias");
        }
        // Heads: absent from some checkpoints (no pooler in token classifiers; no classifier in pretrained ones).
        yield return Square("bert.pooler.dense.weight", false);
        yield return Vector("bert.pooler.dense.bias", false);
        if (c.NumLabels is { } n)
        {
            yield return ("classifier.weight", [n, h], "[num_labels, hidden_size]", false);
            yield return ("classifier.bias", [n], "[num_labels]", false);
        }
        yield return Square("cls.predictions.transform.dense.weight", false);
        yield return Vector("cls.predictions.transform.dense.bias", false);
        yield return Vector("cls.predictions.transform.LayerNorm.weight", false);
        yield return Vector("cls.predictions.transform.LayerNorm.bias", false);
        yield return ("cls.predictions.decoder.weight", [c.VocabSize, h], "[vocab_size, hidden_size]", false);
        yield return ("cls.predictions.bias", [c.VocabSize], "[vocab_size]", false);
    }

    private static void Validate(BertConfig config, Dictionary<string, SafeTensor> tensors, Dictionary<string, string> stored, string weightsPath, string configPath)
    {
        // The config alone must not decide how much work and memory validation takes: it may require no more
        // tensors than the weights hold (num_hidden_layers: 100000000 stops here, not after minutes).
        int requiredCount = 0;
        foreach (var e in ExpectedShapes(config))
            if (e.Required && ++requiredCount > tensors.Count)
                throw new InvalidDataException($"{configPath} describes a model of more tensors (num_hidden_layers {config.NumHiddenLayers}) than the {tensors.Count} that {weightsPath} holds.");
        var problems = new List<string>();
        string Named(string name) => stored[name] == name ? $"'{name}'" : $"'{name}' (stored as '{stored[name]}')";
        static string Text(int[] s) => "[" + string.Join(", ", s) + "]";
        foreach (var (name, shape, dims, required) in ExpectedShapes(config))
        {
            if (!tensors.TryGetValue(name, out var t))
            {
                if (required) problems.Add($"'{name}' is missing (expected {Text(shape)} = {dims})");
                continue;
            }
            if (!t.Shape.SequenceEqual(shape)) problems.Add($"{Named(name)} has shape {Text(t.Shape)}, expected {Text(shape)} = {dims}");
            else if (t.DType is not (SafeTensorDType.F32 or SafeTensorDType.F16 or SafeTensorDType.BF16 or SafeTensorDType.F64))
                problems.Add($"{Named(name)} has dtype {t.DType}, not a floating-point type");
        }
        if (config.NumLabels is null && tensors.TryGetValue("classifier.weight", out var cw) && tensors.TryGetValue("classifier.bias", out var cb)
            && (cw.Shape.Length != 2 || cw.Shape[1] != config.HiddenSize || cb.Shape.Length != 1 || cb.Shape[0] != cw.Shape[0]))
            problems.Add($"classifier weight {Text(cw.Shape)} and bias {Text(cb.Shape)} do not form a [labels, hidden_size {config.HiddenSize}] classifier");
        foreach (string name in tensors.Keys)
            if (name.StartsWith("bert.encoder.layer.", StringComparison.Ordinal)
                && int.TryParse(name.AsSpan("bert.encoder.layer.".Length, Math.Max(0, name.IndexOf('.', "bert.encoder.layer.".Length) - "bert.encoder.layer.".Length)), out int layer)
                && layer >= config.NumHiddenLayers)
                problems.Add($"{Named(name)} belongs to layer {layer}, but num_hidden_layers is {config.NumHiddenLayers}");
        if (problems.Count > 0)
            throw new InvalidDataException($"{weightsPath} does not match {configPath}: {string.Join("; ", problems.Take(20))}{(problems.Count > 20 ? $"; … ({problems.Count} problems)" : "")}.");
    }
}

/// <summary>What <see cref="HuggingFaceCheckpoint.LoadInto"/> did: loaded, missing (kept their initialisation) and unexpected (ignored) names.</summary>
public sealed record PretrainedLoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected)
{
    /// <inheritdoc/>
    public override string ToString() =>
        $"loaded {Loaded.Count} tensors" +
        (Missing.Count > 0 ? $"; newly initialised (not in the checkpoint): {string.Join(", ", Missing)}" : "") +
        (Unexpected.Count > 0 ? $"; unused from the checkpoint: {string.Join(", ", Unexpected.Take(8))}{(Unexpected.Count > 8 ? $" and {Unexpected.Count - 8} more" : "")}" : "");
}
