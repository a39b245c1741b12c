using System.Text;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Runtime.Tests.Serialization;

public sealed class HuggingFaceCheckpointTests : IDisposable
{
    private readonly List<string> _dirs = new();
    private static readonly Dictionary<string, (int[] Shape, float[] Values)> W = TinyBert.Weights();

    private string Dir(params (string File, byte[] Bytes)[] files) { var d = TinyBert.Directory(files); _dirs.Add(d); return d; }

    public void Dispose() { foreach (var d in _dirs) Directory.Delete(d, recursive: true); }

    private static void AssertHasTinyBert(HuggingFaceCheckpoint c)
    {
        Assert.Equal(W.Count, c.Tensors.Count);
        foreach (var (name, (shape, values)) in W)
        {
            Assert.Equal(shape, c.Tensors[name].Shape);
            Assert.Equal(values.Select(BitConverter.SingleToInt32Bits), c.GetFloats(name).Select(BitConverter.SingleToInt32Bits));
        }
    }

    [Fact]
    public void PyTorchBin_LoadsConfigVocabularyAndEveryValue()
    {
        var c = HuggingFaceCheckpoint.Load(Dir(("pytorch_model.bin", TinyBert.TorchBytes(W))));
        Assert.Equal(["pytorch_model.bin"], c.WeightFiles);
        var k = c.Config;
        Assert.Equal((30, 8, 2, 2, 16, 16, 2, 3), (k.VocabSize, k.HiddenSize, k.NumHiddenLayers, k.NumAttentionHeads, k.IntermediateSize, k.MaxPositionEmbeddings, k.TypeVocabSize, k.NumLabels));
        Assert.Equal(("gelu", "bert", 0.1f, 0.1f), (k.HiddenAct, k.ModelType, k.HiddenDropoutProb, k.AttentionProbsDropoutProb));
        Assert.Equal(1e-12, k.LayerNormEps, 1e-18);
        Assert.Equal(["BertForSequenceClassification"], c.Config.Architectures);
        Assert.Equal("positive", c.Config.Id2Label![2]);
        Assert.Equal(4, c.Config.HeadSize);
        Assert.Equal(30, c.VocabularySize);
        Assert.Equal("[CLS]", c.Vocabulary[2]);
        AssertHasTinyBert(c);
    }

    [Fact]
    public void SafeTensors_LoadsIdentically_AndIsPreferredOverBin()
    {
        var fromBin = HuggingFaceCheckpoint.Load(Dir(("pytorch_model.bin", TinyBert.TorchBytes(W))));
        // A corrupt .bin beside model.safetensors proves the safetensors file is the one read.
        var fromSt = HuggingFaceCheckpoint.Load(Dir(("model.safetensors", TinyBert.SafeTensorsBytes(W)), ("pytorch_model.bin", [1, 2, 3])));
        Assert.Equal(["model.safetensors"], fromSt.WeightFiles);
        Assert.Equal(fromBin.Config, fromSt.Config);
        foreach (var (name, t) in fromBin.Tensors)
        {
            Assert.Equal(t.Shape, fromSt.Tensors[name].Shape);
            Assert.Equal(t.Data, fromSt.Tensors[name].Data);
        }
    }

