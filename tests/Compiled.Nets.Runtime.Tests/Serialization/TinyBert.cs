using System.Text;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Runtime.Tests.Serialization;

/// <summary>A tiny BERT-for-sequence-classification state dict under the real Hugging Face names, with seeded values.</summary>
internal static class TinyBert
{
    public const int Vocab = 30, Hidden = 8, Layers = 2, Heads = 2, Intermediate = 16, MaxPositions = 16, TypeVocab = 2, Labels = 3;

    public static List<(string Name, int[] Shape)> Shapes()
    {
        var p = new List<(string, int[])>
        {
            ("bert.embeddings.word_embeddings.weight", [Vocab, Hidden]),
            ("bert.embeddings.position_embeddings.weight", [MaxPositions, Hidden]),
            ("bert.embeddings.token_type_embeddings.weight", [TypeVocab, Hidden]),
            ("bert.embeddings.LayerNorm.weight", [Hidden]),
            ("bert.embeddings.LayerNorm.bias", [Hidden]),
        };
        for (int l = 0; l < Layers; l++)
        {
            string b = $"bert.encoder.layer.{l}.";
            foreach (var m in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense" })
            { p.Add((b + m + ".weight", [Hidden, Hidden])); p.Add((b + m + ".bias", [Hidden])); }
            p.Add((b + "attention.output.LayerNorm.weight", [Hidden])); p.Add((b + "attention.output.LayerNorm.bias", [Hidden]));
            p.Add((b + "intermediate.dense.weight", [Intermediate, Hidden])); p.Add((b + "intermediate.dense.bias", [Intermediate]));
            p.Add((b + "output.dense.weight", [Hidden, Intermediate])); p.Add((b + "output.dense.bias", [Hidden]));
            p.Add((b + "output.LayerNorm.weight", [Hidden])); p.Add((b + "output.LayerNorm.bias", [Hidden]));
        }
        p.Add(("bert.pooler.dense.weight", [Hidden, Hidden])); p.Add(("bert.pooler.dense.bias", [Hidden]));
        p.Add(("classifier.weight", [Labels, Hidden])); p.Add(("classifier.bias", [Labels]));
        return p;
    }

    /// <summary>Seeded values with awkward bit patterns (negative, tiny, large) so exactness is really tested.</summary>
    public static Dictionary<string, (int[] Shape, float[] Values)> Weights(int seed = 7)
    {
        var rng = new Random(seed);
        return Shapes().ToDictionary(x => x.Name, x =>
        {
            var v = new float[x.Shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < v.Length; i++) v[i] = (rng.NextSingle() - 0.5f) * MathF.Pow(10, rng.Next(-6, 4));
            return (x.Shape, v);
        });
    }

    /// <summary>torch.save bytes: one FloatStorage per tensor, keys "0", "1", … in state-dict order.</summary>
    public static byte[] TorchBytes(Dictionary<string, (int[] Shape, float[] Values)> w, Func<string, string>? rename = null) =>
        TorchSave.Save(w.Select((kv, i) => ((rename ?? (n => n))(kv.Key), TorchTensor.Contiguous(TorchStorage.Floats(i.ToString(), kv.Value.Values), kv.Value.Shape))).ToList());

    public static byte[] SafeTensorsBytes(Dictionary<string, (int[] Shape, float[] Values)> w) =>
        SafeTensorsFile.Serialize(w.Select(kv => SafeTensor.FromFloats(kv.Key, kv.Value.Shape, kv.Value.Values)));

    public static string ConfigJson(string? overrideField = null) =>
        "{\n" +
        "  \"architectures\": [\"BertForSequenceClassification\"],\n" +
        "  \"attention_probs_dropout_prob\": 0.1,\n" +
        "  \"classifier_dropout\": null,\n" +
        "  \"hidden_act\": \"gelu\",\n" +
        "  \"hidden_dropout_prob\": 0.1,\n" +
        $"  \"hidden_size\": {Hidden},\n" +
        "  \"id2label\": {\"0\": \"negative\", \"1\": \"neutral\", \"2\": \"positive\"},\n" +
        "  \"label2id\": {\"negative\": 0, \"neutral\": 1, \"positive\": 2},\n" +
        "  \"initializer_range\": 0.02,\n" +
        $"  \"intermediate_size\": {Intermediate},\n" +
        "  \"layer_norm_eps\": 1e-12,\n" +
        $"  \"max_position_embeddings\": {MaxPositions},\n" +
        "  \"model_type\": \"bert\",\n" +
        $"  \"num_attention_heads\": {Heads},\n" +
        $"  \"num_hidden_layers\": {Layers},\n" +
        "  \"pad_token_id\": 0,\n" +
        "  \"position_embedding_type\": \"absolute\",\n" +
        "  \"torch_dtype\": \"float32\",\n" +
        "  \"transformers_version\": \"4.44.0\",\n" +
        $"  \"type_vocab_size\": {TypeVocab},\n" +
        (overrideField is null ? "" : $"  {overrideField},\n") +
        $"  \"vocab_size\": {Vocab}\n" +
        "}\n";

    public static string VocabText(int count = Vocab)
    {
        var sb = new StringBuilder("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
        for (int i = 5; i < count; i++) sb.Append("tok").Append(i).Append('\n');
        return sb.ToString();
    }

    /// <summary>A fresh checkpoint directory with config.json, vocab.txt and the given weight files.</summary>
    public static string Directory(params (string File, byte[] Bytes)[] files)
    {
        string dir = Path.Combine(Path.GetTempPath(), "cn-hf-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), ConfigJson());
        File.WriteAllText(Path.Combine(dir, "vocab.txt"), VocabText());
        foreach (var (f, b) in files) File.WriteAllBytes(Path.Combine(dir, f), b);
        return dir;
    }
}
