using System.Text.Json;
using Compiled.Nets;
using Compiled.Nets.Serialization;

namespace Compiled.Nets.Network.Tests;

/// <summary>
/// A BertForSequenceClassification checkpoint written by real PyTorch (torch.save, Hugging Face names, see
/// Fixtures/make_tiny_bert.py) loaded into the compiled MiniBert: its logits on a padded batch must equal the ones
/// PyTorch computed (in float64) from the same weights.
/// </summary>
public class PretrainedBertTests
{
    private static string Dir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "tiny-bert");

    [Fact]
    public void TorchSavedCheckpoint_LoadsIntoMiniBert_AndReproducesPyTorchLogits()
    {
        var ckpt = HuggingFaceCheckpoint.Load(Dir);
        Assert.Equal(16, ckpt.Config.HiddenSize);
        using var net = new MiniBert(seed: 99);
        var report = ckpt.LoadInto(net.Parameters);
        Assert.Empty(report.Missing);
        Assert.Equal(["bert.embeddings.position_ids"], report.Unexpected);
        Assert.Equal(net.Parameters.Parameters.Count, report.Loaded.Count);

        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Dir, "reference.json")));
        var r = json.RootElement;
        int[] ids = r.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int[] mask = r.GetProperty("mask").EnumerateArray().Select(e => e.GetInt32()).ToArray();
        double[] expected = r.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        int batch = r.GetProperty("batch").GetInt32(), seq = r.GetProperty("sequence").GetInt32();
        var logits = new float[batch * 3];
        net.Forward(ids, mask, batch, seq, logits);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - logits[i]) < 2e-4, $"logit {i}: PyTorch {expected[i]}, compiled {logits[i]}");
        Assert.Throws<InvalidDataException>(() => ckpt.LoadInto(net.Parameters, strict: true)); // position_ids is unexpected
    }

    [Fact]
    public void CheckpointOfAnotherShape_IsRejected_NamingEveryMismatch()
    {
        // The same checkpoint into a network whose sizes differ (SeqNet: 8 features, no attention): shape errors
        // name the tensor and both shapes; nothing is half-loaded.
        var ckpt = HuggingFaceCheckpoint.Load(Dir);
        using var other = new TinyHeadNet(seed: 1);
        var before = other.Parameters.Values.ToArray();
        var ex = Assert.Throws<InvalidDataException>(() => ckpt.LoadInto(other.Parameters));
        Assert.Contains("classifier.weight: checkpoint [3, 16] vs network [2, 16]", ex.Message);
        Assert.Equal(before, other.Parameters.Values.ToArray());
    }
}

/// <summary>A classifier head of the wrong width for the tiny-bert checkpoint (2 labels where it has 3).</summary>
[Network, Input(Dim.Sequence, Kind = InputKind.TokenIds, MaxSequence = 8), CrossEntropyLoss]
public partial class TinyHeadNet
{
    [Embedding(50, 16), StateName("bert.embeddings.word_embeddings")] public partial Embedding Words { get; }
    [Linear(16, 2), StateName("classifier")] public partial Linear Classifier { get; }

    Tensor Forward(Tensor ids) => ids.Apply(Words).SelectToken(0).Apply(Classifier);
}
