using Compiled.Nets.Serialization;

namespace Compiled.Nets.Samples.BertSpam;

/// <summary>Loads a Hugging Face bert-base-uncased folder into the compiled <see cref="BertBaseClassifier"/>.</summary>
public static class PretrainedBert
{
    /// <summary>Checks the checkpoint's config against the compiled sizes, then copies every tensor by name.</summary>
    /// <exception cref="InvalidDataException">When the checkpoint is not bert-base-sized (naming each differing field) or a tensor does not fit.</exception>
    public static PretrainedLoadReport Load(string directory, ParameterStore store)
    {
        var ckpt = HuggingFaceCheckpoint.Load(directory);
        var c = ckpt.Config;
        var differences = new List<string>();
        void Expect(string field, int actual, int compiled) { if (actual != compiled) differences.Add($"{field} is {actual}, the compiled network has {compiled}"); }
        Expect("hidden_size", c.HiddenSize, 768); Expect("num_hidden_layers", c.NumHiddenLayers, 12);
        Expect("num_attention_heads", c.NumAttentionHeads, 12); Expect("intermediate_size", c.IntermediateSize, 3072);
        Expect("vocab_size", c.VocabSize, 30522);
        if (c.MaxPositionEmbeddings < 128) differences.Add($"max_position_embeddings is {c.MaxPositionEmbeddings}, fewer than the 128 tokens the sample uses");
        if (c.HiddenAct != "gelu") differences.Add($"hidden_act is '{c.HiddenAct}', the compiled network uses the exact (erf) GELU");
        if (differences.Count > 0)
            throw new InvalidDataException($"'{directory}' is not a bert-base checkpoint the compiled BertBaseClassifier can take: {string.Join("; ", differences)}. Declare a network with its sizes instead.");
        var report = ckpt.LoadInto(store);
        Console.WriteLine($"Checkpoint {directory}: {report}");
        return report;
    }
}