    [Theory]
    [InlineData("model.safetensors.index.json")]
    [InlineData("pytorch_model.bin.index.json")]
    public void Sharded_LoadsEveryShard(string index)
    {
        bool st = index.StartsWith("model.", StringComparison.Ordinal);
        var first = W.Take(20).ToDictionary();
        var second = W.Skip(20).ToDictionary();
        string Shard(int i) => st ? $"model-0000{i}-of-00002.safetensors" : $"pytorch_model-0000{i}-of-00002.bin";
        byte[] Bytes(Dictionary<string, (int[], float[])> part) => st ? TinyBert.SafeTensorsBytes(part) : TinyBert.TorchBytes(part);
        var map = string.Join(",\n", W.Keys.Select((k, i) => $"\"{k}\": \"{Shard(i < 20 ? 1 : 2)}\""));
        var json = Encoding.UTF8.GetBytes($"{{\"metadata\": {{\"total_size\": 12345}}, \"weight_map\": {{\n{map}\n}}}}");
        var c = HuggingFaceCheckpoint.Load(Dir((index, json), (Shard(1), Bytes(first)), (Shard(2), Bytes(second))));
        Assert.Equal([Shard(1), Shard(2)], c.WeightFiles);
        AssertHasTinyBert(c);

        // A shard the index names but that is not there is reported by name.
        var ex = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(Dir((index, json), (Shard(1), Bytes(first)))));
        Assert.Contains($"no {Shard(2)} (a shard {index} lists for", ex.Message);
        // An index that names a tensor no shard holds.
        var extra = Encoding.UTF8.GetBytes($"{{\"weight_map\": {{\n{map},\n\"bert.extra\": \"{Shard(2)}\"\n}}}}");
        Assert.Contains("lists tensors its shards do not hold: bert.extra",
            Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(Dir((index, extra), (Shard(1), Bytes(first)), (Shard(2), Bytes(second))))).Message);
        // An index that tries to leave the directory is refused.
        var evil = Encoding.UTF8.GetBytes("{\"weight_map\": {\"a\": \"../../etc/passwd\"}}");
        Assert.Contains("not a file name in the checkpoint directory", Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(Dir((index, evil)))).Message);
    }

    [Fact]
    public void NameVariants_BareModelAndTensorFlowLayerNorm_AreNormalised()
    {
        string Old(string n) => (n.StartsWith("bert.", StringComparison.Ordinal) ? n["bert.".Length..] : n)
            .Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta");
        var c = HuggingFaceCheckpoint.Load(Dir(("pytorch_model.bin", TinyBert.TorchBytes(W, Old))));
        AssertHasTinyBert(c);
        Assert.Equal(W["bert.encoder.layer.1.output.LayerNorm.bias"].Values, c.GetFloats("encoder.layer.1.output.LayerNorm.beta"));
        Assert.True(c.TryGetTensor("embeddings.LayerNorm.gamma", out var g));
        Assert.Equal("bert.embeddings.LayerNorm.weight", g.Name);
        Assert.Equal("bert.pooler.dense.weight", HuggingFaceCheckpoint.NormalizeName("pooler.dense.weight"));
        Assert.Equal("classifier.bias", HuggingFaceCheckpoint.NormalizeName("classifier.bias"));
        Assert.Contains("has no tensor 'nope'", Assert.Throws<KeyNotFoundException>(() => c.GetTensor("nope")).Message);

        // Two stored names for one tensor are ambiguous, not silently merged.
        var both = new Dictionary<string, (int[] Shape, float[] Values)>(W) { ["bert.embeddings.LayerNorm.gamma"] = ([8], new float[8]) };
        Assert.Contains("'bert.embeddings.LayerNorm.gamma' and 'bert.embeddings.LayerNorm.weight' both name bert.embeddings.LayerNorm.weight",
            Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(Dir(("model.safetensors", TinyBert.SafeTensorsBytes(both))))).Message);
    }

    [Fact]
    public void MissingFiles_SayWhichFileWhereAndWhatIsThere()
    {
        var dir = Dir();
        var ex = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(dir));
        Assert.Contains($"checkpoint '{dir}' has no weights: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json; found: config.json, vocab.txt", ex.Message);

        File.WriteAllBytes(Path.Combine(dir, "tf_model.h5"), [0]);
        File.Delete(Path.Combine(dir, "vocab.txt"));
        ex = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(dir));
        Assert.Contains("has no vocab.txt (BERT's WordPiece vocabulary); found: config.json, tf_model.h5", ex.Message);

        File.Delete(Path.Combine(dir, "config.json"));
        ex = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Load(dir));
        Assert.Contains("has no config.json (the model's configuration); found: tf_model.h5", ex.Message);

        Assert.Throws<DirectoryNotFoundException>(() => HuggingFaceCheckpoint.Load(Path.Combine(dir, "nope")));
    }

    [Theory]
    [InlineData("\"hidden_size\": \"768\"", "field 'hidden_size' is \"768\" (string), expected an integer")]
    [InlineData("\"hidden_size\": 8.5", "field 'hidden_size' is 8.5 (number), expected an integer")]
    [InlineData("\"layer_norm_eps\": \"tiny\"", "field 'layer_norm_eps' is \"tiny\" (string), expected a number")]
    [InlineData("\"architectures\": [1]", "field 'architectures' is [1] (array), expected a list of strings")]
    [InlineData("\"num_attention_heads\": 3", "hidden_size 8 is not a multiple of num_attention_heads 3")]
    [InlineData("\"model_type\": \"roberta\"", "model_type is 'roberta'; only BERT")]
    [InlineData("\"hidden_dropout_prob\": 1.5", "hidden_dropout_prob is 1.5; it must be in [0, 1)")]
    [InlineData("\"num_labels\": 5", "num_labels is 5 but id2label has 3 entries")]
    public void ConfigFields_OfTheWrongTypeOrValue_AreNamed(string field, string expected)
    {
        // Later duplicates win in System.Text.Json, so appending a field overrides the earlier one.
        var ex = Assert.Throws<InvalidDataException>(() => BertConfig.Parse(Encoding.UTF8.GetBytes(TinyBert.ConfigJson(field))));
        Assert.Contains(expected, ex.Message);
        Assert.StartsWith("config.json: ", ex.Message);
    }

    [Fact]
    public void Config_MissingSizesAndBadJson_AreReported()
    {
        var ex = Assert.Throws<InvalidDataException>(() => BertConfig.Parse("{\"hidden_size\": 8, \"model_type\": \"bert\"}"u8));
        Assert.Contains("lacks vocab_size, num_hidden_layers, num_attention_heads, intermediate_size", ex.Message);
        Assert.Contains("not valid JSON (line 1", Assert.Throws<InvalidDataException>(() => BertConfig.Parse("{\"hidden_size\": 8,"u8)).Message);
        Assert.Contains("expected a JSON object", Assert.Throws<InvalidDataException>(() => BertConfig.Parse("[1]"u8)).Message);

        var dir = Dir(("pytorch_model.bin", TinyBert.TorchBytes(W)));
        File.WriteAllText(Path.Combine(dir, "config.json"), TinyBert.ConfigJson("\"vocab_size\": \"x\""));
        Assert.Contains(Path.Combine(dir, "config.json") + ": field 'vocab_size'", Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(dir)).Message);
    }

    [Fact]
    public void ShapesContradictingTheConfig_NameTensorShapeAndExpectation()
    {
        var bad = new Dictionary<string, (int[] Shape, float[] Values)>(W)
        {
            ["bert.embeddings.word_embeddings.weight"] = ([31, 8], new float[31 * 8]),
            ["bert.encoder.layer.1.intermediate.dense.weight"] = ([8, 16], new float[128]), // transposed by mistake
            ["bert.encoder.layer.2.output.dense.bias"] = ([8], new float[8]),              // a third layer
        };
        bad.Remove("bert.encoder.layer.0.attention.self.key.bias");
        var dir = Dir(("pytorch_model.bin", TinyBert.TorchBytes(bad)));
        var ex = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(dir));
        Assert.StartsWith($"{Path.Combine(dir, "pytorch_model.bin")} does not match {Path.Combine(dir, "config.json")}: ", ex.Message);
        Assert.Contains("'bert.embeddings.word_embeddings.weight' has shape [31, 8], expected [30, 8] = [vocab_size, hidden_size]", ex.Message);
        Assert.Contains("'bert.encoder.layer.1.intermediate.dense.weight' has shape [8, 16], expected [16, 8] = [intermediate_size, hidden_size]", ex.Message);
        Assert.Contains("'bert.encoder.layer.0.attention.self.key.bias' is missing (expected [8] = [hidden_size])", ex.Message);
        Assert.Contains("'bert.encoder.layer.2.output.dense.bias' belongs to layer 2, but num_hidden_layers is 2", ex.Message);

        // The stored name is given when it differs from the normalised one.
        var renamed = new Dictionary<string, (int[] Shape, float[] Values)>(W) { ["bert.pooler.dense.bias"] = ([7], new float[7]) };
        ex = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(Dir(("pytorch_model.bin", TinyBert.TorchBytes(renamed, n => n.Replace("bert.pooler", "pooler")))))); 
        Assert.Contains("'bert.pooler.dense.bias' (stored as 'pooler.dense.bias') has shape [7], expected [8] = [hidden_size]", ex.Message);
        // Too many labels for id2label.
        var labels = new Dictionary<string, (int[] Shape, float[] Values)>(W) { ["classifier.weight"] = ([2, 8], new float[16]) };
        Assert.Contains("'classifier.weight' has shape [2, 8], expected [3, 8] = [num_labels, hidden_size]",
            Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(Dir(("model.safetensors", TinyBert.SafeTensorsBytes(labels))))).Message);
    }

    [Fact]
    public void Vocabulary_LargerThanVocabSize_IsRejected_CrLfIsAccepted()
    {
        var dir = Dir(("model.safetensors", TinyBert.SafeTensorsBytes(W)));
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), TinyBert.VocabText(31));
        Assert.Contains("has 31 tokens, more than vocab_size 30", Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(dir)).Message);
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), TinyBert.VocabText(28).Replace("\n", "\r\n"));
        var c = HuggingFaceCheckpoint.Load(dir);
        Assert.Equal(28, c.VocabularySize);
        Assert.Equal("[MASK]", c.Vocabulary[4]);
    }

    [Fact]
    public void MaliciousBin_InACheckpointDirectory_IsRejectedNamingTheFile()
    {
        var w = new PickleWriter().Proto().Global("os", "system").Str("echo pwned").Tuple(1).Reduce().Stop();
        var dir = Dir(("pytorch_model.bin", TorchSave.Archive(w.ToArray(), [])));
        var ex = Assert.Throws<InvalidDataException>(() => HuggingFaceCheckpoint.Load(dir));
        Assert.Contains($"{Path.Combine(dir, "pytorch_model.bin")}: archive/data.pkl at byte ", ex.Message);
        Assert.Contains("references os.system, which is not on the allow-list", ex.Message);
    }
}
